"""Login throttling: per account and per client address, in this process's memory.

After `free` failed logins for a key within `window_s`, the key is refused for `base_s` seconds,
doubling with each further failure, never more than `cap_s`. Refused attempts are answered before
the database or argon2 is reached and do not count (so a flood cannot stretch the delay). A
successful login clears its account's counter. Password verifications are bounded by a semaphore:
an attempt that finds all slots busy is refused at once, not queued.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

MAX_KEYS = 100_000  # memory bound: beyond this, expired entries go first, then the oldest


@dataclass
class _Entry:
    first: float
    failures: int = 0
    blocked_until: float = 0.0


class Limiter:
    """Failures per key; `retry_after` says how long a key is still refused (0: not refused)."""

    def __init__(self, free: int, window_s: float, base_s: float, cap_s: float, clock: Callable[[], float]) -> None:
        self.free, self.window_s, self.base_s, self.cap_s = free, window_s, base_s, cap_s
        self._clock = clock
        self._entries: dict[str, _Entry] = {}
        self._lock = threading.Lock()

    def retry_after(self, key: str) -> float:
        with self._lock:
            e = self._entries.get(key)
            return max(0.0, e.blocked_until - self._clock()) if e else 0.0

    def failed(self, key: str) -> None:
        now = self._clock()
        with self._lock:
            e = self._entries.get(key)
            if e is None or now - e.first > self.window_s and now >= e.blocked_until:
                if len(self._entries) >= MAX_KEYS:
                    self._prune(now)
                e = self._entries[key] = _Entry(first=now)
            e.failures += 1
            if e.failures >= self.free:
                delay = min(self.cap_s, self.base_s * 2 ** min(e.failures - self.free, 30))
                e.blocked_until = max(e.blocked_until, now + delay)

    def reset(self, key: str) -> None:
        with self._lock:
            self._entries.pop(key, None)

    def _prune(self, now: float) -> None:
        for k in [k for k, e in self._entries.items() if now - e.first > self.window_s and now >= e.blocked_until]:
            del self._entries[k]
        while len(self._entries) >= MAX_KEYS:  # still full: forget the oldest
            del self._entries[next(iter(self._entries))]


class LoginThrottle:
    def __init__(
        self,
        *,
        account_failures: int,
        address_failures: int,
        window_s: float,
        base_delay_s: float,
        max_delay_s: float,
        concurrent_verifications: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.accounts = Limiter(account_failures, window_s, base_delay_s, max_delay_s, clock)
        self.addresses = Limiter(address_failures, window_s, base_delay_s, max_delay_s, clock)
        self.verifications = threading.BoundedSemaphore(concurrent_verifications)

    def retry_after(self, username: str, address: str) -> int:
        """Seconds (rounded up) before this attempt may be tried; 0: go ahead."""
        wait = max(self.accounts.retry_after(username.casefold()), self.addresses.retry_after(address))
        return math.ceil(wait) if wait > 0 else 0

    def failed(self, username: str, address: str) -> None:
        self.accounts.failed(username.casefold())
        self.addresses.failed(address)

    def succeeded(self, username: str) -> None:
        self.accounts.reset(username.casefold())
