"""The status contract (contract/status.py): node status and camera health, typed, strict, with schema."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from contract.status import CameraHealth, NodeStatus, camera_health_json_schema, node_status_json_schema

REPO = Path(__file__).resolve().parents[2]

HEALTH = {
    "schema": "ioc.camera_health/1", "node": "node-1", "camera": "cam-1", "state": "streaming",
    "at": "2026-01-01T00:00:10Z", "reconnects": 0, "restarts": 0, "last_frame_at": "2026-01-01T00:00:09.9Z",
    "frames_decoded": 250, "frames_delivered": 50, "analysed_frames": 50, "slots_missed": 0, "frames_gated": 3,
    "analysis_fps": 5.0, "analysis_fps_target": 5.0, "lag_ms_p50": 40.0, "lag_ms_max": 90.5,
    "overloaded": False, "camera_moved": False, "last_error": None,
}
STATUS = {
    "schema": "ioc.node_status/1", "node": "node-1", "state": "online", "at": "2026-01-01T00:00:10+07:00",
    "uptime_s": 10.0, "outbox_backlog": 0, "outbox_oldest_s": None, "published": 12, "held_no_subscriber": 0,
    "disk_full": False, "uploads": None, "storage": {"quota_bytes": 1, "disk_full": False, "fs_free_bytes": None},
    "inference": {"requests": 50, "mean_batch": 1.0}, "cameras": {"cam-1": HEALTH},
}


def test_a_live_status_round_trips_and_times_are_utc():
    status = NodeStatus.from_json(json.dumps(STATUS))
    assert status.at is not None and status.at.utcoffset().total_seconds() == 0
    assert status.cameras["cam-1"].frames_decoded == 250
    assert NodeStatus.from_json(status.to_json()) == status
    assert json.loads(status.to_json())["schema"] == "ioc.node_status/1"
    assert CameraHealth.from_json(json.dumps(HEALTH)).analysis_fps == 5.0


@pytest.mark.parametrize("payload", [
    {"schema": "ioc.node_status/1", "node": "node-1", "state": "offline"},  # the last will
    {"schema": "ioc.node_status/1", "node": "node-1", "state": "offline", "at": "2026-01-01T00:00:00Z"},  # stop
])
def test_offline_messages_validate(payload):
    status = NodeStatus.from_json(json.dumps(payload))
    assert status.state == "offline" and status.cameras == {} and status.outbox_backlog is None


@pytest.mark.parametrize("change", [
    {"extra": 1},  # strict: unknown fields are refused
    {"state": "busy"},
    {"at": "2026-01-01T00:00:00"},  # no time zone
    {"outbox_backlog": None},  # an online status is complete
    {"outbox_backlog": "3"},
    {"cameras": {"cam-2": HEALTH}},  # keyed by the camera it describes
    {"schema": "ioc.node_status/2"},
])
def test_invalid_statuses_are_refused(change):
    with pytest.raises(ValidationError):
        NodeStatus.from_json(json.dumps({**STATUS, **change}))


@pytest.mark.parametrize("change", [
    {"state": "dancing"}, {"frames_decoded": -1}, {"analysis_fps_target": 0}, {"fps": 5}, {"restarts": True},
])
def test_invalid_health_is_refused(change):
    with pytest.raises(ValidationError):
        CameraHealth.from_json(json.dumps({**HEALTH, **change}))


def test_the_schema_field_is_required_on_the_wire():
    with pytest.raises(ValidationError, match="schema"):
        CameraHealth.from_json(json.dumps({k: v for k, v in HEALTH.items() if k != "schema"}))
    with pytest.raises(ValidationError, match="schema"):
        NodeStatus.from_json(json.dumps({"node": "node-1", "state": "offline"}))


@pytest.mark.parametrize(("which", "make"), [("node_status", node_status_json_schema),
                                              ("camera_health", camera_health_json_schema)])
def test_cli_prints_the_status_schemas(which, make):
    r = subprocess.run([sys.executable, "-m", "edge", "schema", which], cwd=REPO, capture_output=True, text=True,
                       check=True)
    schema = json.loads(r.stdout)
    assert schema == json.loads(json.dumps(make()))
    assert schema["$id"] == f"ioc.{which}/1" and schema["additionalProperties"] is False
