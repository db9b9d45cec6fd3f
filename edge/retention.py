"""Disk quota for a node's evidence: oldest delivered files go first, undelivered ones never.

`enforce_quota` is one pass: it measures the evidence folders (a hard-linked file counts once:
events that share a clip share its bytes), and while they are over the quota deletes the oldest
files that are not waiting for upload. What cannot be freed is reported, not deleted: the
node's status then says `disk_full` (and the log says it at ERROR), so the operator hears it
before the disk is actually full.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

log = logging.getLogger("edge.retention")

MIN_FREE_BYTES = 200 * 1024 * 1024  # below this on the file system, the node is "disk full" whatever the quota


@dataclass(frozen=True)
class RetentionStatus:
    quota_bytes: int
    used_bytes: int = 0
    undelivered_bytes: int = 0
    deleted_files: int = 0
    deleted_bytes: int = 0
    fs_free_bytes: int | None = None
    disk_full: bool = False  # over quota with only undelivered evidence left, or the file system nearly full

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class _Group:
    """The paths of one inode (hard links) and its size."""

    paths: list[Path]
    size: int
    mtime: float


def _scan(roots: Iterable[Path]) -> list[_Group]:
    groups: dict[tuple[int, int], _Group] = {}
    for root in roots:
        if not root.is_dir():
            continue
        for dirpath, _dirs, files in os.walk(root):
            for name in files:
                if name.endswith(".part"):
                    continue  # being written right now
                path = Path(dirpath) / name
                try:
                    st = path.stat()
                except FileNotFoundError:
                    continue
                g = groups.get((st.st_dev, st.st_ino))
                if g is None:
                    groups[(st.st_dev, st.st_ino)] = _Group([path], st.st_size, st.st_mtime)
                else:
                    g.paths.append(path)
    return list(groups.values())


def _remove_empty_dirs(path: Path, stop_at: Iterable[Path]) -> None:
    stops = {p.resolve() for p in stop_at}
    parent = path.parent
    while parent.resolve() not in stops:
        try:
            parent.rmdir()
        except OSError:
            return
        parent = parent.parent


def enforce_quota(
    roots: list[Path],
    quota_bytes: int,
    undelivered: set[str],
    on_deleted: Callable[[list[str]], None] | None = None,
) -> RetentionStatus:
    """Delete the oldest delivered evidence until `roots` use at most `quota_bytes`.

    `undelivered`: paths (as stored in the outbox) of files not yet acknowledged by central;
    a file with any of its hard links in it is never touched. `on_deleted` gets the deleted paths.
    """
    protected = {str(Path(p).resolve()) for p in undelivered}
    groups = _scan(roots)
    used = sum(g.size for g in groups)

    def is_protected(g: _Group) -> bool:
        return any(str(p.resolve()) in protected for p in g.paths)

    undelivered_bytes = sum(g.size for g in groups if is_protected(g))
    deleted_files = deleted_bytes = 0
    if used > quota_bytes:
        for g in sorted(groups, key=lambda g: g.mtime):
            if used <= quota_bytes:
                break
            if is_protected(g):
                continue
            gone: list[str] = []
            for p in g.paths:
                try:
                    p.unlink()
                    gone.append(str(p))
                    _remove_empty_dirs(p, roots)
                except FileNotFoundError:
                    pass
            used -= g.size
            deleted_files += len(gone)
            deleted_bytes += g.size
            if on_deleted is not None and gone:
                on_deleted(gone)
    free: int | None = None
    existing = [r for r in roots if r.exists()]
    if existing:
        free = shutil.disk_usage(existing[0]).free
    disk_full = used > quota_bytes or (free is not None and free < MIN_FREE_BYTES)
    status = RetentionStatus(quota_bytes, used, undelivered_bytes, deleted_files, deleted_bytes, free, disk_full)
    if deleted_files:
        log.info("retention: deleted %d delivered evidence files (%d bytes)", deleted_files, deleted_bytes)
    if disk_full:
        log.error(
            "EVIDENCE DISK FULL: %d bytes used of a %d byte quota, %d bytes not yet delivered to central "
            "(never deleted); file system free: %s bytes",
            used, quota_bytes, undelivered_bytes, free,
        )
    return status


class RetentionWorker(threading.Thread):
    """Runs `enforce_quota` every `interval_s` on the node's evidence folders."""

    def __init__(
        self,
        roots: list[Path],
        quota_bytes: int,
        undelivered: Callable[[], set[str]],
        on_deleted: Callable[[list[str]], None] | None = None,
        interval_s: float = 60.0,
    ) -> None:
        super().__init__(name="retention", daemon=True)
        self.roots = roots
        self.quota_bytes = quota_bytes
        self.undelivered = undelivered
        self.on_deleted = on_deleted
        self.interval_s = interval_s
        self.status = RetentionStatus(quota_bytes)
        self._stop_event = threading.Event()

    def check(self) -> RetentionStatus:
        self.status = enforce_quota(self.roots, self.quota_bytes, self.undelivered(), self.on_deleted)
        return self.status

    def run(self) -> None:
        while not self._stop_event.is_set():
            try:
                self.check()
            except Exception:  # retention trouble must not take the node down; it is logged
                log.exception("retention pass failed")
            self._stop_event.wait(self.interval_s)

    def stop(self) -> None:
        self._stop_event.set()
