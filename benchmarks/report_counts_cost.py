"""What the report-count triggers (migration 0009) cost the ingester: `python benchmarks/report_counts_cost.py`.

Stores the same kind of events through the ingester's batch path (MessageProcessor.process_events,
as the MQTT/JetStream/RabbitMQ ingesters call it) into a fresh PostgreSQL and a fresh SQLite
database, alternating rounds with the triggers installed and uninstalled, and prints events/s of
each (median of the rounds) and the deltas written. Each event opens a report (distinct cameras'
zones: no grouping), the worst case for the triggers. Not a test: it measures.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from sqlalchemy import text  # noqa: E402

from central import report_counts  # noqa: E402
from central.config import CentralConfig  # noqa: E402
from central.db import make_engine, migrate  # noqa: E402
from contract.topics import event_topic  # noqa: E402
from tests.services import create_database, drop_database, make_event  # noqa: E402
from tests.support.central import ingest_processor  # noqa: E402

ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def _round(processor: object, batch: int, batches: int, start: datetime) -> float:
    t0 = time.monotonic()
    for b in range(batches):
        messages = []
        for i in range(batch):
            ev = make_event(camera=f"cam-{uuid.uuid4().hex[:8]}", started_at=start + timedelta(seconds=b * batch + i))
            messages.append((event_topic("ioc", ev.node, ev.camera, ev.type.value), ev.to_json().encode(), datetime.now(UTC)))
        outcomes = processor.process_events(messages)  # type: ignore[attr-defined]
        assert all(o.kind == "stored" for o in outcomes), outcomes[:3]
    return batch * batches / (time.monotonic() - t0)


def measure(url: str, label: str, batch: int, batches: int, rounds: int, tmp: Path) -> None:
    migrate(url)
    cfg = CentralConfig.model_validate({"database_url": url, "evidence_dir": str(tmp / "ev")})
    engine = make_engine(url)
    processor = ingest_processor(cfg, engine)
    rates: dict[bool, list[float]] = {True: [], False: []}
    start = datetime.now(UTC) - timedelta(days=1)
    _round(processor, batch, 1, start - timedelta(days=1))  # warm up
    for r in range(rounds):
        for on in (True, False) if r % 2 == 0 else (False, True):
            with engine.begin() as conn:
                (report_counts.install if on else report_counts.uninstall)(conn)
            rates[on].append(_round(processor, batch, batches, start + timedelta(hours=r * 2 + on)))
    with engine.begin() as conn:
        report_counts.install(conn)
        deltas = conn.execute(text("SELECT count(*) FROM report_count_deltas")).scalar()
    engine.dispose()
    with_t, without = statistics.median(rates[True]), statistics.median(rates[False])
    print(f"| {label} | {batch} | {without:.0f} | {with_t:.0f} | {with_t / without:.2f} | {deltas} |", flush=True)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=200)
    p.add_argument("--batches", type=int, default=5)
    p.add_argument("--rounds", type=int, default=4)
    args = p.parse_args()
    print("| database | events per batch | events/s without triggers | with triggers | ratio | deltas written |")
    print("|---|---:|---:|---:|---:|---:|")
    name = f"counts_cost_{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory() as tmp:
        url = create_database(ADMIN, name)
        try:
            measure(url, "PostgreSQL", args.batch, args.batches, args.rounds, Path(tmp))
        finally:
            drop_database(ADMIN, name)
        measure(f"sqlite:///{tmp}/cost.db", "SQLite", args.batch, args.batches, args.rounds, Path(tmp))
    return 0


if __name__ == "__main__":
    sys.exit(main())
