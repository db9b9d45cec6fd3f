"""`mqtt.puback_timeout_s` (issue 19): validated at load with the file and key named, carried to the
publisher, and its count in the node status contract and the Prometheus endpoint."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from contract.configfile import ConfigError
from contract.status import NodeStatus
from edge.config import NodeConfig, load_node_config
from edge.metrics import EdgeCollector
from edge.outbox import Outbox
from edge.publisher import PUBACK_TIMEOUT_S, MqttPublisher

REPO = Path(__file__).resolve().parents[2]

CAMERA = """
camera: {id: cam-1, analysis_fps: 5, source: rtsp://127.0.0.1:8554/cam}
scene:
  reference_size: [640, 480]
  zones:
    - {id: z1, kind: no_stopping, polygon: [[0, 0], [100, 0], [100, 100]]}
rules:
  illegal_stopping: {zones: [z1], max_stop_seconds: 10}
"""


def _node(tmp_path: Path, mqtt: str) -> Path:
    (tmp_path / "cam.yaml").write_text(CAMERA, encoding="utf-8")
    path = tmp_path / "node.yaml"
    path.write_text(f"node: {{id: n1}}\nmqtt: {mqtt}\ncameras:\n  - {{config: cam.yaml}}\n", encoding="utf-8")
    return path


def test_default_is_thirty_seconds_and_a_value_is_kept(tmp_path: Path) -> None:
    node, _cams = load_node_config(_node(tmp_path, "{url: 'mqtt://127.0.0.1:1883'}"))
    assert node.mqtt.puback_timeout_s == 30.0 == PUBACK_TIMEOUT_S
    node, _cams = load_node_config(_node(tmp_path, "{puback_timeout_s: 7.5}"))
    assert node.mqtt.puback_timeout_s == 7.5


@pytest.mark.parametrize(
    ("value", "expect"),
    [("0", "greater than or equal to 1"), ("-5", "greater than or equal to 1"), ("0.5", "greater than or equal to 1"),
     ("7200", "less than or equal to 3600"), ("soon", "valid number"), ("null", "valid number")],
)
def test_a_bad_value_names_the_file_and_the_key(tmp_path: Path, value: str, expect: str) -> None:
    path = _node(tmp_path, f"{{puback_timeout_s: {value}}}")
    with pytest.raises(ConfigError) as err:
        load_node_config(path)
    text = str(err.value)
    assert str(path) in text and "mqtt.puback_timeout_s" in text and expect in text, text


def test_check_config_refuses_a_bad_value_without_a_traceback(tmp_path: Path) -> None:
    path = _node(tmp_path, "{puback_timeout_s: 0}")
    r = subprocess.run([sys.executable, "-m", "edge", "check-config", str(path)], cwd=REPO, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 2, r.stderr
    assert "mqtt.puback_timeout_s" in r.stderr and str(path) in r.stderr and "Traceback" not in r.stderr


def test_the_publisher_takes_the_value_and_refuses_a_non_positive_one(tmp_path: Path) -> None:
    cfg = NodeConfig.model_validate({"node": {"id": "n1"}, "cameras": [{"config": "c.yaml"}],
                                     "mqtt": {"puback_timeout_s": 12}})
    outbox = Outbox(tmp_path / "outbox.sqlite3")
    try:
        pub = MqttPublisher(outbox, cfg.mqtt.client_settings("c", "n1"), puback_timeout_s=cfg.mqtt.puback_timeout_s)
        assert pub.puback_timeout_s == 12 and pub.puback_timeouts == 0
        assert pub.status()["puback_timeouts"] == 0
        assert MqttPublisher(outbox, "mqtt://127.0.0.1:1", "c").puback_timeout_s == PUBACK_TIMEOUT_S
        with pytest.raises(ValueError, match="puback_timeout_s"):
            MqttPublisher(outbox, "mqtt://127.0.0.1:1", "c", puback_timeout_s=0)
    finally:
        outbox.close()


def test_the_count_is_in_the_status_contract_and_the_metrics() -> None:
    status = NodeStatus(node="n1", state="online", at="2026-12-04T10:00:00Z", uptime_s=1.0, outbox_backlog=3,
                        published=7, held_no_subscriber=0, puback_timeouts=2)
    assert NodeStatus.from_json(status.to_json()).puback_timeouts == 2
    assert NodeStatus.from_json(
        NodeStatus(node="n1", state="offline").to_json()
    ).puback_timeouts is None  # optional: an older node's status still validates
    with pytest.raises(ValueError):
        NodeStatus(node="n1", state="online", at="2026-12-04T10:00:00Z", uptime_s=1.0, outbox_backlog=0,
                   published=0, held_no_subscriber=0, puback_timeouts=-1)
    node = SimpleNamespace(
        status=lambda: status,
        publisher=SimpleNamespace(connected=SimpleNamespace(is_set=lambda: True)),
        inference=SimpleNamespace(stats=SimpleNamespace(snapshot=dict)),
    )
    families = {f.name: f for f in EdgeCollector(node).collect()}  # type: ignore[arg-type]
    fam = families["ioc_edge_puback_timeouts"]
    assert fam.type == "counter" and [s.value for s in fam.samples if s.name.endswith("_total")] == [2.0]
