"""The console's and the API's database reads (and the few small writes that go with them).

Every SELECT the web layer and the services need lives here, so a route reads like what it does
and the SQL can be seen (and indexed for) in one place. Plain functions: a `Session` in, rows or
plain values out.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from pydantic import BaseModel, Field
from sqlalchemy import ColumnElement, Select, and_, func, or_, select
from sqlalchemy.orm import Session

from central import evidence as evidence_files
from central import search
from central.auth import User
from central.db import (
    AlertRow,
    CameraHealthRow,
    DeadLetterRow,
    EventRow,
    EvidenceRow,
    NodeStatusRow,
    ReportEventRow,
    ReportHistoryRow,
    ReportRow,
    normalize_plate,
    utcnow,
)
from central.services.access import scope
from central.storage import EvidenceStorage
from contract.events import EvidenceRef

# ------------------------------------------------------------------------------------- reports


class ReportFilter(BaseModel):
    camera: str | None = None
    type: str | None = None
    ward: str | None = None
    area: str | None = Field(default=None, description="a routing area's code (a set of wards)")
    district: str | None = Field(default=None, description="legacy label")
    status: str | None = None
    since: datetime | None = Field(default=None, description="first seen at or after (ISO 8601)")
    until: datetime | None = Field(default=None, description="first seen before (ISO 8601)")
    overdue: bool = False
    plate: str | None = Field(
        default=None, description="full or partial plate; case, spaces, dashes and dots ignored ('29b1 12345')"
    )
    q: str | None = Field(
        default=None,
        description="free text over address, ward, camera, zone and plate; accents and case ignored, every word must match",
    )

    def query_string(self) -> str:
        return urlencode({k: v for k, v in self.model_dump(mode="json").items() if v not in (None, "", False)})


def apply_filter(stmt: Select[Any], f: ReportFilter) -> Select[Any]:
    if f.camera:
        stmt = stmt.where(ReportRow.camera == f.camera)
    if f.type:
        stmt = stmt.where(ReportRow.type == f.type)
    if f.ward:
        stmt = stmt.where(ReportRow.ward == f.ward)
    if f.area:
        stmt = stmt.where(ReportRow.area == f.area)
    if f.district:
        stmt = stmt.where(ReportRow.district == f.district)
    if f.status:
        stmt = stmt.where(ReportRow.status == f.status)
    if f.since:
        stmt = stmt.where(ReportRow.first_seen >= f.since)
    if f.until:
        stmt = stmt.where(ReportRow.first_seen < f.until)
    if f.overdue:
        stmt = stmt.where(ReportRow.deadline_at < utcnow(), ReportRow.status.not_in(("rejected", "resolved")))
    if f.plate and (plate := normalize_plate(f.plate)):
        # A substring of the normalised plate (letters and digits only: no LIKE wildcard can be in
        # it, and no ESCAPE clause keeps the pattern plain for the trigram index on PostgreSQL, 0006).
        stmt = stmt.where(ReportRow.plate_norm.like(f"%{plate}%"))
    if f.q and (words := search.matches(f.q)) is not None:
        stmt = stmt.where(words)
    return stmt


def list_reports(s: Session, user: User, f: ReportFilter, limit: int, before: int | None = None) -> list[ReportRow]:
    """What `user` may see of the filtered reports, newest first; `before` pages by id."""
    stmt = scope(apply_filter(select(ReportRow), f), user).order_by(ReportRow.id.desc()).limit(limit)
    if before is not None:
        stmt = stmt.where(ReportRow.id < before)
    return list(s.scalars(stmt))


COUNT_CAP = 10_000  # past this the list says "10,000+": an exact count of a broad search costs a scan


def count_reports(s: Session, user: User, f: ReportFilter, cap: int = COUNT_CAP) -> int:
    """How many reports `user` may see match the filter, counted up to `cap` + 1 (more means "over cap")."""
    matching = scope(apply_filter(select(ReportRow.id), f), user).limit(cap + 1).subquery()
    return int(s.scalar(select(func.count()).select_from(matching)) or 0)


def review_queue(s: Session, f: ReportFilter, limit: int = 100) -> list[ReportRow]:
    """Reports waiting for review (status `new` unless the filter says otherwise): urgent first, then oldest."""
    f = f.model_copy(update={"status": f.status or "new"})
    urgent_first = (ReportRow.priority == "urgent").desc()
    stmt = apply_filter(select(ReportRow), f).order_by(urgent_first, ReportRow.first_seen, ReportRow.id).limit(limit)
    return list(s.scalars(stmt))


def published_reports(s: Session, limit: int = 100) -> list[ReportRow]:
    stmt = (
        select(ReportRow).where(ReportRow.published_at.is_not(None)).order_by(ReportRow.published_at.desc()).limit(limit)
    )
    return list(s.scalars(stmt))


def published_report(s: Session, report_id: int) -> ReportRow | None:
    report = s.get(ReportRow, report_id)
    return report if report is not None and report.published_at is not None else None


def event_payloads(s: Session, event_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    return dict(s.execute(select(EventRow.id, EventRow.payload).where(EventRow.id.in_(event_ids))).all())


def evidence_by_report(s: Session, report_ids: Sequence[int]) -> dict[int, list[EvidenceRef]]:
    """Every event's evidence per report (deduplicated by sha256), in event order."""
    out: dict[int, list[EvidenceRef]] = {rid: [] for rid in report_ids}
    if not report_ids:
        return out
    rows = s.execute(
        select(ReportEventRow.report_id, EventRow.payload)
        .join(EventRow, EventRow.id == ReportEventRow.event_id)
        .where(ReportEventRow.report_id.in_(report_ids))
        .order_by(EventRow.started_at)
    )
    seen: set[tuple[int, str]] = set()
    for rid, payload in rows:
        for e in payload.get("evidence", []):
            if (rid, e["sha256"]) not in seen:
                seen.add((rid, e["sha256"]))
                out[rid].append(EvidenceRef.model_validate(e))
    return out


