"""The police view live: alerts pushed over Server-Sent Events, and their acknowledgement.

The browser keeps one `EventSource` open (no polling from the page); the server looks at the alert
outbox once a second for rows above the last id it sent, so a stream serves alerts written by any
process (the web process queues them, the dispatcher releases undo windows). Each event carries the
alert's id: a reconnecting browser sends it back as `Last-Event-ID` and gets what it missed, once.
A police officer gets only their districts' alerts (the same scope as `/api/alerts`); the session
is checked again while the stream is open, so a logout or an expired session ends it.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from central import auth, queries
from central.db import AlertRow, ReportRow, session_scope, utcnow
from central.reports import format_local
from central.services.access import FORBIDDEN, NOT_FOUND
from central.workflow import WorkflowError, record

BACKLOG = 50  # a fresh page (no Last-Event-ID) starts with the latest alerts
ACK_ROLES = ("police", "admin")


def districts_of(user: auth.User) -> auth.User | None:
    """The police user whose places' alerts (wards, areas, legacy districts) `user` sees (None: all,
    for operators and admins)."""
    return user if user.role == "police" else None


def _local(value: datetime | None, tz: str) -> dict[str, str] | None:
    if value is None:
        return None
    zone = ZoneInfo(tz)
    return {"at": value.isoformat(), "vi": format_local(value, zone, "vi"), "en": format_local(value, zone, "en")}


def alert_view(a: AlertRow, tz: str) -> dict[str, Any]:
    """An alert as the police view and `/api/alerts` show it: the queued payload, its id and time,
    and who acknowledged it when."""
    return {
        "id": a.id,
        "created_at": a.created_at.isoformat(),
        **a.payload,
        "created": _local(a.created_at, tz),
        "acknowledged": (
            {"by": a.acknowledged_by, **(_local(a.acknowledged_at, tz) or {})}
            if a.acknowledged_at is not None
            else None
        ),
    }


def latest_id(s: Session, districts: auth.User | None) -> int:
    """The id below which a fresh stream does not go (all but the latest BACKLOG alerts)."""
    stmt = select(AlertRow.id).order_by(AlertRow.id.desc()).offset(BACKLOG - 1).limit(1)
    if districts is not None:
        stmt = stmt.where(queries.alert_place(districts))
    found = s.scalar(stmt)
    return max(0, (found or 0) - 1)


def parse_last_event_id(header: str | None, query: int | None) -> int | None:
    """The id to resume after: the browser's Last-Event-ID header, else `?after=`, else None."""
    if header and header.strip().isdigit():
        return int(header.strip())
    return query


def _event(alert: dict[str, Any]) -> str:
    data = json.dumps(alert, ensure_ascii=False, separators=(",", ":"))
    return f"id: {alert['id']}\nevent: alert\ndata: {data}\n\n"


async def alert_stream(
    sessions: sessionmaker[Session],
    token: str | None,
    tz: str,
    after: int | None,
    *,
    poll_s: float = 1.0,
    keepalive_s: float = 15.0,
    recheck_session_s: float = 30.0,
) -> AsyncIterator[str]:
    """The text/event-stream of one logged-in user's alerts after `after` (None: the latest ones)."""

    def session_user() -> auth.User | None:
        with session_scope(sessions) as s:
            info = auth.load_session(s, token)
        return info.user if info is not None else None

    user = await run_in_threadpool(session_user)
    if user is None:
        return
    districts = districts_of(user)

    def fetch(since: int | None) -> tuple[int, list[dict[str, Any]]]:
        with sessions() as s:
            start = latest_id(s, districts) if since is None else since
            rows = queries.alerts_after(s, start, 100, districts)
            return (rows[-1].id if rows else start), [alert_view(a, tz) for a in rows]

    yield "retry: 3000\n\n"  # the browser reconnects after 3 s, sending Last-Event-ID
    last_write = checked = time.monotonic()
    while True:
        after, alerts = await run_in_threadpool(fetch, after)
        for a in alerts:
            yield _event(a)
        now = time.monotonic()
        if alerts:
            last_write = now
        elif now - last_write >= keepalive_s:
            yield ": keep-alive\n\n"  # a comment: keeps proxies from closing an idle stream
            last_write = now
        if now - checked >= recheck_session_s:
            checked = now
            if await run_in_threadpool(session_user) is None:
                return  # logged out or expired: the stream ends; the browser's reconnect gets 401
        await asyncio.sleep(poll_s)


def acknowledge(sessions: sessionmaker[Session], alert_id: int, user: auth.User, tz: str) -> dict[str, Any]:
    """A police officer takes an alert: who and when are stored on the alert and audited on its
    report; once only (409 naming who took it). Another district's alert is a 404."""
    if user.role not in ACK_ROLES:
        raise WorkflowError(403, FORBIDDEN)
    districts = districts_of(user)
    with session_scope(sessions) as s:
        alert = s.get(AlertRow, alert_id)
        if alert is None or (districts is not None and not districts.sees_place(alert.ward, alert.area, alert.district)):
            raise WorkflowError(404, NOT_FOUND)
        at = utcnow()
        # A conditional UPDATE: of two officers taking it at once, one wins, the other gets 409.
        taken = s.execute(
            update(AlertRow)
            .where(AlertRow.id == alert_id, AlertRow.acknowledged_at.is_(None))
            .values(acknowledged_at=at, acknowledged_by=user.username)
            .execution_options(synchronize_session=False)
        ).rowcount  # type: ignore[attr-defined]  # a CursorResult for an UPDATE
        s.refresh(alert)
        if not taken:
            who = alert.acknowledged_by
            raise WorkflowError(409, f"đã được {who} nhận / already acknowledged by {who}")
        report = s.get(ReportRow, alert.report_id)
        if report is not None:
            record(s, report, actor=user.username, action="alert_ack", note=f"alert {alert.id}", at=at)
        return alert_view(alert, tz)
