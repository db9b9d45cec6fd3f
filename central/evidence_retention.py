"""Central's evidence retention by category: `python -m central purge-evidence` (run it daily).

An evidence file is kept while any event that refers to it is younger than its category's
retention (`evidence_retention_days`, counted from the event's start). Files no event refers to
(the event never arrived) are kept for the longest retention of all. Which events refer to a
file is read from `event_evidence`, a page of candidate files at a time. The file goes first, then
its row: a crash in between leaves a row whose file is missing, which the console already
answers with 404, and the next pass removes it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from central.db import EventEvidenceRow, EventRow, EvidenceRow, session_scope, utcnow
from central.logs import kv
from central.storage import EvidenceStorage

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PurgeResult:
    checked: int
    deleted: int
    deleted_bytes: int


def purge_expired_evidence(
    sessions: sessionmaker[Session],
    storage: EvidenceStorage,
    retention_days: dict[str, float],
    *,
    now: datetime | None = None,
    batch: int = 500,
) -> PurgeResult:
    now = now or utcnow()
    longest = timedelta(days=max(retention_days.values()))
    shortest = timedelta(days=min(retention_days.values()))
    checked = deleted = deleted_bytes = 0
    after = ""
    # Only evidence older than the shortest retention can have expired: those rows, a page at a
    # time (by sha256), each page's events found through event_evidence (which the ingester fills
    # for every reference it stores). Years of events are never read whole: a page costs index
    # lookups for its own files only (issue 19, item 4: before, every event's payload was read).
    while True:
        with sessions() as s:
            page = s.execute(
                select(EvidenceRow.sha256, EvidenceRow.path, EvidenceRow.size, EvidenceRow.received_at)
                .where(EvidenceRow.received_at < now - shortest, EvidenceRow.sha256 > after)
                .order_by(EvidenceRow.sha256)
                .limit(batch * 10)
            ).all()
            if not page:
                break
            after = page[-1][0]
            # Which are still wanted: an event that refers to one and whose own category has not
            # expired yet keeps it.
            keep: set[str] = set()
            referenced: set[str] = set()
            for sha, category, started_at in s.execute(
                select(EventEvidenceRow.sha256, EventRow.category, EventRow.started_at)
                .join(EventRow, EventRow.id == EventEvidenceRow.event_id)
                .where(EventEvidenceRow.sha256.in_([row[0] for row in page]))
            ):
                referenced.add(sha)
                days = retention_days.get(category, longest.days)
                if started_at >= now - timedelta(days=days):
                    keep.add(sha)
        checked += len(page)
        expired = [
            (sha, key, size) for sha, key, size, received in page
            if sha not in keep and (sha in referenced or received < now - longest)
        ]
        for i in range(0, len(expired), batch):
            chunk = expired[i : i + batch]
            for _sha, key, size in chunk:
                storage.delete(key)
                deleted_bytes += size
            with session_scope(sessions) as s:
                s.execute(delete(EvidenceRow).where(EvidenceRow.sha256.in_([sha for sha, _k, _s in chunk])))
            deleted += len(chunk)
    result = PurgeResult(checked, deleted, deleted_bytes)
    log.info(kv("evidence_purged", checked=result.checked, deleted=result.deleted, bytes=result.deleted_bytes))
    return result
