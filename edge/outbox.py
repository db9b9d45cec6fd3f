"""The durable outbox: every message is on disk (SQLite, synchronous=FULL) before anything else
happens to it, and leaves only when the broker has acknowledged it (PUBACK).

A crash, a broker outage or a restart therefore loses nothing; delivery is at-least-once and
central stores by event id, which makes it exactly-once end to end.

Large evidence files (clips) are not blobs here: the `uploads` table references the file on disk
by its sha256, in the same transaction as the event; the uploader sends it to central over HTTP
and marks it delivered on central's acknowledgement. Retention never deletes an undelivered file.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class OutboxMessage:
    topic: str
    payload: bytes
    qos: int = 1
    seq: int = 0  # set by the outbox


@dataclass(frozen=True, slots=True)
class UploadItem:
    """An evidence file to upload to central, keyed by its sha256 (one row however many events share it)."""

    sha256: str
    path: str
    size: int
    media_type: str
    attempts: int = 0


class Outbox:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS outbox ("
            " seq INTEGER PRIMARY KEY AUTOINCREMENT, topic TEXT NOT NULL, payload BLOB NOT NULL,"
            " qos INTEGER NOT NULL, created_at REAL NOT NULL)"
        )
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS uploads ("
            " sha256 TEXT PRIMARY KEY, path TEXT NOT NULL, size INTEGER NOT NULL, media_type TEXT NOT NULL,"
            " created_at REAL NOT NULL, delivered_at REAL, attempts INTEGER NOT NULL DEFAULT 0, last_error TEXT)"
        )
        self._added = threading.Condition(self._lock)

    def put(self, messages: Sequence[OutboxMessage], uploads: Sequence[UploadItem] = ()) -> list[int]:
        """Store messages and uploads atomically (an event and its evidence go together or not at all)."""
        now = time.time()
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany(
                    "INSERT OR IGNORE INTO uploads (sha256, path, size, media_type, created_at) VALUES (?, ?, ?, ?, ?)",
                    [(u.sha256, u.path, u.size, u.media_type, now) for u in uploads],
                )
                seqs = [
                    self._db.execute(
                        "INSERT INTO outbox (topic, payload, qos, created_at) VALUES (?, ?, ?, ?)",
                        (m.topic, m.payload, m.qos, now),
                    ).lastrowid
                    for m in messages
                ]
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._added.notify_all()
        return [int(s) for s in seqs if s is not None]

    def pending(self, after_seq: int = 0, limit: int = 100) -> list[OutboxMessage]:
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, topic, payload, qos FROM outbox WHERE seq > ? ORDER BY seq LIMIT ?", (after_seq, limit)
            ).fetchall()
        return [OutboxMessage(topic=r[1], payload=bytes(r[2]), qos=r[3], seq=r[0]) for r in rows]

    def wait_for_more(self, after_seq: int, timeout: float) -> None:
        with self._lock:
            row = self._db.execute("SELECT MAX(seq) FROM outbox").fetchone()
            if row[0] is None or row[0] <= after_seq:
                self._added.wait(timeout)

    def ack(self, seqs: Sequence[int]) -> None:
        if not seqs:
            return
        with self._lock:
            self._db.executemany("DELETE FROM outbox WHERE seq = ?", [(s,) for s in seqs])

    def pending_uploads(self, limit: int = 20) -> list[UploadItem]:
        with self._lock:
            rows = self._db.execute(
                "SELECT sha256, path, size, media_type, attempts FROM uploads WHERE delivered_at IS NULL"
                " ORDER BY created_at, sha256 LIMIT ?",
                (limit,),
            ).fetchall()
        return [UploadItem(*r) for r in rows]

    def upload_done(self, sha256: str) -> None:
        with self._lock:
            self._db.execute(
                "UPDATE uploads SET delivered_at = ?, last_error = NULL WHERE sha256 = ?", (time.time(), sha256)
            )

    def upload_failed(self, sha256: str, error: str) -> None:
        with self._lock:
            self._db.execute(
                "UPDATE uploads SET attempts = attempts + 1, last_error = ? WHERE sha256 = ?", (error[:500], sha256)
            )

    def undelivered_paths(self) -> set[str]:
        with self._lock:
            return {r[0] for r in self._db.execute("SELECT path FROM uploads WHERE delivered_at IS NULL")}

    def forget_uploads(self, paths: Sequence[str]) -> None:
        """Drop delivered rows whose files retention has deleted."""
        with self._lock:
            self._db.executemany("DELETE FROM uploads WHERE path = ? AND delivered_at IS NOT NULL", [(p,) for p in paths])

    def upload_backlog(self) -> tuple[int, int]:
        """(files, bytes) not yet delivered."""
        with self._lock:
            n, size = self._db.execute(
                "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM uploads WHERE delivered_at IS NULL"
            ).fetchone()
        return int(n), int(size)

    def backlog(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0])

    def oldest_age(self) -> float | None:
        with self._lock:
            row = self._db.execute("SELECT MIN(created_at) FROM outbox").fetchone()
        return None if row[0] is None else max(0.0, time.time() - row[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()
