"""What evidence central accepts, and the holding area for evidence that arrives before its event.

Evidence (MQTT or HTTP) is kept only if it is small enough, of an allowed media type, and referred
to by an event (issue 18, defect 6): otherwise any node could fill central's disk with files no
report will ever show. Evidence normally arrives *before* its event (the edge publishes the files
first, so that a stored event's files are already there), so "referred to" cannot be required at
arrival. The rule:

- referred to by a stored event (`event_evidence`): stored as before;
- not (yet) referred to: stored as **held** (`evidence.held_until` = arrival + `limits.evidence_hold_s`),
  as long as the held files together stay under `limits.evidence_hold_max_mb`; beyond that it is
  refused (MQTT: dead-lettered with the reason; HTTP: 507 with Retry-After, the edge retries);
- an event that refers to a held file, when stored, releases it (`held_until` = NULL);
- a held file whose time has passed and that no event refers to is deleted (`expire_held`, run by
  the ingester about once a minute). Its event arriving later finds no file: the report shows the
  evidence as missing, as for a file that never came.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, exists, func, select, update
from sqlalchemy.orm import Session, sessionmaker

from central.config import CentralConfig
from central.db import EventEvidenceRow, EvidenceRow, insert_event_evidence, session_scope, utcnow
from central.logs import kv
from central.storage import EvidenceStorage

log = logging.getLogger(__name__)


class EvidenceRefused(Exception):
    """Evidence central will not keep; `reason` starts with "evidence " (the dead-letter class),
    `status` is the HTTP answer, `retry` whether sending it again later may succeed."""

    def __init__(self, reason: str, status: int, retry: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.retry = retry


@dataclass(frozen=True)
class EvidenceLimits:
    mqtt_max_bytes: int
    media_types: tuple[str, ...]
    hold_s: float
    hold_max_bytes: int

    @classmethod
    def of(cls, config: CentralConfig) -> EvidenceLimits:
        lim = config.limits
        return cls(
            mqtt_max_bytes=int(lim.evidence_mqtt_max_mb * 1024 * 1024),
            media_types=tuple(lim.evidence_media_types),
            hold_s=lim.evidence_hold_s,
            hold_max_bytes=int(lim.evidence_hold_max_mb * 1024 * 1024),
        )


def check_media_type(limits: EvidenceLimits, media_type: str) -> None:
    if media_type not in limits.media_types:
        raise EvidenceRefused(
            f"evidence media type {media_type} is not accepted (limits.evidence_media_types: "
            f"{', '.join(limits.media_types)})",
            415,
        )


def is_referenced(s: Session, sha256: str) -> bool:
    return s.scalar(select(exists().where(EventEvidenceRow.sha256 == sha256))) or False


def held_bytes(s: Session) -> int:
    return int(
        s.scalar(select(func.coalesce(func.sum(EvidenceRow.size), 0)).where(EvidenceRow.held_until.is_not(None))) or 0
    )


def admit(s: Session, limits: EvidenceLimits, sha256: str, size: int, now: datetime | None = None) -> datetime | None:
    """Before a new file is written: None if an event refers to it, else the time until which it
    is held; EvidenceRefused (507, retry) when the holding area has no room for it."""
    if is_referenced(s, sha256):
        return None
    return hold_until(limits, held_bytes(s), size, now)


def hold_until(limits: EvidenceLimits, held: int, size: int, now: datetime | None = None) -> datetime:
    """`admit`'s decision for a file no stored event refers to, with the holding area's `held`
    bytes known (a batch adds what it holds to `held` itself)."""
    if held + size > limits.hold_max_bytes:
        raise EvidenceRefused(
            f"evidence holding area full: no stored event refers to this file and the files waiting for "
            f"their event already take {held} of {limits.hold_max_bytes} bytes (limits.evidence_hold_max_mb)",
            507,
            retry=True,
        )
    return (now or utcnow()) + timedelta(seconds=limits.hold_s)


def claim(s: Session, refs: Iterable[tuple[str, str]]) -> None:
    """Stored events refer to these files ((sha256, event id)): record it and release them."""
    rows = sorted(set(refs))
    if not rows:
        return
    insert_event_evidence(s, rows)
    shas = sorted({sha for sha, _ in rows})
    for i in range(0, len(shas), 5000):
        s.execute(
            update(EvidenceRow)
            .where(EvidenceRow.held_until.is_not(None), EvidenceRow.sha256.in_(shas[i : i + 5000]))
            .values(held_until=None)
        )


def expire_held(sessions: sessionmaker[Session], storage: EvidenceStorage, now: datetime | None = None) -> int:
    """Delete held files whose time has passed and that no event refers to (an event stored by
    another ingester meanwhile keeps its file: the reference is checked, not only the flag)."""
    now = now or utcnow()
    with session_scope(sessions) as s:
        rows = s.execute(
            select(EvidenceRow.sha256, EvidenceRow.path)
            .where(EvidenceRow.held_until.is_not(None), EvidenceRow.held_until < now)
            .where(~exists().where(EventEvidenceRow.sha256 == EvidenceRow.sha256))
            .limit(1000)
        ).all()
        if not rows:
            return 0
        # The row goes with the file, in one transaction: a crash leaves a file without a row,
        # which a later copy of the same evidence simply overwrites.
        s.execute(delete(EvidenceRow).where(EvidenceRow.sha256.in_([sha for sha, _ in rows])))
        for _sha, path in rows:
            storage.delete(path)
    log.info(kv("evidence_hold_expired", count=len(rows)))
    return len(rows)
