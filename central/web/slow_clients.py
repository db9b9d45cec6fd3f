"""Request read timeouts for uvicorn's h11 protocol (issue 18, defect 10).

uvicorn has a keep-alive timeout for idle connections between requests, but none for a request
being read: a client that sends half a header line, or a body one byte a minute, holds its
connection (and, for a body, its request task) for ever; 500 of them exhaust the server's file
descriptors. This protocol gives every request `read_timeout_s` from the connection (or the end
of the previous response) until its headers and body are in; a connection still sending then is
closed. A request whose body is in and whose handler is still working (a PDF, a publish) is not
cut: the timer is re-armed until its response completes.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

from central.logs import kv

log = logging.getLogger("central.web")

DEFAULT_READ_TIMEOUT_S = 10.0


class ReadTimeoutH11Protocol(H11Protocol):
    read_timeout_s: float = DEFAULT_READ_TIMEOUT_S

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._read_timer: asyncio.TimerHandle | None = None

    def _arm(self) -> None:
        if self._read_timer is not None:
            self._read_timer.cancel()
        self._read_timer = self.loop.call_later(self.read_timeout_s, self._read_timed_out)

    def _read_timed_out(self) -> None:
        self._read_timer = None
        cycle = self.cycle
        still_reading = cycle is None or cycle.response_complete or cycle.more_body
        if not still_reading:  # the handler has the whole request and is working on it
            self._arm()
            return
        if not self.transport.is_closing():
            client = "%s:%d" % self.client if self.client else "?"  # noqa: UP031
            log.info(kv("http_read_timeout", client=client, seconds=self.read_timeout_s))
            self.transport.close()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm()  # the next request on this connection gets its own read time

    def connection_lost(self, exc: Exception | None) -> None:
        if self._read_timer is not None:
            self._read_timer.cancel()
            self._read_timer = None
        super().connection_lost(exc)


def protocol(read_timeout_s: float) -> type[ReadTimeoutH11Protocol]:
    """The protocol class for uvicorn.Config(http=...) with this read timeout."""
    return type("ReadTimeoutH11Protocol", (ReadTimeoutH11Protocol,), {"read_timeout_s": read_timeout_s})
