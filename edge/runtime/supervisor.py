"""Restart a crashed worker with backoff, and say so.

    sup = Supervisor("camera-a", run_once, stop_event, on_state=report)
    sup.run()   # on the worker's own thread: returns when run_once returns, stop is set, or it gives up

`run_once` raising is a crash: the supervisor reports `restarting` (with the error), waits (1 s,
doubling up to `max_s`), counts a restart and calls it again. A run that lasted `stable_s` resets
the backoff and the count of consecutive crashes; after `max_consecutive` crashes in a row it
reports `failed` and stops trying (None: never give up). `run_once` returning normally is the end
(a file that is over, a node that stops).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

log = logging.getLogger("edge.runtime.supervisor")

SupervisorState = Literal["running", "restarting", "failed", "done"]


@dataclass(frozen=True)
class RestartPolicy:
    initial_s: float = 1.0
    max_s: float = 60.0
    stable_s: float = 60.0  # a run at least this long was healthy: backoff and crash count start over
    max_consecutive: int | None = 10


class Supervisor:
    def __init__(
        self,
        name: str,
        run_once: Callable[[], None],
        stop: threading.Event,
        *,
        policy: RestartPolicy | None = None,
        on_state: Callable[[SupervisorState, str | None], None] | None = None,
    ) -> None:
        self.name = name
        self.run_once = run_once
        self.stop = stop
        self.policy = policy or RestartPolicy()
        self.on_state = on_state
        self.state: SupervisorState = "running"
        self.restarts = 0
        self.last_error: str | None = None

    def _say(self, state: SupervisorState) -> None:
        self.state = state
        if self.on_state is not None:
            try:
                self.on_state(state, self.last_error)
            except Exception:  # a broken observer must not stop the supervision
                log.exception("supervisor %s: on_state failed", self.name)

    def run(self) -> None:
        p = self.policy
        backoff, consecutive = p.initial_s, 0
        while not self.stop.is_set():
            started = time.monotonic()
            try:
                self.run_once()
            except Exception as exc:
                if time.monotonic() - started >= p.stable_s:
                    backoff, consecutive = p.initial_s, 0
                consecutive += 1
                self.last_error = f"{type(exc).__name__}: {exc}"[:2000]
                give_up = p.max_consecutive is not None and consecutive > p.max_consecutive
                log.exception(
                    "worker crashed", extra={"fields": {
                        "worker": self.name, "restarts": self.restarts, "consecutive": consecutive,
                        "next": "give up" if give_up else f"restart in {backoff:g} s"}},
                )
                if give_up:
                    self._say("failed")
                    return
                self._say("restarting")
                if self.stop.wait(backoff):
                    break
                backoff = min(backoff * 2, p.max_s)
                self.restarts += 1
                self.state = "running"
                continue
            break
        self.state = "done"
