"""The watch list: plates an admin enters (with why, who, when, until when); when a stored event of
any rule carries one of them as a readable plate, the district's police get an alert at once,
through the same outbox and channels as the violation alerts (MQTT, signed webhooks, the police
view), marked "watch list" with the note, once per report.

Matching is exact on the normalised plate (`central.db.normalize_plate`): a partial match, or a
plate the edge could not read, never alerts: an alert sends police after a vehicle and its owner.
Entries are never deleted: removing one stamps who and when, so the list keeps its own audit trail.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Integer, String, Text, func, or_, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from central.alerts import alert_payload
from central.auth import share_secret
from central.config import CentralConfig
from central.db import AlertRow, Base, ReportRow, UtcDateTime, normalize_plate, utcnow
from central.logs import kv
from central.workflow import alert_scope, record
from contract.events import ViolationEvent

log = logging.getLogger(__name__)

UNREADABLE = "unreadable"
MIN_PLATE_CHARS = 5  # shorter than any Vietnamese plate: a typo ("29") would match nothing real but is surely wrong


class WatchListRow(Base):
    """One watched plate (0006)."""

    __tablename__ = "watch_list"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    plate: Mapped[str] = mapped_column(String(32))
    plate_norm: Mapped[str] = mapped_column(String(32), index=True)
    note: Mapped[str] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    removed_by: Mapped[str | None] = mapped_column(String(64))
    removed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)

    def active(self, now: datetime) -> bool:
        return self.removed_at is None and (self.expires_at is None or self.expires_at > now)


class WatchListError(ValueError):
    """An entry central will not store; the message says why (both languages)."""


def entry_view(row: WatchListRow, now: datetime | None = None) -> dict[str, object]:
    now = now or utcnow()
    return {
        "id": row.id,
        "plate": row.plate,
        "plate_norm": row.plate_norm,
        "note": row.note,
        "created_by": row.created_by,
        "created_at": row.created_at.isoformat(),
        "expires_at": row.expires_at.isoformat() if row.expires_at else None,
        "removed_by": row.removed_by,
        "removed_at": row.removed_at.isoformat() if row.removed_at else None,
        "active": row.active(now),
    }


def entries(s: Session, *, include_inactive: bool = True) -> list[WatchListRow]:
    stmt = select(WatchListRow).order_by(WatchListRow.id.desc())
    if not include_inactive:
        now = utcnow()
        stmt = stmt.where(
            WatchListRow.removed_at.is_(None), or_(WatchListRow.expires_at.is_(None), WatchListRow.expires_at > now)
        )
    return list(s.scalars(stmt))


def stored_sightings(s: Session, plates_norm: Sequence[str]) -> dict[str, dict[str, object]]:
    """For each watched plate, the reports already stored with it (exact plate, as the alerts
    match): how many and when it was last seen. A plate put on the list today may have passed a
    camera last week; the admin sees that at once and opens those reports, no alert is sent for
    the past (police act on where the vehicle is now)."""
    if not plates_norm:
        return {}
    seen = func.coalesce(func.max(ReportRow.last_seen), func.max(ReportRow.created_at))
    rows = s.execute(
        select(ReportRow.plate_norm, func.count(ReportRow.id), seen)
        .where(ReportRow.plate_norm.in_(set(plates_norm)))
        .group_by(ReportRow.plate_norm)
    )
    return {str(p): {"reports": int(n), "last_seen": last.isoformat() if last else None} for p, n, last in rows}


def add(s: Session, plate: str, note: str, *, actor: str, expires_at: datetime | None = None) -> WatchListRow:
    norm = normalize_plate(plate)
    if len(norm) < MIN_PLATE_CHARS or len(plate.strip()) > 32 or norm == normalize_plate(UNREADABLE):
        raise WatchListError("biển số không hợp lệ / not a plate: give the full plate, e.g. 29-B1 123.45")
    if not note.strip():
        raise WatchListError("cần ghi lý do / a note (why the plate is watched) is required")
    now = utcnow()
    if expires_at is not None and expires_at <= now:
        raise WatchListError("thời hạn đã qua / the expiry is in the past")
    row = WatchListRow(
        plate=plate.strip(), plate_norm=norm, note=note.strip(), created_by=actor, created_at=now, expires_at=expires_at
    )
    s.add(row)
    s.flush()
    log.info(kv("watch_list_added", id=row.id, actor=actor, expires_at=expires_at.isoformat() if expires_at else None))
    return row


def remove(s: Session, entry_id: int, *, actor: str) -> WatchListRow | None:
    row = s.get(WatchListRow, entry_id)
    if row is None:
        return None
    if row.removed_at is None:
        row.removed_at, row.removed_by = utcnow(), actor
        log.info(kv("watch_list_removed", id=row.id, actor=actor))
    return row


def readable_plates(event: ViolationEvent) -> list[str]:
    """The plates the edge read on this event's objects (`plate` is set only when readable)."""
    return [o.plate for o in event.objects if o.plate and o.plate.strip().lower() != UNREADABLE]


def alert_sightings(s: Session, sightings: Sequence[tuple[ViolationEvent, ReportRow]], config: CentralConfig) -> int:
    """Queue a watch-list alert for each report whose new event carries a watched plate (once per
    report); runs in the ingester's transaction, so the alert commits with the event. One query for
    a batch with plates, none for a batch without."""
    if not config.alerts.enabled:
        return 0
    wanted = {normalize_plate(p) for e, _r in sightings for p in readable_plates(e)}
    wanted.discard("")
    if not wanted:
        return 0
    now = utcnow()
    watched: dict[str, WatchListRow] = {}
    for row in s.scalars(
        select(WatchListRow).where(WatchListRow.plate_norm.in_(sorted(wanted))).order_by(WatchListRow.id)
    ):
        if row.active(now):
            watched.setdefault(row.plate_norm, row)
    queued = 0
    for event, report in sightings:
        if report.watch_alerted_at is not None:
            continue
        hit = next(
            ((p, watched[normalize_plate(p)]) for p in readable_plates(event) if normalize_plate(p) in watched), None
        )
        if hit is None:
            continue
        plate, entry = hit
        payload = alert_payload(
            report, event, config.web.base_url, share_secret(s, config.auth.share_link_secret), tz=config.time_zone
        )
        payload["plate"] = plate  # the plate seen, which may not be the report's best read
        payload["watch_list"] = {
            "id": entry.id,
            "plate": entry.plate,
            "note": entry.note,
            "event_id": event.id,
            "expires_at": entry.expires_at.isoformat() if entry.expires_at else None,
        }
        s.add(
            AlertRow(
                report_id=report.id,
                district=report.district,
                ward=report.ward,
                area=report.area,
                topic_district=alert_scope(report.area, report.ward, report.district),
                type=report.type,
                payload=payload,
                created_at=now,
            )
        )
        report.watch_alerted_at = now
        record(s, report, actor="system", action="watch_list_alert", note=f"#{entry.id}: {entry.note}", at=now)
        log.info(kv("watch_list_seen", entry=entry.id, report=report.id, event_id=event.id, district=report.district))
        queued += 1
    return queued
