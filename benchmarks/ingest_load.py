"""Central under load: simulated nodes publish events at a fixed rate; N ingester processes on one
shared subscription store them in PostgreSQL. Counts loss and duplicates, reports ingest latency.

    python benchmarks/ingest_load.py --rate 2000 --duration 60 --ingesters 2

Uses a private Mosquitto (the system binary) and a fresh database on the PostgreSQL server at
TEST_POSTGRES_URL (default postgresql+psycopg://postgres@127.0.0.1:5432/postgres), dropped after.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import paho.mqtt.client as mqtt  # noqa: E402
import sqlalchemy as sa  # noqa: E402

from central.db import make_engine, migrate  # noqa: E402
from contract.events import ModelRef, ViolationEvent, new_event_id  # noqa: E402
from contract.topics import event_topic  # noqa: E402
from edge.local_broker import LocalMosquitto  # noqa: E402
from tests.services import DEFAULT_POSTGRES_ADMIN_URL, create_database, drop_database  # noqa: E402


def make_payload(node: str, camera: str, zone: int) -> tuple[str, bytes, str]:
    now = datetime.now(UTC)
    e = ViolationEvent(
        id=new_event_id(), node=node, camera=camera, type="illegal_stopping", category="traffic",
        started_at=now - timedelta(seconds=12), ended_at=now, confidence=0.9,
        zone={"id": f"zone-{zone}", "kind": "no_stopping"}, model=ModelRef(name="yolo11n", version="bench"),
        details={"stopped_seconds": 12.0},
    )
    return event_topic("ioc", node, camera, "illegal_stopping"), e.to_json().encode(), e.id


def publish(url_port: int, rate: float, duration: float, nodes: int, ids: list[str]) -> float:
    """Publish at `rate` events/s for `duration` s, QoS 1; returns the publish wall time."""
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"load-{uuid.uuid4().hex[:6]}", protocol=mqtt.MQTTv5)
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    client.connect("127.0.0.1", url_port)
    client.loop_start()
    infos = []
    total = int(rate * duration)
    start = time.monotonic()
    for i in range(total):
        due = start + i / rate
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        node = f"node-{i % nodes:03d}"
        topic, payload, eid = make_payload(node, f"cam-{i % 7}", i % 13)
        ids.append(eid)
        infos.append(client.publish(topic, payload, qos=1))
    for info in infos:
        info.wait_for_publish(120)
    elapsed = time.monotonic() - start
    client.disconnect()
    client.loop_stop()
    return elapsed


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rate", type=float, default=2000)
    p.add_argument("--duration", type=float, default=60)
    p.add_argument("--ingesters", type=int, default=2)
    p.add_argument("--nodes", type=int, default=50)
    p.add_argument("--json", action="store_true")
    args = p.parse_args()

    admin = os.environ.get("TEST_POSTGRES_URL", DEFAULT_POSTGRES_ADMIN_URL)
    dbname = f"load_{uuid.uuid4().hex[:10]}"
    db_url = create_database(admin, dbname)
    migrate(db_url)
    work = Path(tempfile.mkdtemp(prefix="ingest-load-"))
    procs: list[subprocess.Popen] = []
    ids: list[str] = []
    try:
        with LocalMosquitto(state_dir=work / "broker", max_queued_messages=1_000_000) as broker:
            env = {**os.environ, "PYTHONPATH": str(REPO), "CENTRAL_DATABASE_URL": db_url, "CENTRAL_MQTT_URL": broker.url}
            for k in range(args.ingesters):
                cfg = work / f"central-{k}.yaml"
                cfg.write_text(
                    f"mqtt:\n  share_group: load\n  client_id: load-ingester-{k}\n"
                    f"evidence_dir: {work / 'evidence'}\n", encoding="utf-8")
                log = open(work / f"ingester-{k}.log", "w")  # noqa: SIM115
                procs.append(subprocess.Popen([sys.executable, "-m", "central", "--config", str(cfg), "ingest"],
                                              cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT))
            time.sleep(4)  # connect + subscribe
            for proc in procs:
                if proc.poll() is not None:
                    raise SystemExit(f"an ingester exited early; see {work}")
            publish_s = publish(broker.port, args.rate, args.duration, args.nodes, ids)
            published_at = time.monotonic()
            engine = make_engine(db_url)
            stored = 0
            while time.monotonic() - published_at < 300:
                with engine.connect() as conn:
                    stored = conn.execute(sa.text("SELECT count(*) FROM events")).scalar_one()
                if stored >= len(ids):
                    break
                time.sleep(0.5)
            drain_s = time.monotonic() - published_at
            with engine.connect() as conn:
                # report_events.added_at is set just before the storing transaction's last write.
                rows = conn.execute(
                    sa.text(
                        "SELECT e.id, e.received_at, e.ended_at, re.added_at FROM events e "
                        "LEFT JOIN report_events re ON re.event_id = e.id"
                    )
                ).all()
            engine.dispose()
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
        drop_database(admin, dbname)

    stored_ids = [r[0] for r in rows]
    lost = len(set(ids) - set(stored_ids))
    duplicates_stored = len(stored_ids) - len(set(stored_ids))
    redeliveries = sum(
        (work / f"ingester-{k}.log").read_text(errors="replace").count("event=event_duplicate")
        for k in range(args.ingesters)
    )
    lat = sorted((r[1] - r[2]).total_seconds() * 1000 for r in rows)
    ingest_lat = sorted((r[3] - r[2]).total_seconds() * 1000 for r in rows if r[3] is not None)
    unlinked = sum(1 for r in rows if r[3] is None)
    # Storage rate while storing, per 5-second window (a batch shares one timestamp, so single
    # seconds are lumpy); first and last window (ramp-up, tail) left out. The slowest window says
    # whether the rate was sustained, not just averaged.
    stored_at = sorted(r[3] for r in rows if r[3] is not None)
    window_s = 5
    per_window: dict[int, int] = {}
    for t in stored_at:
        k = int((t - stored_at[0]).total_seconds() // window_s)
        per_window[k] = per_window.get(k, 0) + 1
    inner = [per_window.get(k, 0) / window_s for k in range(1, max(per_window, default=0))]
    store_span = (stored_at[-1] - stored_at[0]).total_seconds() if len(stored_at) > 1 else 0
    received = sorted(r[1] for r in rows)
    span = (received[-1] - received[0]).total_seconds() if len(received) > 1 else 0
    result = {
        "ingesters": args.ingesters,
        "database": "postgresql",
        "target_rate": args.rate,
        "duration_s": args.duration,
        "published": len(ids),
        "publish_rate": round(len(ids) / publish_s, 1),
        "stored": len(set(stored_ids)),
        "lost": lost,
        "duplicates_stored": duplicates_stored,
        "redeliveries_ignored": redeliveries,
        # Stored events over the time from the first publish until the last one was stored.
        "sustained_ingest_rate": round(len(set(stored_ids)) / (publish_s + drain_s), 1),
        "arrival_rate": round(len(rows) / span, 1) if span else None,
        "store_rate": round(len(stored_at) / store_span, 1) if store_span else None,
        "store_rate_5s_window_min": min(inner) if inner else None,
        "drain_after_publish_s": round(drain_s, 1),
        # Event end (publish time) -> the ingester received it from the broker.
        "arrival_latency_ms_p50": round(statistics.median(lat), 1) if lat else None,
        "arrival_latency_ms_p99": round(lat[int(0.99 * (len(lat) - 1))], 1) if lat else None,
        # Event end (publish time) -> stored: written in the ingester's transaction, which commits next.
        "ingest_latency_ms_p50": round(statistics.median(ingest_lat), 1) if ingest_lat else None,
        "ingest_latency_ms_p99": round(ingest_lat[int(0.99 * (len(ingest_lat) - 1))], 1) if ingest_lat else None,
        "events_without_report": unlinked,
    }
    if args.json:
        print(json.dumps(result))
    else:
        for k, v in result.items():
            print(f"{k:>24}: {v}")
    return 0 if lost == 0 and duplicates_stored == 0 and unlinked == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
