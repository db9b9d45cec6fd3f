"""What a real edge node publishes on its status and health topics is the typed contract
(contract.status), with live values; its /metrics says the same. A file camera (looped at its own
pace) under the real node, the real Mosquitto, a real HTTP scrape."""

from __future__ import annotations

import threading
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from contract.status import CameraHealth, NodeStatus
from edge.data import video_path
from edge.node import EdgeNode
from tests.integration.live_node import VIDEO, camera, live_node
from tests.services import unique_name, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

CAMERA = "paved-parking-area"
NODE = "status-node"


class Topics:
    """Every status and health message, validated with the contract as it arrives."""

    def __init__(self, port: int, prefix: str) -> None:
        self.status: list[NodeStatus] = []
        self.health: list[CameraHealth] = []
        self.invalid: list[tuple[str, str]] = []
        self.lock = threading.Lock()
        self.c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=unique_name("st-"), protocol=mqtt.MQTTv5)
        self.c.on_message = self._on_message
        self.c.on_connect = lambda c, *_: (c.subscribe(f"{prefix}/{NODE}/status", qos=1),
                                           c.subscribe(f"{prefix}/{NODE}/+/health", qos=1))
        self.c.connect("127.0.0.1", port)
        self.c.loop_start()

    def _on_message(self, _c, _u, msg) -> None:
        try:
            if msg.topic.endswith("/status"):
                item = NodeStatus.from_json(msg.payload)
                with self.lock:
                    self.status.append(item)
            else:
                h = CameraHealth.from_json(msg.payload)
                assert msg.topic.endswith(f"/{h.camera}/health")
                with self.lock:
                    self.health.append(h)
        except Exception as e:  # collected: the test fails naming the payload
            with self.lock:
                self.invalid.append((msg.topic, f"{e}: {msg.payload[:300]!r}"))

    def online(self) -> list[NodeStatus]:
        with self.lock:
            return [s for s in self.status if s.state == "online"]

    def streaming(self) -> list[CameraHealth]:
        with self.lock:
            return [h for h in self.health if h.state == "streaming" and h.analysed_frames > 0]

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()


@pytest.fixture(scope="module")
def running(mqtt_broker, tmp_path_factory) -> Iterator[tuple[EdgeNode, Topics]]:
    if not video_path(VIDEO).is_file():
        pytest.skip("sample video missing (set EDGE_DATA_DIR)")
    tmp: Path = tmp_path_factory.mktemp("status")
    prefix = unique_name("st")
    topics = Topics(mqtt_broker.port, prefix)
    node = live_node(mqtt_broker.port, tmp / "edge", prefix, NODE, [camera()], metrics={"port": 0})
    runner = threading.Thread(target=node.run, daemon=True)
    runner.start()
    try:
        yield node, topics
    finally:
        node.stop()  # idempotent: the last test has stopped it already
        runner.join(15)
        topics.close()


def test_status_and_health_are_the_contract_with_live_values(running) -> None:
    node, topics = running
    wait_until(lambda: len(topics.streaming()) >= 2 and len(topics.online()) >= 3, 90, interval=0.2,
               what="the camera analysing, health and status coming in")
    first = topics.streaming()[-1]
    time.sleep(3.5)  # three more status intervals
    last = topics.streaming()[-1]
    assert not topics.invalid, topics.invalid
    # Health is re-published with live values, not the snapshot of the last state change.
    assert last.at > first.at
    assert last.analysed_frames > first.analysed_frames
    assert last.frames_decoded >= last.frames_delivered >= last.analysed_frames > 1
    assert last.frames_decoded > first.frames_decoded
    assert last.analysis_fps is not None and last.analysis_fps > 0
    assert last.analysis_fps_target == 5
    assert last.last_frame_at is not None and (last.at - last.last_frame_at).total_seconds() < 5
    assert (datetime.now(UTC) - last.at).total_seconds() < 5
    assert last.lag_ms_p50 is not None and last.lag_ms_max is not None and last.lag_ms_max >= last.lag_ms_p50
    assert last.restarts == 0 and last.node == NODE
    # The sample is a hand-held phone clip that pans in its first second and loops: registration may
    # rightly call that a moved camera (what camera_moved means is tested in tests/unit/test_registration.py
    # and the urban motion scenarios); here only that the live health carries it.
    assert isinstance(last.camera_moved, bool)
    assert last.clip_buffer_bytes and last.clip_buffer_bytes > 0  # clips are on by default
    # The node status carries the same live health per camera, and its own delivery counters.
    status = topics.online()[-1]
    cam = status.cameras[CAMERA]
    assert cam.analysed_frames >= first.analysed_frames and cam.frames_decoded >= cam.analysed_frames
    assert status.uptime_s is not None and status.uptime_s > 0
    assert status.outbox_backlog is not None and status.published is not None
    assert status.inference["requests"] > 0
    assert status.evidence is not None and status.evidence["snapshots_dropped"] == 0
    assert status.storage["quota_bytes"] > 0


