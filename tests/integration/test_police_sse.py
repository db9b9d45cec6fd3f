"""Police alerts live over Server-Sent Events (issue 17, item 8), on a real uvicorn server over HTTP
and both databases: an alert queued by a confirmation reaches the stream of the district's police
officer within seconds and never another district's; a reconnect with Last-Event-ID gets what it
missed and nothing twice; acknowledging stores who and when, audits it, and is refused twice."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from central.auth import SESSION_COOKIE
from central.db import AlertRow, ReportHistoryRow, make_session_factory
from central.services import police_live
from central.web import create_app
from tests.integration.test_central_web import live_server
from tests.integration.test_review_race import _login
from tests.integration.test_review_undo import _cfg, _store
from tests.services import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

HK = {"ward": "Phường Hàng Bài", "district": "Quận Hoàn Kiếm", "address": "1 Tràng Tiền"}


class Stream:
    """One open text/event-stream, parsed into events by a reader thread."""

    def __init__(self, client: httpx.Client, headers: dict[str, str] | None = None) -> None:
        self.events: list[dict[str, Any]] = []
        self.comments = 0
        self.status: int | None = None
        self.content_type = ""
        self._client, self._headers = client, headers or {}
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()
        wait_until(lambda: self.status is not None, timeout=10, what="the stream's response")

    def _read(self) -> None:
        try:
            headers = {"Accept": "text/event-stream", **self._headers}  # as EventSource sends it
            with self._client.stream("GET", "/api/alerts/stream", headers=headers, timeout=None) as r:
                self.content_type = r.headers.get("content-type", "")
                self.status = r.status_code
                event: dict[str, str] = {}
                for line in r.iter_lines():
                    if line.startswith(":"):
                        self.comments += 1
                    elif not line:
                        if "data" in event:
                            self.events.append(
                                {"id": int(event["id"]), "event": event.get("event"), **json.loads(event["data"])}
                            )
                        event = {}
                    else:
                        key, _, value = line.partition(":")
                        event[key] = value.removeprefix(" ")
        except httpx.HTTPError:
            pass  # closed by the test

    def report_ids(self) -> list[int]:
        return [e["report_id"] for e in self.events]


@contextmanager
def _server(cfg: Any, engine: Any) -> Iterator[str]:
    with live_server(create_app(cfg, engine=engine)) as port:
        yield f"http://127.0.0.1:{port}"


def test_an_alert_reaches_the_districts_police_live_and_resumes(
    central_database_url: str, central_users: Any, tmp_path: Path
) -> None:
    cfg = _cfg(central_database_url, tmp_path, undo_seconds=0)
    from central.db import make_engine

    engine = make_engine(cfg.database_url)
    hue, hk, hue2 = (
        _store(cfg, engine),
        _store(cfg, engine, camera="c-hk", location=HK),
        _store(cfg, engine, camera="c2"),
    )
    with _server(cfg, engine) as base:
        hue_client, hue_csrf = _login(base, "police-hue")
        hk_client, _ = _login(base, "police-hk")
        op, op_csrf = _login(base, "op")
        hue_stream, hk_stream = Stream(hue_client), Stream(hk_client)
        assert hue_stream.status == 200 and hue_stream.content_type.startswith("text/event-stream")
        time.sleep(1.5)
        assert hue_stream.events == [] and hk_stream.events == []  # nothing confirmed, nothing alerted

        started = time.monotonic()
        for rid in (hue, hk):
            assert op.post(f"/api/reports/{rid}/confirm", headers={"X-CSRF-Token": op_csrf}).status_code == 200
        wait_until(lambda: hue_stream.report_ids() == [hue], timeout=10, what="Huế's alert on Huế's stream")
        latency = time.monotonic() - started
        wait_until(lambda: hk_stream.report_ids() == [hk], timeout=10, what="Hoàn Kiếm's alert on its stream")
        time.sleep(1.5)
        assert hue_stream.report_ids() == [hue] and hk_stream.report_ids() == [hk]  # never the other district's
        first = hue_stream.events[0]
        assert (
            first["event"] == "alert"
            and first["place"]["district"] == "Thành phố Huế"
            and first["acknowledged"] is None
        )
        assert latency < 5, latency

        # The browser reconnects after a drop, sending the last id it saw: only what it missed comes.
        assert op.post(f"/api/reports/{hue2}/confirm", headers={"X-CSRF-Token": op_csrf}).status_code == 200
        resumed = Stream(hue_client, {"Last-Event-ID": str(first["id"])})
        wait_until(lambda: resumed.report_ids() == [hue2], timeout=10, what="the missed alert after Last-Event-ID")
        fresh = Stream(hue_client)  # a fresh page: the latest alerts of its districts
        wait_until(lambda: fresh.report_ids() == [hue, hue2], timeout=10, what="the backlog of a fresh stream")

        # Acknowledge: who and when on the alert, shown in the API, audited; once.
        r = hue_client.post(f"/api/alerts/{first['id']}/ack", headers={"X-CSRF-Token": hue_csrf})
        assert r.status_code == 200, r.text
        ack = r.json()["acknowledged"]
        assert ack["by"] == "police-hue" and ack["vi"] and ack["at"]
        again = hue_client.post(f"/api/alerts/{first['id']}/ack", headers={"X-CSRF-Token": hue_csrf})
        assert again.status_code == 409 and "police-hue" in again.text
        listed = {a["id"]: a for a in hue_client.get("/api/alerts").json()["alerts"]}
        assert listed[first["id"]]["acknowledged"]["by"] == "police-hue"
        # Another district's officer cannot see or take it; without the CSRF token nobody can.
        hk_alert = hk_stream.events[0]["id"]
        assert hue_client.post(f"/api/alerts/{hk_alert}/ack", headers={"X-CSRF-Token": hue_csrf}).status_code == 404
        assert hue_client.post(f"/api/alerts/{hk_alert}/ack").status_code == 403
        assert op.post(f"/api/alerts/{hk_alert}/ack", headers={"X-CSRF-Token": op_csrf}).status_code == 403
        # Not logged in: no stream; a client that did not ask for an event stream: 406 at once.
        sse = {"Accept": "text/event-stream"}
        assert httpx.get(f"{base}/api/alerts/stream", headers=sse, timeout=10).status_code == 401
        assert hue_client.get("/api/alerts/stream", headers={"Accept": "application/json"}).status_code == 406
        for c in (hue_client, hk_client, op):
            c.close()
    with make_session_factory(engine)() as s:
        row = s.get(AlertRow, first["id"])
        assert row is not None and row.acknowledged_by == "police-hue" and row.acknowledged_at is not None
        acks = s.scalars(select(ReportHistoryRow).where(ReportHistoryRow.action == "alert_ack")).all()
        assert [(h.report_id, h.actor) for h in acks] == [(hue, "police-hue")]
    engine.dispose()


def test_an_idle_stream_sends_keep_alive_comments_and_ends_on_logout(
    central_database_url: str, central_users: Any, tmp_path: Path
) -> None:
    """The generator itself with short intervals (the route's are 15 s and 30 s)."""
    cfg = _cfg(central_database_url, tmp_path, undo_seconds=0)
    from central.db import make_engine

    engine = make_engine(cfg.database_url)
    with _server(cfg, engine) as base:
        client, _ = _login(base, "police-hue")
        token = client.cookies.get(SESSION_COOKIE)

        async def read(logout_after: float) -> tuple[list[str], float]:
            got: list[str] = []
            stream = police_live.alert_stream(
                make_session_factory(engine),
                token,
                cfg.time_zone,
                None,
                poll_s=0.05,
                keepalive_s=0.2,
                recheck_session_s=0.1,
            )
            started = time.monotonic()
            async for chunk in stream:
                got.append(chunk)
                if time.monotonic() - started > logout_after and not client.is_closed:
                    client.post("/logout", headers={"X-CSRF-Token": client.get("/api/me").json()["csrf"]})
                    client.close()
                if time.monotonic() - started > 10:
                    break
            return got, time.monotonic() - started

        chunks, lasted = asyncio.run(read(1.0))
    assert lasted < 5, lasted  # logged out at 1 s: the session check (every 0.1 s here) ended it
    assert chunks[0].startswith("retry:")
    assert sum(c == ": keep-alive\n\n" for c in chunks) >= 3
    assert not any(c.startswith("id:") for c in chunks)  # no alerts: nothing but comments
    engine.dispose()
