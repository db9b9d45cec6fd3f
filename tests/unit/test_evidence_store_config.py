"""`evidence_store` in central's config: local by default, s3 with its keys, errors that name the
file and the key, and no boto3 import unless a store needs it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from central.config import load_central_config
from central.storage import LocalDiskStorage, open_evidence_storage
from contract.configfile import ConfigError
from tests.support import REPO_ROOT


@pytest.fixture(autouse=True)
def _no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CENTRAL_DATABASE_URL", raising=False)
    monkeypatch.delenv("CENTRAL_MQTT_URL", raising=False)


def _load(tmp_path: Path, text: str):  # type: ignore[no-untyped-def]
    f = tmp_path / "central.yaml"
    f.write_text(text, encoding="utf-8")
    return f, load_central_config(f)


def test_default_is_the_local_evidence_dir(tmp_path: Path) -> None:
    _, cfg = _load(tmp_path, f"evidence_dir: {tmp_path / 'ev'}\n")
    assert cfg.evidence_store.kind == "local"
    storage = open_evidence_storage(cfg)
    assert isinstance(storage, LocalDiskStorage) and storage.root == tmp_path / "ev"


def test_s3_keys(tmp_path: Path) -> None:
    _, cfg = _load(
        tmp_path,
        "evidence_store:\n  kind: s3\n  bucket: city-evidence\n  endpoint_url: http://127.0.0.1:8333/\n"
        "  prefix: hue\n  region: ap-southeast-1\n",
    )
    s = cfg.evidence_store
    assert (s.kind, s.bucket, s.endpoint_url, s.prefix, s.region) == (
        "s3",
        "city-evidence",
        "http://127.0.0.1:8333",
        "hue/",  # a folder-like prefix whether or not the file ends it with /
        "ap-southeast-1",
    )


@pytest.mark.parametrize(
    ("store", "key", "says"),
    [
        ("{kind: s3}", "evidence_store.bucket", "required when kind is s3"),
        ("{kind: s3, bucket: Not_A_Bucket}", "evidence_store.bucket", "should match pattern"),
        ("{kind: s3, bucket: ev, endpoint_url: 'ftp://x'}", "evidence_store.endpoint_url", "http(s) URL"),
        # credentials belong to boto3's chain, never in the URL (it would be logged and shown)
        ("{kind: s3, bucket: ev, endpoint_url: 'http://k:s@h:9000'}", "evidence_store.endpoint_url", "credentials"),
        ("{kind: s3, bucket: ev, prefix: '../up'}", "evidence_store.prefix", "'..'"),
        ("{kind: s3, bucket: ev, access_key: abc}", "evidence_store.access_key", "Extra inputs"),
        ("{kind: gcs}", "evidence_store.kind", "'local' or 's3'"),
    ],
)
def test_bad_values_name_the_file_and_key(tmp_path: Path, store: str, key: str, says: str) -> None:
    with pytest.raises(ConfigError) as e:
        _load(tmp_path, f"evidence_store: {store}\n")
    line = next(ln for ln in str(e.value).splitlines() if key + ":" in ln)
    assert str(tmp_path / "central.yaml") in line and says in line, str(e.value)


def test_local_store_does_not_import_boto3(tmp_path: Path) -> None:
    # boto3 + botocore take ~0.5 s and tens of MB to import: a local deployment must not pay that
    code = (
        "import sys; from central.config import CentralConfig; from central.storage import open_evidence_storage;"
        f"open_evidence_storage(CentralConfig(evidence_dir={str(tmp_path)!r})); import central.uploads, central.ingester;"
        "print('boto3' in sys.modules, 'botocore' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"], out.stderr
