"""Evidence in an S3-compatible object store (SeaweedFS, MinIO, AWS S3) — issue 19, item 3.

Same content-addressed keys as `LocalDiskStorage` (`<sha[:2]>/<sha>`), so a key names its bytes
for ever: a put of a key that already holds an object of the right size is skipped (idempotent,
dedup), and every new object is checked after the upload (HEAD size + the sha256 we send as
object metadata and as the S3 `ChecksumSHA256`, which the server verifies on receipt).

Credentials come from the environment / shared credentials file through boto3's usual chain
(AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SHARED_CREDENTIALS_FILE), never from our config.

A failing store (unreachable, refusing, 5xx after the retries) raises OSError, as a failing disk
does for `LocalDiskStorage`: the callers already turn that into 507 / a dead letter / a retry.
"""

from __future__ import annotations

import base64
import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from central import evidence as evidence_files
from central.storage import EvidenceStorage, RangeBody

_MISSING = ("404", "NoSuchKey", "NotFound")


def _code(e: ClientError) -> str:
    return str(e.response.get("Error", {}).get("Code", ""))


@contextlib.contextmanager
def _store_errors(what: str) -> Iterator[None]:
    """botocore's errors as OSError (see the module doc); a missing object is the caller's business."""
    try:
        yield
    except ClientError as e:
        if _code(e) in _MISSING:
            raise
        raise OSError(f"object store: {what}: {e}") from e
    except BotoCoreError as e:
        raise OSError(f"object store: {what}: {e}") from e


class S3EvidenceStorage(EvidenceStorage):
    """Objects `<prefix><sha[:2]>/<sha>` in one bucket; staging on local disk."""

    def __init__(
        self,
        bucket: str,
        staging_dir: Path,
        endpoint_url: str | None = None,
        prefix: str = "",
        region: str | None = None,
        client: Any = None,
    ) -> None:
        self.bucket = bucket
        self.prefix = prefix
        self.staging = Path(staging_dir)
        # retries: the standard mode retries connection errors and 5xx, so a store that restarts
        # mid-upload is ridden over; path-style addressing works on every S3 clone.
        self.client = client or boto3.client(
            "s3",
            endpoint_url=endpoint_url,
            region_name=region,
            config=Config(
                retries={"mode": "standard", "max_attempts": 10},
                s3={"addressing_style": "path"},
                connect_timeout=5,
                read_timeout=30,
            ),
        )

    def object_key(self, key: str) -> str:
        return self.prefix + key

    def staging_file(self, sha256: str) -> Path:
        evidence_files.relative_path(sha256)  # refuses anything but a sha256
        self.staging.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=self.staging, prefix=f"{sha256[:12]}.", suffix=".part")
        os.close(fd)
        return Path(name)

    def _head(self, key: str) -> dict[str, Any] | None:
        try:
            with _store_errors(f"HEAD {key}"):
                return self.client.head_object(Bucket=self.bucket, Key=self.object_key(key))
        except ClientError:
            return None  # _store_errors re-raises only a missing object

    def _matches(self, head: dict[str, Any] | None, sha256: str, size: int | None) -> bool:
        if head is None:
            return False
        if size is not None and int(head["ContentLength"]) != size:
            return False
        stored = head.get("Metadata", {}).get("sha256")
        return stored is None or stored == sha256

    def put_verified(self, sha256: str, staged: Path) -> tuple[str, bool]:
        key = evidence_files.relative_path(sha256)
        size = staged.stat().st_size
        if self._matches(self._head(key), sha256, size):
            staged.unlink()
            return key, False
        digest_b64 = base64.b64encode(bytes.fromhex(sha256)).decode()
        # One PUT (evidence clips are a few MB): an object appears whole or not at all, so a
        # store killed mid-upload leaves nothing half-written; the retry re-sends the file.
        with open(staged, "rb") as f, _store_errors(f"PUT {key}"):
            self.client.put_object(
                Bucket=self.bucket,
                Key=self.object_key(key),
                Body=f,
                ContentLength=size,
                ChecksumSHA256=digest_b64,
                Metadata={"sha256": sha256},
            )
        if not self._matches(self._head(key), sha256, size):
            raise OSError(f"object {key} in bucket {self.bucket} does not match after upload")
        staged.unlink()
        return key, True

    def exists(self, sha256: str, size: int | None = None) -> bool:
        return self._matches(self._head(evidence_files.relative_path(sha256)), sha256, size)

    def local_path(self, key: str) -> Path | None:
        return None  # served through `open_range` / `presigned_url`, not from a file

    def size(self, key: str) -> int | None:
        head = self._head(key)
        return None if head is None else int(head["ContentLength"])

    def open_range(self, key: str, start: int = 0, end: int | None = None) -> RangeBody:
        """The object's bytes [start, end] (inclusive, as HTTP Range) as a streaming body."""
        args: dict[str, Any] = {"Bucket": self.bucket, "Key": self.object_key(key)}
        if start or end is not None:
            args["Range"] = f"bytes={start}-" + ("" if end is None else str(end))
        try:
            with _store_errors(f"GET {key}"):
                resp = self.client.get_object(**args)
        except ClientError:
            raise FileNotFoundError(key) from None
        return resp["Body"]

    def presigned_url(self, key: str, expires_s: int = 300) -> str:
        return str(
            self.client.generate_presigned_url(
                "get_object",
                Params={"Bucket": self.bucket, "Key": self.object_key(key)},
                ExpiresIn=expires_s,
            )
        )

    def delete(self, key: str) -> None:
        evidence_files.relative_path(key.rsplit("/", 1)[-1])  # only our keys
        # S3 answers 204 for a missing key; anything else raises, so the purge keeps the row and
        # tries again rather than forgetting an object it could not delete
        with contextlib.suppress(ClientError), _store_errors(f"DELETE {key}"):
            self.client.delete_object(Bucket=self.bucket, Key=self.object_key(key))
