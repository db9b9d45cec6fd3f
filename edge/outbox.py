"""The durable outbox: every message is on disk (SQLite, synchronous=FULL) before anything else
happens to it, and leaves only when the broker has acknowledged it (PUBACK).

A crash, a broker outage or a restart therefore loses nothing; delivery is at-least-once and
central stores by event id, which makes it exactly-once end to end.
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
        self._added = threading.Condition(self._lock)

    def put(self, messages: Sequence[OutboxMessage]) -> list[int]:
        """Store messages atomically (an event and its evidence go together or not at all)."""
        now = time.time()
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
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
