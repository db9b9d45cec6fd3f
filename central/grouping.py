"""Events -> field reports: one report grows per (node, camera, zone, type) within a window, or per
incident (the start/update/end phases of one incident share its id). Runs inside the ingester's
transaction, so a batch of events and their report changes commit together.

Set-based: a batch of events costs one lock statement, two queries for the reports it may grow and
one flush, whatever its size; the events are still attached one after another, in order, exactly
as if they had come one per transaction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from central import search
from central.config import CentralConfig
from central.db import EventRow, ReportRow, insert_report_events, normalize_plate, utcnow
from central.reports import ReportTemplates, build_report_texts, format_local
from central.workflow import OPEN_STATUSES, RoutingTable, record
from contract.events import ViolationEvent

UNREADABLE = "unreadable"  # contract.events.PlateRead.text when the edge could not read the plate


@dataclass(frozen=True)
class Attached:
    report: ReportRow
    created: bool


def group_key(event: ViolationEvent) -> str:
    return f"{event.node}/{event.camera}/{event.zone.id if event.zone else '-'}/{event.type.value}"


def _lock(session: Session, keys: list[str]) -> None:
    """PostgreSQL: two ingesters must not both open a report for one group. SQLite needs nothing: the
    event INSERT before this already holds the database's single write lock.

    A batch takes all its groups' locks at once, in one fixed order (by hash), so that two ingesters
    with overlapping batches queue behind each other instead of deadlocking.
    """
    if not keys or session.get_bind().dialect.name != "postgresql":
        return
    session.execute(
        text(
            "SELECT count(pg_advisory_xact_lock(h)) FROM "
            "(SELECT DISTINCT hashtext(k) AS h FROM unnest(CAST(:keys AS text[])) AS k ORDER BY h) AS ordered"
        ),
        {"keys": keys},
    )


def lock_groups(session: Session, events: list[ViolationEvent]) -> None:
    """Take the group locks of a whole batch (new events and re-publishes alike) first, before the
    transaction writes any row. Why: a re-publish updates its report's texts (`refresh_best_texts`)
    and an event grows its report; with the locks taken only when the new events are attached, two
    ingesters could each hold a report row or an event row the other waits for, while waiting for
    the other's group lock (PostgreSQL: `deadlock detected`). Taken first, in one order, overlapping
    batches queue. Idempotent in one transaction (attach_events takes its subset again)."""
    _lock(session, sorted({_lock_key(e) for e in events}))


def _lock_key(event: ViolationEvent) -> str:
    return f"incident:{event.incident}" if event.incident else group_key(event)


@dataclass
class _Open:
    """A report this batch may grow, and how good its best event is (snapshot?, confidence)."""

    report: ReportRow
    best_rank: tuple[bool, float]


def _rank_of_payload(payload: Any) -> tuple[bool, float]:
    if not isinstance(payload, dict):
        return (False, float("-inf"))  # no best event readable: any event beats it
    snap = any(isinstance(e, dict) and e.get("kind") == "snapshot" for e in payload.get("evidence", []))
    try:
        return (snap, float(payload.get("confidence", 0)))
    except (TypeError, ValueError):
        return (snap, 0.0)


def _rank(event: ViolationEvent) -> tuple[bool, float]:
    return (_has_snapshot(event), event.confidence)


@dataclass
class _Candidates:
    by_group: dict[str, list[_Open]] = field(default_factory=dict)
    by_incident: dict[str, _Open] = field(default_factory=dict)

    def find(self, event: ViolationEvent, window: timedelta) -> _Open | None:
        if event.incident:
            return self.by_incident.get(event.incident)
        best: _Open | None = None
        for c in self.by_group.get(group_key(event), []):
            r = c.report
            if r.last_seen is None or r.first_seen is None:
                continue
            in_window = r.last_seen >= event.started_at - window and r.first_seen <= event.ended_at + window
            if in_window and (best is None or r.last_seen > (best.report.last_seen or r.last_seen)):
                best = c
        return best

    def add(self, event: ViolationEvent, opened: _Open) -> None:
        if event.incident:
            self.by_incident[event.incident] = opened
        else:
            self.by_group.setdefault(group_key(event), []).append(opened)


def _load_candidates(session: Session, events: list[ViolationEvent], window: timedelta) -> _Candidates:
    """The open reports these events may grow and the reports of their incidents: two queries."""
    found = _Candidates()
    grouped = [e for e in events if not e.incident]
    if grouped:
        stmt = (
            select(ReportRow, EventRow.payload)
            .outerjoin(EventRow, EventRow.id == ReportRow.best_event_id)
            .where(
                ReportRow.group_key.in_(sorted({group_key(e) for e in grouped})),
                ReportRow.incident.is_(None),
                ReportRow.status.in_(OPEN_STATUSES),
                ReportRow.last_seen >= min(e.started_at for e in grouped) - window,
                ReportRow.first_seen <= max(e.ended_at for e in grouped) + window,
            )
        )
        for report, payload in session.execute(stmt):
            found.by_group.setdefault(report.group_key or "", []).append(_Open(report, _rank_of_payload(payload)))
    incidents = sorted({e.incident for e in events if e.incident})
    if incidents:
        stmt = (
            select(ReportRow, EventRow.payload)
            .outerjoin(EventRow, EventRow.id == ReportRow.best_event_id)
            .where(ReportRow.incident.in_(incidents))
            .order_by(ReportRow.id)
        )
        for report, payload in session.execute(stmt):
            found.by_incident.setdefault(report.incident or "", _Open(report, _rank_of_payload(payload)))
    return found


@dataclass(frozen=True)
class _PlateRead:
    text: str | None  # None: tried, unreadable
    confidence: float | None
    lines: int | None
    crop_sha256: str | None

    @property
    def rank(self) -> tuple[bool, float]:
        return (self.text is not None, self.confidence if self.confidence is not None else 0.0)


def _plate_read(event: ViolationEvent) -> _PlateRead | None:
    """The offender's plate read: the most confident readable one among the event's objects (the
    edge reads only the offender's track), else an "unreadable" read; an object with `plate` text
    but no `plate_read` (an older edge) counts as read with no confidence. None: nothing was tried."""
    reads: list[_PlateRead] = []
    for o in event.objects:
        r = o.plate_read
        if r is not None:
            text = r.text if r.text != UNREADABLE and o.plate is not None else None
            reads.append(_PlateRead(text, r.confidence, r.lines, r.crop_sha256))
        elif o.plate:
            reads.append(_PlateRead(o.plate, None, None, None))
    return max(reads, key=lambda r: r.rank, default=None)


def _set_plate(report: ReportRow, read: _PlateRead | None) -> None:
    """Take `read` if it is better than the report's: readable beats unreadable, then the more
    confident read wins. "unreadable" never becomes report.plate."""
    if read is None:
        return
    report.plate_tried = True
    if read.text is None:
        return
    current = (report.plate is not None, report.plate_confidence if report.plate_confidence is not None else 0.0)
    if report.plate is not None and read.rank <= current:
        return
    report.plate, report.plate_norm = read.text, normalize_plate(read.text)
    report.plate_confidence, report.plate_lines, report.plate_crop_sha256 = read.confidence, read.lines, read.crop_sha256


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


def _new_report(event: ViolationEvent, routing: RoutingTable, now: Any) -> ReportRow:
    loc = event.location
    area = routing.area_of(loc.ward)
    agency = routing.route(event.category, loc.ward, loc.district, area)
    priority = routing.priority(event.type)
    return ReportRow(
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
        province=loc.province,
        ward=loc.ward,
        area=area,
        district=loc.district,
        address=loc.address,
        lat=loc.lat,
        lon=loc.lon,
        first_seen=event.started_at,
        last_seen=event.ended_at,
        event_count=1,
        best_event_id=event.id,
        confidence=event.confidence,
        priority=priority,
        agency_code=agency[0] if agency else None,
        agency_name_vi=agency[1].name.vi if agency else None,
        agency_name_en=agency[1].name.en if agency else None,
        deadline_at=routing.deadline(event.category, priority, event.started_at),
    )


def attach_events(
    session: Session,
    events: list[ViolationEvent],
    *,
    config: CentralConfig,
    routing: RoutingTable,
    templates: ReportTemplates,
    tz: ZoneInfo,
) -> list[Attached]:
    """Add newly stored events, in order, to their reports (new ones, or the open report of their
    group/incident). Returns one Attached per event; new reports have their ids (flushed)."""
    if not events:
        return []
    _lock(session, sorted({_lock_key(e) for e in events}))
    window = timedelta(seconds=config.reports.group_window_s)
    candidates = _load_candidates(session, events, window)
    now = utcnow()
    results: list[tuple[ReportRow, bool]] = []
    touched: dict[int, _Open] = {}  # id() of a grown report -> it: its count line is rewritten once
    for event in events:
        found = candidates.find(event, window)
        if found is None:
            report = _new_report(event, routing, now)
            _set_plate(report, _plate_read(event))
            _texts(report, event, templates, tz)
            candidates.add(event, _Open(report, _rank(event)))
            results.append((report, True))
            continue
        report = found.report
        report.event_count = (report.event_count or 1) + 1
        if report.first_seen is None or event.started_at < report.first_seen:
            report.first_seen = event.started_at
        if report.last_seen is None or event.ended_at > report.last_seen:
            report.last_seen = event.ended_at
        _set_plate(report, _plate_read(event))  # a later, more confident read improves it
        report.updated_at = now
        if _rank(event) > found.best_rank:
            found.best_rank = _rank(event)
            report.best_event_id = event.id
            report.confidence = event.confidence
            _texts(report, event, templates, tz)
        touched[id(report)] = found
        results.append((report, False))
    for grown in touched.values():
        _count_lines(grown.report, tz)
    created = [r for r, new in results if new]
    # Before the flush: the new rows are inserted with their search text (one INSERT, no UPDATE).
    search.fill(session, [*created, *(o.report for o in touched.values())])
    session.add_all(created)
    session.flush()  # the new reports' ids, in one multi-row INSERT
    for report in created:
        record(session, report, actor="system", action="created", to_status="new", at=now)
    # The link rows are the transaction's last writes: `added_at` is when the event was stored.
    added_at = utcnow()
    insert_report_events(
        session,
        [{"event_id": e.id, "report_id": r.id, "added_at": added_at} for e, (r, _new) in zip(events, results, strict=True)],
    )
    return [Attached(r, new) for r, new in results]


def refresh_best_texts(
    session: Session, events: list[ViolationEvent], *, templates: ReportTemplates, tz: ZoneInfo
) -> None:
    """Re-write the texts of the reports whose best event is one of `events` (it gained evidence:
    the clip the edge sends after the event; the texts list the evidence)."""
    by_id = {e.id: e for e in events}
    if not by_id:
        return
    for report in session.scalars(select(ReportRow).where(ReportRow.best_event_id.in_(list(by_id)))):
        _texts(report, by_id[report.best_event_id], templates, tz)


def attach_event(
    session: Session,
    event: ViolationEvent,
    *,
    config: CentralConfig,
    routing: RoutingTable,
    templates: ReportTemplates,
    tz: ZoneInfo,
) -> Attached:
    """Add one stored event to its report (see attach_events)."""
    return attach_events(session, [event], config=config, routing=routing, templates=templates, tz=tz)[0]
