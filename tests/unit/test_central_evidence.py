"""Evidence naming and path safety: a request can only ever name a file by its sha256."""

from __future__ import annotations

from pathlib import Path

import pytest

from central.evidence import is_sha256, relative_path, resolve, sha256_hex, sniff_media_type

GOOD = "0f" * 32


def test_relative_path_is_sharded_by_hash():
    assert relative_path(GOOD) == f"0f/{GOOD}"
    assert sha256_hex(b"") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


@pytest.mark.parametrize(
    "name",
    [
        "../../etc/passwd",
        "..",
        GOOD.upper(),
        GOOD[:-1],
        GOOD + "0",
        GOOD[:-2] + "/x",
        GOOD[:-1] + "\n",
        "%2e%2e%2f" + GOOD[9:],
        "",
    ],
)
def test_anything_but_a_lowercase_sha256_is_refused(name):
    assert not is_sha256(name)
    with pytest.raises(ValueError):
        relative_path(name)


def test_resolve_stays_inside_the_evidence_dir(tmp_path: Path):
    root = tmp_path / "evidence"
    assert resolve(root, f"0f/{GOOD}") == (root / "0f" / GOOD).resolve()
    assert resolve(root, "../outside") is None
    assert resolve(root, "/etc/passwd") is None
    assert resolve(root, "0f/../../x") is None
    assert resolve(root, ".") is None


def test_sniff_media_type():
    assert sniff_media_type(b"\xff\xd8\xff\xe0rest") == "image/jpeg"
    assert sniff_media_type(b"\x00\x00\x00\x18ftypisom") == "video/mp4"
    assert sniff_media_type(b"hello") == "application/octet-stream"
