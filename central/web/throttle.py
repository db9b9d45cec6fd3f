"""Login throttling: per account and per client address, in the database (every web process sees it).

After `free` failed logins for a key within `window_s`, the key is refused for `base_s` seconds,
doubling with each further failure, never more than `cap_s`. Refused attempts are answered before
argon2 is reached (one primary-key read) and do not count, so a flood cannot stretch the delay.
A successful login clears its account's counter.

The counters live in `login_failures` (migration 0009), not in a process's memory: behind a
reverse proxy without sticky sessions each attempt may reach another web process, and a counter
per process would give an attacker N times the tries (issue 19, item 4). Each failure is one
atomic upsert (the row's lock on PostgreSQL, the write lock on SQLite), so two processes counting
the same key at once never lose a failure. Times are wall-clock seconds (processes share no
monotonic clock). Rows expire (`expires_at`, indexed) and each failure deletes the expired ones:
the table holds only the keys seen within a window.

Password verifications are bounded per process by a semaphore (they are CPU and memory in this
process): an attempt that finds all slots busy is refused at once, not queued.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterable

from sqlalchemy import case, delete, func, select, update
from sqlalchemy.orm import Session, sessionmaker

from central.db import LoginFailureRow, dialect_insert, session_scope

MAX_KEY = 200  # a key longer than this (a huge user name) is cut: the column's width


def _key(kind: str, value: str) -> str:
    return f"{kind}:{value}"[:MAX_KEY]


class Limiter:
    """Failures per key in `login_failures`; `retry_after` says how long a key is still refused."""

    def __init__(self, free: int, window_s: float, base_s: float, cap_s: float) -> None:
        self.free, self.window_s, self.base_s, self.cap_s = free, window_s, base_s, cap_s

    def delay(self, failures: int) -> float:
        return min(self.cap_s, self.base_s * 2 ** min(failures - self.free, 30)) if failures >= self.free else 0.0

    def failed(self, s: Session, key: str, now: float) -> None:
        insert = dialect_insert(s.get_bind().dialect.name)
        row = LoginFailureRow
        # A key whose window has passed and that is not refused any more starts again at 1.
        fresh = (now - row.first_at > self.window_s) & (now >= row.blocked_until)
        stmt = insert(row).values(key=key, first_at=now, failures=1, blocked_until=0.0, expires_at=now + self.window_s)
        stmt = stmt.on_conflict_do_update(
            index_elements=["key"],
            set_={
                "first_at": case((fresh, now), else_=row.first_at),
                "failures": case((fresh, 1), else_=row.failures + 1),
            },
        ).returning(row.first_at, row.failures, row.blocked_until)
        first_at, failures, blocked_until = s.execute(stmt).one()
        delay = self.delay(failures)
        if delay:
            blocked_until = max(blocked_until, now + delay)
        s.execute(
            update(row)
            .where(row.key == key)
            .values(blocked_until=blocked_until, expires_at=max(first_at + self.window_s, blocked_until))
        )


class LoginThrottle:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        *,
        account_failures: int,
        address_failures: int,
        window_s: float,
        base_delay_s: float,
        max_delay_s: float,
        concurrent_verifications: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.sessions = sessions
        self.accounts = Limiter(account_failures, window_s, base_delay_s, max_delay_s)
        self.addresses = Limiter(address_failures, window_s, base_delay_s, max_delay_s)
        self.verifications = threading.BoundedSemaphore(concurrent_verifications)
        self._clock = clock

    @staticmethod
    def _keys(username: str, address: str) -> tuple[str, str]:
        return _key("account", username.casefold()), _key("address", address)

    def retry_after(self, username: str, address: str) -> int:
        """Seconds (rounded up) before this attempt may be tried; 0: go ahead."""
        now = self._clock()
        with self.sessions() as s:
            blocked: Iterable[float] = s.scalars(
                select(LoginFailureRow.blocked_until).where(LoginFailureRow.key.in_(self._keys(username, address)))
            )
            wait = max([0.0, *(b - now for b in blocked)])
        return math.ceil(wait) if wait > 0 else 0

    def failed(self, username: str, address: str) -> None:
        now = self._clock()
        account, addr = self._keys(username, address)
        with session_scope(self.sessions) as s:
            # Keys in a fixed order: two processes failing the same pair cannot deadlock.
            for key, limiter in sorted(((account, self.accounts), (addr, self.addresses)), key=lambda kl: kl[0]):
                limiter.failed(s, key, now)
            s.execute(delete(LoginFailureRow).where(LoginFailureRow.expires_at < now))

    def succeeded(self, username: str) -> None:
        with session_scope(self.sessions) as s:
            s.execute(delete(LoginFailureRow).where(LoginFailureRow.key == self._keys(username, "")[0]))

    def keys(self) -> int:
        """How many keys are counted now (for tests and metrics)."""
        with self.sessions() as s:
            return int(s.scalar(select(func.count()).select_from(LoginFailureRow)) or 0)
