"""Where central keeps evidence files: an interface, and the local-disk implementation.

Files are content-addressed (key = `<sha[:2]>/<sha>`, the layout of `central.evidence`): a key
never changes its bytes, so there is nothing to update or lock, and an S3-compatible store can
implement the same four operations (head/put/get/delete of an object named by the key) later.

Uploads arrive in a staging file first (hashed while it is written); only a verified file is
handed to `put_verified`, which makes it visible atomically.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from abc import ABC, abstractmethod
from pathlib import Path

from central import evidence as evidence_files


class EvidenceStorage(ABC):
    """Content-addressed evidence store."""

    @abstractmethod
    def staging_file(self, sha256: str) -> Path:
        """A fresh temp file for an upload in progress (removed by the caller if it fails)."""

    @abstractmethod
    def put_verified(self, sha256: str, staged: Path) -> tuple[str, bool]:
        """Make a verified staged file the stored copy of `sha256`; (key, newly stored).
        Idempotent: an existing copy of the right size is kept and the staged file dropped."""

    @abstractmethod
    def exists(self, sha256: str, size: int | None = None) -> bool: ...

    @abstractmethod
    def local_path(self, key: str) -> Path | None:
        """A file the web server can send, or None (a remote store would hand out a URL instead)."""

    @abstractmethod
    def delete(self, key: str) -> None: ...


class LocalDiskStorage(EvidenceStorage):
    """Files under one directory: `<root>/<sha[:2]>/<sha>`, staging in `<root>/.staging`."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.staging = self.root / ".staging"

    def staging_file(self, sha256: str) -> Path:
        evidence_files.relative_path(sha256)  # refuses anything but a sha256
        self.staging.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=self.staging, prefix=f"{sha256[:12]}.", suffix=".part")
        os.close(fd)
        return Path(name)

    def put_verified(self, sha256: str, staged: Path) -> tuple[str, bool]:
        key = evidence_files.relative_path(sha256)
        target = self.root / key
        size = staged.stat().st_size
        if self.exists(sha256, size):
            staged.unlink()
            return key, False
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(staged, "rb+") as f:
            os.fsync(f.fileno())  # the bytes are on disk before the name points at them
        os.replace(staged, target)  # same file system: atomic
        return key, True

    def exists(self, sha256: str, size: int | None = None) -> bool:
        try:
            st = (self.root / evidence_files.relative_path(sha256)).stat()
        except FileNotFoundError:
            return False
        return size is None or st.st_size == size

    def local_path(self, key: str) -> Path | None:
        return evidence_files.resolve(self.root, key)

    def delete(self, key: str) -> None:
        path = evidence_files.resolve(self.root, key)
        if path is not None:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