def test_metrics_endpoint_of_a_running_node(running) -> None:
    node, topics = running
    wait_until(lambda: topics.streaming(), 90, interval=0.2, what="the camera analysing")
    assert node.metrics_server is not None

    def scrape() -> dict[str, float]:
        with urllib.request.urlopen(f"http://127.0.0.1:{node.metrics_server.port}/metrics", timeout=10) as r:
            assert r.status == 200 and r.headers["Content-Type"].startswith("text/plain")
            text = r.read().decode()
        out = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                out[name] = float(value)
        return out

    label = f'{{camera="{CAMERA}"}}'
    before = scrape()
    time.sleep(2.5)
    after = scrape()
    assert after[f"ioc_edge_camera_frames_analysed_total{label}"] > before[f"ioc_edge_camera_frames_analysed_total{label}"]
    assert after[f"ioc_edge_camera_analysis_fps{label}"] > 0
    assert after[f"ioc_edge_camera_analysis_fps_target{label}"] == 5
    assert after[f"ioc_edge_camera_frames_decoded_total{label}"] >= after[f"ioc_edge_camera_frames_analysed_total{label}"]
    for name in ("frames_dropped_total", "frames_gated_total", "reconnects_total", "restarts_total", "lag_max_seconds"):
        assert f"ioc_edge_camera_{name}{label}" in after, name
    assert after[f'ioc_edge_camera_lag_seconds{{camera="{CAMERA}",quantile="0.5"}}'] >= 0
    assert after[f'ioc_edge_camera_state{{camera="{CAMERA}",state="streaming"}}'] == 1
    assert after["ioc_edge_inference_requests_total"] > 0 and after["ioc_edge_inference_ms_per_frame"] > 0
    assert after["ioc_edge_mqtt_connected"] == 1
    for name in ("outbox_backlog", "outbox_oldest_seconds", "published_total", "evidence_queue_depth",
                 "evidence_snapshots_dropped_total", "disk_full", "uptime_seconds"):
        assert f"ioc_edge_{name}" in after, name
    # The status messages the scrape caused are still valid contract messages.
    assert not topics.invalid, topics.invalid


def test_a_stopped_node_says_offline_in_the_contract(running) -> None:
    """Runs last in this module: it stops the node."""
    node, topics = running
    wait_until(lambda: topics.online(), 90, interval=0.2, what="a status")
    node.stop()
    wait_until(lambda: any(s.state == "offline" for s in topics.status), 20, interval=0.2, what="offline status")
    offline = [s for s in topics.status if s.state == "offline"][-1]
    assert offline.at is not None and offline.cameras == {}
    ended = [h for h in topics.health if h.state == "ended"]
    assert ended, "the final health says the camera ended"
    assert not topics.invalid, topics.invalid
    # The broker's last will is the same contract (no `at`: the broker sends it, later).
    will = NodeStatus.from_json(node.publisher.client.will_payload)
    assert will.state == "offline" and will.node == NODE and will.at is None
