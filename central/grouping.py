"""Events -> field reports: one report grows per (node, camera, zone, type) within a window, or per
incident (the start/update/end phases of one incident share its id). Runs inside the ingester's
transaction, so an event and its report change commit together.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
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


def _find(session: Session, event: ViolationEvent, window_s: float) -> ReportRow | None:
    if event.incident:
        return session.scalars(
            select(ReportRow).where(ReportRow.incident == event.incident).order_by(ReportRow.id).limit(1)
        ).first()
    window = timedelta(seconds=window_s)
    return session.scalars(
        select(ReportRow)
        .where(
            ReportRow.group_key == group_key(event),
            ReportRow.incident.is_(None),
            ReportRow.status.in_(OPEN_STATUSES),
            ReportRow.last_seen >= event.started_at - window,
            ReportRow.first_seen <= event.ended_at + window,
        )
        .order_by(ReportRow.last_seen.desc())
        .limit(1)
    ).first()


def _plate(event: ViolationEvent) -> str | None:
    return next((o.plate for o in event.objects if o.plate), None)


def _has_snapshot(event: ViolationEvent) -> bool:
    return any(e.kind == "snapshot" for e in event.evidence)


def _better(new: ViolationEvent, best: ViolationEvent) -> bool:
    """The evidence a report shows: an event with a snapshot first, then the most confident."""
    return (_has_snapshot(new), new.confidence) > (_has_snapshot(best), best.confidence)


def _texts(report: ReportRow, best: ViolationEvent, templates: ReportTemplates, tz: ZoneInfo) -> None:
    texts = build_report_texts(best, templates=templates, tz=tz)
    report.title_vi, report.title_en = texts.title_vi, texts.title_en
    report.description_vi, report.description_en = texts.description_vi, texts.description_en
    if report.event_count > 1 and report.first_seen and report.last_seen:
        span_vi = f"{format_local(report.first_seen, tz, 'vi')} – {format_local(report.last_seen, tz, 'vi')}"
        span_en = f"{format_local(report.first_seen, tz, 'en')} – {format_local(report.last_seen, tz, 'en')}"
        report.description_vi += f"\nSố lần ghi nhận: {report.event_count} (từ {span_vi})"
        report.description_en += f"\nTimes recorded: {report.event_count} ({span_en})"


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
    report = _find(session, event, config.reports.group_window_s)
    now = utcnow()
    if report is None:
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

    best_payload = session.scalar(select(EventRow.payload).where(EventRow.id == report.best_event_id))
    best = ViolationEvent.model_validate(best_payload) if best_payload else event
    report.event_count = (report.event_count or 1) + 1
    if report.first_seen is None or event.started_at < report.first_seen:
        report.first_seen = event.started_at
    if report.last_seen is None or event.ended_at > report.last_seen:
        report.last_seen = event.ended_at
    if best_payload is None or _better(event, best):
        best = event
        report.best_event_id = event.id
        report.confidence = event.confidence
    report.plate = report.plate or _plate(event)
    report.updated_at = now
    _texts(report, best, templates, tz)
    session.add(ReportEventRow(event_id=event.id, report_id=report.id, added_at=now))
    return Attached(report, False)
