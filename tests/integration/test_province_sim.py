"""benchmarks/province_sim.py at a small N, so the tool cannot rot: 50 simulated nodes (each its
own MQTT connection, account and client id on a real Mosquitto with the dynamic-security plugin),
short steady / rush-hour / steady phases, two real `central ingest` processes into a fresh
PostgreSQL database. Every published event must be stored once, every connection held, and the
table printed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

REPO = Path(__file__).resolve().parents[2]


def test_fifty_nodes_through_mosquitto_into_postgresql(postgres_admin_url: str) -> None:
    env = {**os.environ, "TEST_POSTGRES_URL": postgres_admin_url, "PYTHONPATH": str(REPO)}
    proc = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "province_sim.py"), "--nodes", "50", "--workers", "1",
         "--ingesters", "2", "--steady-s", "4", "--burst-s", "3", "--after-s", "3",
         # ~5 events/s steady, ~55/s in the rush: enough to count, light on a shared box
         "--events-per-camera-day", "3000", "--evidence-scale", "0.05", "--drain-s", "30", "--json"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=80,
    )
    out = proc.stdout
    assert proc.returncode == 0, f"exit {proc.returncode}\n{out[-3000:]}\n{proc.stderr[-3000:]}"
    result = json.loads(out.strip().splitlines()[-1])
    assert result["published_events"] > 20, result
    assert result["lost"] == 0 and result["stored_twice"] == 0 and result["unlinked"] == 0, result
    assert result["stored_events"] == result["published_events"]
    assert result["connections_held_at_start"] == 50 and result["connack_refused"] == 0 and result["dropped"] == 0
    assert [p["connections_held_min"] for p in result["phases"]] == [50, 50, 50]
    # Every node's status and every camera's health reached central (the retained topics).
    assert result["node_status_rows"] == 50 and result["camera_health_rows"] == result["cameras"]
    # The live edge's re-publish with the clip reached the stored events (same id, amended).
    assert result["republished_with_clip"] > 0
    assert [p["phase"] for p in result["phases"]] == ["steady", "rush x10", "after"]
    rush = result["phases"][1]
    assert rush["offered_events_per_s"] > 3 * result["phases"][0]["offered_events_per_s"]
    # The table: its header and one row per phase.
    assert "offered ev/s" in out and "p99 ms" in out
    for name in ("steady", "rush x10", "after"):
        assert any(line.strip().startswith(name + " |") for line in out.splitlines()), out
