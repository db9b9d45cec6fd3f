"""Where central keeps evidence files: an interface, the local-disk implementation, and the
factory that picks one from the config's `evidence_store` (S3: `central.storage_s3`).

Files are content-addressed (key = `<sha[:2]>/<sha>`, the layout of `central.evidence`): a key
never changes its bytes, so there is nothing to update or lock, and an S3-compatible store
implements the same operations (head/put/get/delete of an object named by the key).

Uploads arrive in a staging file first (hashed while it is written); only a verified file is
handed to `put_verified`, which makes it visible atomically.
"""

from __future__ import annotations

import contextlib
import functools
import os
import stat
import tempfile
from abc import ABC, abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Protocol

from central import evidence as evidence_files

if TYPE_CHECKING:
    from central.config import CentralConfig


class RangeBody(Protocol):
    """What `open_range` hands out: a file object (local) or botocore's StreamingBody (S3)."""

    def read(self, amt: int | None = None, /) -> bytes: ...

    def close(self) -> None: ...


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
    def size(self, key: str) -> int | None:
        """The stored object's size in bytes; None when it is missing."""

    @abstractmethod
    def open_range(self, key: str, start: int = 0, end: int | None = None) -> RangeBody:
        """Bytes [start, end] of the object (inclusive, as an HTTP Range; end None: to the end).
        Raises FileNotFoundError when it is missing. The caller closes it."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove the object; a missing one is no error, a failing store raises OSError."""

    def read_bytes(self, key: str) -> bytes:
        """The whole object (pictures for PDFs and review; not for clips, which are streamed)."""
        body = self.open_range(key)
        try:
            return body.read()
        finally:
            body.close()

    def put_bytes(self, sha256: str, data: bytes) -> tuple[str, bool]:
        """Store bytes already hashed by the caller (MQTT evidence, review images); as put_verified."""
        staged = self.staging_file(sha256)
        try:
            staged.write_bytes(data)
            return self.put_verified(sha256, staged)
        except BaseException:
            staged.unlink(missing_ok=True)
            raise


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

    def put_bytes(self, sha256: str, data: bytes) -> tuple[str, bool]:
        # the temp file beside its target, as central has always written MQTT evidence
        return evidence_files.store(self.root, sha256, data)

    def _file(self, key: str) -> Path:
        path = evidence_files.resolve(self.root, key)
        if path is None:
            raise FileNotFoundError(key)  # a key that would leave the root names nothing
        return path

    def size(self, key: str) -> int | None:
        try:
            st = self._file(key).stat()
        except OSError:  # missing or unreadable: not there to serve (as Path.is_file says)
            return None
        return st.st_size if stat.S_ISREG(st.st_mode) else None  # a folder there is no evidence

    def open_range(self, key: str, start: int = 0, end: int | None = None) -> RangeBody:
        f = open(self._file(key), "rb")  # noqa: SIM115 (the caller closes it)
        if start == 0 and end is None:
            return f
        f.seek(start)
        return _Slice(f, None if end is None else end - start + 1)

    def delete(self, key: str) -> None:
        path = evidence_files.resolve(self.root, key)
        if path is not None:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()


class _Slice:
    """At most `limit` bytes of an open file from its current position (a Range of a local file)."""

    def __init__(self, f: BinaryIO, limit: int | None) -> None:
        self._f = f
        self._left = limit

    def read(self, amt: int | None = None, /) -> bytes:
        if self._left is None:
            return self._f.read(-1 if amt is None else amt)
        n = self._left if amt is None or amt < 0 else min(amt, self._left)
        data = self._f.read(n)
        self._left -= len(data)
        return data

    def close(self) -> None:
        self._f.close()


def open_evidence_storage(config: CentralConfig, evidence_dir: Path | None = None) -> EvidenceStorage:
    """The store the config names. `evidence_dir` (default: the config's) holds the local files, or
    for S3 only the staging area of uploads in progress. boto3 is imported only for kind s3."""
    root = Path(evidence_dir if evidence_dir is not None else config.evidence_dir)
    store = config.evidence_store
    if store.kind == "local":
        return LocalDiskStorage(root)
    assert store.bucket is not None  # the config refuses kind s3 without one
    return _s3_storage(store.bucket, root / ".staging", store.endpoint_url, store.prefix, store.region)


@functools.lru_cache(maxsize=8)
def _s3_storage(
    bucket: str, staging: Path, endpoint_url: str | None, prefix: str, region: str | None
) -> EvidenceStorage:
    # One client per store for the process: making a boto3 client costs tens of ms and it is
    # thread-safe, and the web routers ask for the storage on every request.
    from central.storage_s3 import S3EvidenceStorage

    return S3EvidenceStorage(bucket, staging, endpoint_url=endpoint_url, prefix=prefix, region=region)