def clock_suspect_reports(s: Session, report_ids: Sequence[int]) -> set[int]:
    """Reports with an event whose time lay outside the sane window around its arrival."""
    if not report_ids:
        return set()
    stmt = (
        select(ReportEventRow.report_id)
        .join(EventRow, EventRow.id == ReportEventRow.event_id)
        .where(ReportEventRow.report_id.in_(report_ids), EventRow.clock_suspect.is_(True))
        .distinct()
    )
    return set(s.scalars(stmt))


def available_evidence(s: Session, sha256s: set[str]) -> set[str]:
    """Which of these files central holds."""
    if not sha256s:
        return set()
    return set(s.scalars(select(EvidenceRow.sha256).where(EvidenceRow.sha256.in_(sha256s))))


def report_history(s: Session, report_id: int) -> list[ReportHistoryRow]:
    stmt = select(ReportHistoryRow).where(ReportHistoryRow.report_id == report_id).order_by(ReportHistoryRow.id)
    return list(s.scalars(stmt))


# ------------------------------------------------------------------------------------ evidence


def evidence_file(s: Session, storage: EvidenceStorage, sha256: str) -> tuple[EvidenceRow, str | None] | None:
    """The evidence row of a sha256 and its key in `storage` (None when the stored file or object
    is missing); None when unknown. Read it with `storage.local_path` / `open_range` / `read_bytes`."""
    if not evidence_files.is_sha256(sha256):
        return None
    row = s.get(EvidenceRow, sha256)
    if row is None:
        return None
    return row, (row.path if storage.size(row.path) is not None else None)


def add_evidence_row(s: Session, sha256: str, media_type: str, size: int, path: str) -> None:
    """Record a stored file once (content-addressed: a second copy is the same file)."""
    if s.get(EvidenceRow, sha256) is None:
        s.add(EvidenceRow(sha256=sha256, media_type=media_type, size=size, path=path, received_at=utcnow()))


# -------------------------------------------------------------------------------------- alerts


def alert_place(police: User | Sequence[str]) -> ColumnElement[bool]:
    """Alerts of a police user's wards, areas and (legacy) districts; a plain list: legacy districts."""
    if isinstance(police, User):
        return or_(
            AlertRow.ward.in_(police.wards), AlertRow.area.in_(police.areas), AlertRow.district.in_(police.districts)
        )
    return AlertRow.district.in_(police)


def alerts_after(s: Session, after: int, limit: int, police: User | Sequence[str] | None = None) -> list[AlertRow]:
    """Alerts with an id above `after`, oldest first; only the places of `police` when given."""
    stmt = select(AlertRow).where(AlertRow.id > after).order_by(AlertRow.id).limit(limit)
    if police is not None:
        stmt = stmt.where(alert_place(police))
    return list(s.scalars(stmt))


# -------------------------------------------------------------------------------------- health


def last_event_per_camera(s: Session) -> dict[tuple[str, str], datetime]:
    stmt = select(EventRow.node, EventRow.camera, func.max(EventRow.started_at)).group_by(EventRow.node, EventRow.camera)
    return {(n, c): t for n, c, t in s.execute(stmt)}


def node_status_rows(s: Session) -> list[NodeStatusRow]:
    return list(s.scalars(select(NodeStatusRow).order_by(NodeStatusRow.node)))


def camera_health_rows(s: Session) -> list[CameraHealthRow]:
    return list(s.scalars(select(CameraHealthRow).order_by(CameraHealthRow.node, CameraHealthRow.camera)))


# ------------------------------------------------------------------------------------- metrics


def report_counts(s: Session) -> list[tuple[str, str, int]]:
    """(status, type, reports), from the counts the triggers keep (central.report_counts): no scan."""
    from central import report_counts as counts

    return [(st, ty, n) for st, ty, n in counts.grouped(s, ("status", "type"))]


def review_action_counts(s: Session) -> list[tuple[str, str, int]]:
    """(action, by 'system' or a 'user', history rows): the audit trail never shrinks."""
    by_system = ReportHistoryRow.actor == "system"
    stmt = select(ReportHistoryRow.action, by_system, func.count()).group_by(ReportHistoryRow.action, by_system)
    return [(a, "system" if system else "user", n) for a, system, n in s.execute(stmt)]


def alert_counts(s: Session, max_attempts: int) -> dict[str, int]:
    """Alerts by delivery state: sent (MQTT and webhooks done), failed (gave up), pending."""
    done = and_(AlertRow.mqtt_sent_at.is_not(None), AlertRow.webhooks_done_at.is_not(None))
    stmt = select(
        func.count(),
        func.count().filter(done),
        func.count().filter(~done, AlertRow.attempts >= max_attempts),
        func.count().filter(or_(AlertRow.last_error.is_not(None), AlertRow.attempts > 0)),
    )
    total, sent, failed, retried = s.execute(stmt).one()
    return {"queued": total, "sent": sent, "failed": failed, "pending": total - sent - failed, "retried": retried}


def dead_letter_reason_heads(s: Session, head: int = 48) -> list[tuple[str, int]]:
    """(the first `head` characters of a reason, dead letters): enough to tell the reason's class."""
    prefix = func.substr(DeadLetterRow.reason, 1, head)
    return [(r or "", n) for r, n in s.execute(select(prefix, func.count()).group_by(prefix))]


def event_count(s: Session) -> int:
    return int(s.scalar(select(func.count()).select_from(EventRow)) or 0)
