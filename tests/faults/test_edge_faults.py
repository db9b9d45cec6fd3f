"""Edge faults with real processes: the broker away while a live camera keeps producing events,
and the edge node SIGKILLed with events in its outbox. Every event reaches central once, in
order per camera; no evidence file is left half-written."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

from central.db import make_engine, migrate
from edge.data import video_path
from edge.local_broker import LocalMosquitto
from pipelines.rtsp_server import RtspTestServer
from tests.faults.support import REPO, start_ingester, stop_process
from tests.services import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(420)]
CAMERA = REPO / "tests" / "faults" / "configs" / "hanoi_queue.yaml"


def _edge_events(log: Path) -> list[str]:
    """Event ids in the order the node made them (its structured log)."""
    ids = []
    if log.exists():
        for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if rec.get("msg") == "event" and rec.get("event_id"):
                ids.append(rec["event_id"])
    return ids


def _stored(db_url: str) -> list[tuple[str, str]]:
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(sa.text("SELECT id, camera FROM events ORDER BY received_at, id"))]
    finally:
        engine.dispose()


def _outbox_backlog(state: Path) -> int:
    path = state / "outbox.sqlite3"
    if not path.exists():
        return 0
    with sqlite3.connect(path, timeout=10) as db:
        return int(db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0])


def _start_edge(config: Path, log: Path) -> subprocess.Popen:
    out = open(log, "a")  # noqa: SIM115 - the child owns it
    return subprocess.Popen(
        [sys.executable, "-m", "edge", "run", "--config", str(config)],
        cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=out, stderr=subprocess.STDOUT,
    )


def test_broker_outage_and_edge_sigkill_lose_and_duplicate_nothing(tmp_path):
    prefix = f"f{uuid.uuid4().hex[:8]}"
    db_url = f"sqlite:///{tmp_path / 'central.db'}"
    migrate(db_url)
    state = tmp_path / "edge-state"
    logs = [tmp_path / "edge-1.log", tmp_path / "edge-2.log"]
    with (
        LocalMosquitto(state_dir=tmp_path / "broker") as broker,
        RtspTestServer({"cam": str(video_path("hanoi_lythuongkiet_hangbai_intersection_trafficlight.mp4"))}) as rtsp,
    ):
        central_cfg = tmp_path / "central.yaml"
        central_cfg.write_text(
            f"mqtt:\n  topic_prefix: {prefix}\n  client_id: fault-central\nevidence_dir: {tmp_path / 'ev'}\n",
            encoding="utf-8",
        )
        node_cfg = tmp_path / "node.yaml"
        node_cfg.write_text(
            f"node:\n  id: fault-node\n  state_dir: {state}\n"
            f"mqtt:\n  url: {broker.url}\n  topic_prefix: {prefix}\n  client_id: fault-node\n"
            "status_interval_s: 2\n"
            "clips:\n  pre_seconds: 1\n  post_seconds: 1\n"
            f"cameras:\n  - config: {CAMERA}\n    source: {rtsp.url('cam')}\n",
            encoding="utf-8",
        )
        ingester = start_ingester(central_cfg, {"CENTRAL_DATABASE_URL": db_url, "CENTRAL_MQTT_URL": broker.url},
                                  tmp_path / "central.log")
        edge = _start_edge(node_cfg, logs[0])
        try:
            wait_until(lambda: _stored(db_url), 120, interval=0.5, what="a first event stored at central")

            # 1. The broker goes away while the camera keeps producing events.
            broker.stop()
            made_before = len(_edge_events(logs[0]))
            wait_until(lambda: len(_edge_events(logs[0])) > made_before, 120, interval=0.5,
                       what="an event made during the outage")
            wait_until(lambda: _outbox_backlog(state) > 0, 10, what="it waits in the outbox")

            # 2. The edge is killed with events in its outbox, then both come back.
            edge.send_signal(signal.SIGKILL)
            edge.wait(10)
            broker.start()
            edge = _start_edge(node_cfg, logs[1])
            made = _edge_events(logs[0])
            wait_until(lambda: _outbox_backlog(state) == 0, 90, interval=0.5, what="outbox drained after restart")
            wait_until(lambda: {i for i, _ in _stored(db_url)} >= set(made), 60, interval=0.5,
                       what="every event made before the kill stored")
        finally:
            stop_process(edge)
            stop_process(ingester)
        made = _edge_events(logs[0]) + _edge_events(logs[1])

    stored = _stored(db_url)
    ids = [i for i, _ in stored]
    assert len(ids) == len(set(ids)), "an event was stored twice"
    assert set(_edge_events(logs[0])) <= set(ids), "an event made before the kill was lost"
    assert set(ids) <= set(made), "central stored an event the edge never made"
    # In order per camera: central received them in the order the edge made them.
    order = {eid: k for k, eid in enumerate(made)}
    received = [order[i] for i in ids]
    assert received == sorted(received), "events arrived out of order"
    # No half-written evidence: every file is complete (its name or its folder's event says which).
    assert not list(state.rglob("*.part")), "a half-written evidence file was left behind"
    for f in (state / "evidence").rglob("*.jpg"):
        assert f.stat().st_size > 0 and f.read_bytes()[:3] == b"\xff\xd8\xff", f
    for f in state.rglob("*.mp4"):
        assert f.stem == hashlib.sha256(f.read_bytes()).hexdigest() or f.stat().st_size > 0, f
