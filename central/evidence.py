"""Evidence files on disk, named by their sha256: `<evidence_dir>/<sha[:2]>/<sha>`.

The name is the content hash, so a file is written once, never changes, and any request for it
can be checked against a strict pattern before it touches the file system.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import tempfile
from pathlib import Path

SHA256_RE = re.compile(r"^[0-9a-f]{64}$")


def is_sha256(value: str) -> bool:
    return SHA256_RE.fullmatch(value) is not None


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def relative_path(sha256: str) -> str:
    """`<sha[:2]>/<sha>`; refuses anything that is not a lowercase hex sha256 (no traversal possible)."""
    if not is_sha256(sha256):
        raise ValueError("not a sha256 hex digest")
    return f"{sha256[:2]}/{sha256}"


def resolve(evidence_dir: Path, stored_path: str) -> Path | None:
    """The absolute file for a stored relative path, or None if it would leave `evidence_dir`."""
    root = evidence_dir.resolve()
    candidate = (root / stored_path).resolve()
    if not candidate.is_relative_to(root) or candidate == root:
        return None
    return candidate


def sniff_media_type(data: bytes) -> str:
    """The media type from the file's magic bytes (the topic carries only the hash)."""
    if data[:3] == b"\xff\xd8\xff":
        return "image/jpeg"
    if data[4:8] == b"ftyp":
        return "video/mp4"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "image/png"
    return "application/octet-stream"


def store(evidence_dir: Path, sha256: str, data: bytes) -> tuple[str, bool]:
    """Write the file atomically (temp file + fsync + rename); returns (relative path, newly written).

    Idempotent: an existing file of the right size is kept. Readers never see a partial file.
    """
    rel = relative_path(sha256)
    target = evidence_dir / rel
    try:
        if target.stat().st_size == len(data):
            return rel, False
    except FileNotFoundError:
        pass
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{sha256[:8]}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return rel, True
