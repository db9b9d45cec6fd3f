"""Central's event retention: `python -m central purge-events` (run it daily, beside purge-evidence).

Years of events make every list slower and the database bigger; past a configured age
(`event_retention_days`, unset = keep for ever) they go, in batches so that no pass holds long
locks. A report goes with its events only when the whole report is old (created before the
cutoff, and its last sighting too): a report still growing keeps every event it grew, because
deleting its first event would cascade to the report itself. Events no report refers to go by
their own start, and dead letters by their arrival. Rows that hang off a report or an event
(history, alerts, links) go by the foreign keys' ON DELETE CASCADE. Evidence files are not
touched here: `purge-evidence` decides them by category, and an evidence file whose events are
gone is kept by it no longer than the longest evidence retention.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session, sessionmaker

from central.db import DeadLetterRow, EventRow, ReportEventRow, ReportRow, session_scope, utcnow
from central.logs import kv

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EventPurgeResult:
    reports: int
    events: int
    dead_letters: int


def purge_expired_events(
    sessions: sessionmaker[Session],
    retention_days: float,
    *,
    now: datetime | None = None,
    batch: int = 1000,
) -> EventPurgeResult:
    if retention_days <= 0:
        raise ValueError("retention_days must be positive")
    cutoff = (now or utcnow()) - timedelta(days=retention_days)
    reports = events = dead = 0

    # 1. Whole reports that are old, with their events (each batch one short transaction).
    # On the created_at index (a report is never older than its creation): each batch reads the
    # oldest reports first, so a pass over years of reports touches only the expired ones.
    report_age = func.coalesce(ReportRow.last_seen, ReportRow.created_at)
    while True:
        with session_scope(sessions) as s:
            old_reports = (
                select(ReportRow.id)
                .where(ReportRow.created_at < cutoff, report_age < cutoff)
                .order_by(ReportRow.created_at)
                .limit(batch)
            )
            ids = list(s.scalars(old_reports))
            if not ids:
                break
            event_ids = set(s.scalars(select(ReportEventRow.event_id).where(ReportEventRow.report_id.in_(ids))))
            event_ids |= set(s.scalars(select(ReportRow.event_id).where(ReportRow.id.in_(ids))))
            s.execute(delete(ReportRow).where(ReportRow.id.in_(ids)))
            # An event of an old report that started after the cutoff (a clock-suspect one) goes
            # with its report too: alone it would be an event no list shows.
            for i in range(0, len(event_ids), batch):
                chunk = list(event_ids)[i : i + batch]
                s.execute(delete(EventRow).where(EventRow.id.in_(chunk)))
                events += len(chunk)  # every id exists: both links are foreign keys
            reports += len(ids)

    # 2. Old events that belong to no report (an event still linked to a young report stays).
    # NOT EXISTS (an anti-join on the two keys), not NOT IN (a subquery over every link: at ten
    # million events a hash of every event id per batch, or worse).
    linked = select(ReportEventRow.event_id).where(ReportEventRow.event_id == EventRow.id).exists()
    first = select(ReportRow.id).where(ReportRow.event_id == EventRow.id).exists()
    while True:
        with session_scope(sessions) as s:
            ids = list(
                s.scalars(
                    select(EventRow.id)
                    .where(EventRow.started_at < cutoff, ~linked, ~first)
                    .order_by(EventRow.started_at)
                    .limit(batch)
                )
            )
            if not ids:
                break
            s.execute(delete(EventRow).where(EventRow.id.in_(ids)))
            events += len(ids)

    # 3. Dead letters (messages that never became events) by arrival.
    while True:
        with session_scope(sessions) as s:
            ids = list(s.scalars(select(DeadLetterRow.id).where(DeadLetterRow.received_at < cutoff).limit(batch)))
            if not ids:
                break
            s.execute(delete(DeadLetterRow).where(DeadLetterRow.id.in_(ids)))
            dead += len(ids)

    result = EventPurgeResult(reports, events, dead)
    log.info(kv("events_purged", reports=reports, events=events, dead_letters=dead, cutoff=cutoff.isoformat()))
    return result
