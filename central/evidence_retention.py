"""Central's evidence retention by category: `python -m central purge-evidence` (run it daily).

An evidence file is kept while any event that refers to it is younger than its category's
retention (`evidence_retention_days`, counted from the event's start). Files no event refers to
(the event never arrived) are kept for the longest retention of all. The file goes first, then
its row: a crash in between leaves a row whose file is missing, which the console already
answers with 404, and the next pass removes it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from central.db import EventRow, EvidenceRow, session_scope, utcnow
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
    # Only evidence older than the shortest retention can have expired.
    with sessions() as s:
        candidates = {
            sha: (key, size)
            for sha, key, size in s.execute(
                select(EvidenceRow.sha256, EvidenceRow.path, EvidenceRow.size).where(
                    EvidenceRow.received_at < now - shortest
                )
            )
        }
        if not candidates:
            return PurgeResult(0, 0, 0)
        # Which candidates are still wanted: events younger than the longest retention that refer
        # to them and whose own category has not expired yet. Older events keep nothing.
        keep: set[str] = set()
        referenced: set[str] = set()
        for category, started_at, payload in s.execute(
            select(EventRow.category, EventRow.started_at, EventRow.payload)
        ):
            shas = {e.get("sha256") for e in (payload or {}).get("evidence", [])} & candidates.keys()
            if not shas:
                continue
            referenced |= shas
            days = retention_days.get(category, longest.days)
            if started_at >= now - timedelta(days=days):
                keep |= shas
    expired = [
        sha for sha, _ in candidates.items()
        if sha not in keep and (sha in referenced or _received_before(sessions, sha, now - longest))
    ]
    deleted_bytes = 0
    for i in range(0, len(expired), batch):
        chunk = expired[i : i + batch]
        for sha in chunk:
            key, size = candidates[sha]
            storage.delete(key)
            deleted_bytes += size
        with session_scope(sessions) as s:
            s.execute(delete(EvidenceRow).where(EvidenceRow.sha256.in_(chunk)))
    result = PurgeResult(len(candidates), len(expired), deleted_bytes)
    log.info(kv("evidence_purged", checked=result.checked, deleted=result.deleted, bytes=result.deleted_bytes))
    return result


def _received_before(sessions: sessionmaker[Session], sha: str, cutoff: datetime) -> bool:
    with sessions() as s:
        received = s.scalar(select(EvidenceRow.received_at).where(EvidenceRow.sha256 == sha))
    return received is not None and received < cutoff
