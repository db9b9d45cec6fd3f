"""Two ingesters storing crossing event batches at the same moment (each one's new events grow the
reports whose best events the other's re-publishes, with the clip, rewrite): every transaction
takes its groups' locks first and writes events in id order, so PostgreSQL finds no deadlock.
Before (the code of a157a3f fails this test): a re-publish updated its report row, then waited for
the group lock that the other ingester held while it waited for that row: `deadlock detected`,
the batch's work done again (docs/benchmarks.md, the province on one box, runs B and C)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from central.config import CentralConfig
from central.db import EventRow, ReportRow, make_engine
from contract.events import EvidenceRef, ViolationEvent
from contract.topics import event_topic
from tests.services import make_event
from tests.support.central import ingest_processor

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

CAMERAS = [f"cam-{k}" for k in range(5)]


def _pair(k: int, started: datetime) -> tuple[ViolationEvent, ViolationEvent]:
    """An event as the edge sends it first (snapshot, clip pending) and its re-publish with the
    clip; each later one more confident, so that it becomes its report's best event (and its
    re-publish rewrites the report's texts)."""
    snap = EvidenceRef(kind="snapshot", media_type="image/jpeg", sha256=f"{k:064x}", size=1000)
    clip = EvidenceRef(kind="clip", media_type="video/mp4", sha256=f"{k + 10**9:064x}", size=2_000_000)
    first = make_event(
        camera=CAMERAS[k % len(CAMERAS)],
        started_at=started,
        confidence=0.3 + k / 10_000,
        evidence=[snap],
        evidence_pending=["clip"],
    )
    return first, first.model_copy(update={"evidence": [snap, clip], "evidence_pending": []})


def _message(e: ViolationEvent) -> tuple[str, bytes, datetime]:
    return event_topic("ioc", e.node, e.camera, e.type.value), e.to_json().encode(), datetime.now(UTC)


def test_crossing_event_batches_of_two_ingesters_do_not_deadlock(central_database_url: str, tmp_path: Path) -> None:
    cfg = CentralConfig.model_validate({"database_url": central_database_url, "evidence_dir": str(tmp_path / "ev")})
    engines = [make_engine(central_database_url) for _ in range(2)]
    procs = [ingest_processor(cfg, e) for e in engines]
    rounds, per_writer = 12, 60
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    pairs = [
        [_pair(r * 2 * per_writer + k, t0 + timedelta(seconds=r * 2 * per_writer + k)) for k in range(2 * per_writer)]
        for r in range(rounds)
    ]
    ids = {a.id for round_ in pairs for a, _b in round_}
    # Round r, writer w: its own new events of round r and the re-publishes of the other writer's
    # events of round r - 1 (stored by then): one grows the reports the other's re-publishes
    # rewrite, at the same moment. One more round carries the last re-publishes.
    plan: list[list[list[tuple[str, bytes, datetime]]]] = []
    for r in range(rounds + 1):
        batches = []
        for w in range(2):
            own = pairs[r][w * per_writer : (w + 1) * per_writer] if r < rounds else []
            other = pairs[r - 1][(1 - w) * per_writer : (2 - w) * per_writer] if r > 0 else []
            batches.append([_message(a) for a, _b in own] + [_message(b) for _a, b in other])
        plan.append(batches)
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def writer(w: int) -> None:
        try:
            for batches in plan:
                start.wait(60)
                outcomes = procs[w].process_events(batches[w])
                assert not [o for o in outcomes if o.kind == "dead_letter"], [o.reason for o in outcomes][:3]
        except BaseException as e:  # noqa: BLE001 (the verdict is in the main thread)
            errors.append(e)
            start.abort()

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(2)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(200)
        assert not errors, f"{type(errors[0]).__name__}: {str(errors[0]).splitlines()[0]}"
        with engines[0].connect() as conn:
            stored = {r.id: r.payload for r in conn.execute(select(EventRow.id, EventRow.payload))}
            counts = [c for (c,) in conn.execute(select(ReportRow.event_count))]
        assert set(stored) == ids
        # Each event once, with both halves merged: the snapshot and the clip, nothing pending.
        assert all(len(p["evidence"]) == 2 and not p.get("evidence_pending") for p in stored.values())
        assert sum(counts) == len(ids)
    finally:
        for e in engines:
            e.dispose()
