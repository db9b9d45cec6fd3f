"""Edge retention: the quota is kept by deleting the oldest delivered evidence; undelivered
evidence is never deleted, and a quota that only undelivered files fill says disk_full."""

from __future__ import annotations

import os
from pathlib import Path

from edge.outbox import Outbox, UploadItem
from edge.retention import RetentionWorker, enforce_quota


def make(path: Path, size: int, age_s: float) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\0" * size)
    t = 1_700_000_000 - age_s
    os.utime(path, (t, t))
    return path


def test_oldest_delivered_go_first_until_under_quota(tmp_path: Path) -> None:
    ev = tmp_path / "evidence"
    old = make(ev / "cam" / "e1" / "snapshot.jpg", 1000, age_s=300)
    mid = make(ev / "cam" / "e2" / "snapshot.jpg", 1000, age_s=200)
    new = make(ev / "cam" / "e3" / "snapshot.jpg", 1000, age_s=100)
    deleted: list[str] = []
    st = enforce_quota([ev], 2000, undelivered=set(), on_deleted=deleted.extend)
    assert not old.exists() and mid.exists() and new.exists()
    assert not old.parent.exists()  # the emptied event folder went too
    assert deleted == [str(old)]
    assert (st.used_bytes, st.deleted_files, st.deleted_bytes, st.disk_full) == (2000, 1, 1000, False)


def test_undelivered_are_never_deleted_and_disk_full_is_flagged(tmp_path: Path) -> None:
    clips = tmp_path / "clips"
    a = make(clips / "a.mp4", 5000, age_s=500)  # oldest, but not yet at central
    b = make(clips / "b.mp4", 1000, age_s=400)
    c = make(clips / "c.mp4", 1000, age_s=10)
    st = enforce_quota([clips], 4500, undelivered={str(a)})
    assert a.exists() and not b.exists() and not c.exists()
    assert st.disk_full and st.undelivered_bytes == 5000 and st.used_bytes == 5000


def test_hard_links_count_once_and_go_together(tmp_path: Path) -> None:
    clips, ev = tmp_path / "clips", tmp_path / "evidence"
    clip = make(clips / "x.mp4", 4000, age_s=100)
    (ev / "e1").mkdir(parents=True)
    os.link(clip, ev / "e1" / "clip.mp4")  # two events sharing one clip
    st = enforce_quota([clips, ev], 4000, undelivered=set())
    assert st.used_bytes == 4000 and st.deleted_files == 0 and clip.exists()
    protected = enforce_quota([clips, ev], 100, undelivered={str(ev / "e1" / "clip.mp4")})
    assert clip.exists() and protected.disk_full  # one link undelivered protects the inode
    enforce_quota([clips, ev], 100, undelivered=set())
    assert not clip.exists() and not (ev / "e1" / "clip.mp4").exists()


def test_worker_uses_the_outbox_delivery_state(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "outbox.sqlite3")
    clips = tmp_path / "clips"
    a = make(clips / "a.mp4", 3000, age_s=300)
    b = make(clips / "b.mp4", 3000, age_s=200)
    box.put([], [UploadItem("a" * 64, str(a), 3000, "video/mp4"), UploadItem("b" * 64, str(b), 3000, "video/mp4")])
    worker = RetentionWorker([clips], 4000, box.undelivered_paths, box.forget_uploads)
    st = worker.check()
    assert a.exists() and b.exists() and st.disk_full  # nothing delivered yet: nothing deleted
    box.upload_done("a" * 64)
    st = worker.check()
    assert not a.exists() and b.exists() and not st.disk_full
    assert box.undelivered_paths() == {str(b)}
    assert [i.sha256 for i in box.pending_uploads()] == ["b" * 64]
    box.close()
