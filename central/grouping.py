"""Events -> field reports: one report grows per (node, camera, zone, type) within a window, or per
incident (the start/update/end phases of one incident share its id). Runs inside the ingester's
transaction, so an event and its report change commit together.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from central.config import CentralConfig
from central.db import EventRow, ReportEventRow, ReportRow, utcnow
from central.reports import ReportTemplates, build_report_texts, format_local
from central.workflow import OPEN_STATUSES, RoutingTable, record
from contract.events import ViolationEvent


@dataclass(frozen=True)
class Attached:
    report: ReportRow
    created: bool


def group_key(event: ViolationEvent) -> str:
    return f"{event.node}/{event.camera}/{event.zone.id if event.zone else '-'}/{event.type.value}"


def _lock(session: Session, key: str) -> None:
    # PostgreSQL: two ingesters must not both open a report for one group. SQLite needs nothing:
    # the event INSERT before this already holds the database's single write lock.
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": key})


def _find(session: Session, event: ViolationEvent, window_s: float) -> tuple[ReportRow, Any] | None:
    """The open report this event grows, with its best event's payload (one round trip)."""
    stmt = select(ReportRow, EventRow.payload).outerjoin(EventRow, EventRow.id == ReportRow.best_event_id)
    if event.incident:
        stmt = stmt.where(ReportRow.incident == event.incident).order_by(ReportRow.id)
    else:
        window = timedelta(seconds=window_s)
        stmt = stmt.where(
            ReportRow.group_key == group_key(event),
            ReportRow.incident.is_(None),
            ReportRow.status.in_(OPEN_STATUSES),
            ReportRow.last_seen >= event.started_at - window,
            ReportRow.first_seen <= event.ended_at + window,
        ).order_by(ReportRow.last_seen.desc())
    row = session.execute(stmt.limit(1)).first()
    return (row[0], row[1]) if row is not None else None


def _plate(event: ViolationEvent) -> str | None:
    return next((o.plate for o in event.objects if o.plate), None)


def _has_snapshot(event: ViolationEvent) -> bool:
    return any(e.kind == "snapshot" for e in event.evidence)


_COUNT_VI, _COUNT_EN = "\nSố lần ghi nhận: ", "\nTimes recorded: "


def _count_lines(report: ReportRow, tz: ZoneInfo) -> None:
    """Replace the "recorded N times" line: cheap, no need to re-read the best event."""
    report.description_vi = report.description_vi.split(_COUNT_VI)[0]
    report.description_en = report.description_en.split(_COUNT_EN)[0]
    if report.event_count > 1 and report.first_seen and report.last_seen:
        span_vi = f"{format_local(report.first_seen, tz, 'vi')} – {format_local(report.last_seen, tz, 'vi')}"
        span_en = f"{format_local(report.first_seen, tz, 'en')} – {format_local(report.last_seen, tz, 'en')}"
        report.description_vi += f"{_COUNT_VI}{report.event_count} (từ {span_vi})"
        report.description_en += f"{_COUNT_EN}{report.event_count} ({span_en})"


def _texts(report: ReportRow, best: ViolationEvent, templates: ReportTemplates, tz: ZoneInfo) -> None:
    texts = build_report_texts(best, templates=templates, tz=tz)
    report.title_vi, report.title_en = texts.title_vi, texts.title_en
    report.description_vi, report.description_en = texts.description_vi, texts.description_en
    _count_lines(report, tz)


def _beats_best(event: ViolationEvent, best_payload: Any) -> bool:
    """Whether `event` should become the report's best: a snapshot first, then the most confident."""
    if not isinstance(best_payload, dict):
        return True
    best_snap = any(e.get("kind") == "snapshot" for e in best_payload.get("evidence", []))
    return (_has_snapshot(event), event.confidence) > (best_snap, float(best_payload.get("confidence", 0)))


def attach_event(
    session: Session,
    event: ViolationEvent,
    *,
    config: CentralConfig,
    routing: RoutingTable,
    templates: ReportTemplates,
    tz: ZoneInfo,
) -> Attached:
    """Add a stored event to its report (a new one, or the open report of its group/incident)."""
    key = f"incident:{event.incident}" if event.incident else group_key(event)
    _lock(session, key)
    found = _find(session, event, config.reports.group_window_s)
    now = utcnow()
    if found is None:
        loc = event.location
        agency = routing.route(event.category, loc.ward, loc.district)
        priority = routing.priority(event.type)
        report = ReportRow(
            event_id=event.id,
            category=event.category.value,
            type=event.type.value,
            node=event.node,
            camera=event.camera,
            status="new",
            created_at=now,
            updated_at=now,
            group_key=group_key(event),
            incident=event.incident,
            zone_id=event.zone.id if event.zone else None,
            ward=loc.ward,
            district=loc.district,
            address=loc.address,
            lat=loc.lat,
            lon=loc.lon,
            first_seen=event.started_at,
            last_seen=event.ended_at,
            event_count=1,
            best_event_id=event.id,
            confidence=event.confidence,
            plate=_plate(event),
            priority=priority,
            agency_code=agency[0] if agency else None,
            agency_name_vi=agency[1].name.vi if agency else None,
            agency_name_en=agency[1].name.en if agency else None,
            deadline_at=routing.deadline(event.category, priority, event.started_at),
        )
        _texts(report, event, templates, tz)
        session.add(report)
        session.flush()
        record(session, report, actor="system", action="created", to_status="new", at=now)
        session.add(ReportEventRow(event_id=event.id, report_id=report.id, added_at=now))
        return Attached(report, True)

    report, best_payload = found
    report.event_count = (report.event_count or 1) + 1
    if report.first_seen is None or event.started_at < report.first_seen:
        report.first_seen = event.started_at
    if report.last_seen is None or event.ended_at > report.last_seen:
        report.last_seen = event.ended_at
    report.plate = report.plate or _plate(event)
    report.updated_at = now
    if _beats_best(event, best_payload):
        report.best_event_id = event.id
        report.confidence = event.confidence
        _texts(report, event, templates, tz)
    else:
        _count_lines(report, tz)
    session.add(ReportEventRow(event_id=event.id, report_id=report.id, added_at=now))
    return Attached(report, False)
