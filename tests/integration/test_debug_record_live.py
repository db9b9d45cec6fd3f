"""Live debug recording on request (issue 15): central publishes `<prefix>/<node>/<camera>/debug/record`
with `{"seconds": N}` under the generated dynamic-security broker config (client ids bound); the
running node hears it on its one connection, refuses N > 120 with a clear status, records the
debug stream of that camera for N seconds under its state dir and announces the file (retained
`.../debug/status`). Another node may not ask. Real broker, real node on the sample footage."""

from __future__ import annotations

import json
import secrets
import threading
from pathlib import Path

import cv2
import pytest

from central.broker_security import CENTRAL_USER, broker_files
from contract.mqtt import MqttClient, MqttSettings
from edge.data import video_path
from edge.local_broker import LocalMosquitto
from tests.integration.live_node import VIDEO, camera, live_node
from tests.services import unique_name, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


def asked(central: MqttClient, topic: str, payload: bytes) -> None:
    """Central's request, acknowledged by the broker. 30 s: a CI run on a loaded two-core box once
    saw no PUBACK within 10 s although the node had the request; the state says which side stalled."""
    ack = central.publish_wait(topic, payload, timeout=30)
    assert ack is not None and ack.ok, (ack, central.status())


def test_central_asks_a_running_node_for_a_bounded_debug_recording(tmp_path: Path) -> None:
    if not video_path(VIDEO).is_file():
        pytest.skip("sample video missing (set EDGE_DATA_DIR)")
    pw = {n: secrets.token_urlsafe(16) for n in ("central", "node-a", "node-b")}
    security = broker_files(tmp_path / "security", {"node-a": pw["node-a"], "node-b": pw["node-b"]}, pw["central"],
                            prefix="ioc", tls=False, dynsec=True)
    with LocalMosquitto(state_dir=tmp_path / "broker", security=security) as broker:
        cam = camera()
        cam = cam.model_copy(update={"camera": cam.camera.model_copy(update={"analysis_fps": 2})})
        cam_id = cam.camera.id
        node = live_node(broker.port, tmp_path / "edge", "ioc", "node-a", [cam],
                         mqtt={"url": broker.url, "topic_prefix": "ioc", "password": pw["node-a"]})
        status: list[dict] = []
        central = MqttClient(
            MqttSettings(broker.url, unique_name("central-"), username=CENTRAL_USER, password=pw["central"]),
            on_connect=lambda *_a: central.subscribe([f"ioc/node-a/{cam_id}/debug/status"]),
            on_message=lambda _c, _u, m: status.append(json.loads(m.payload)),
        ).start()
        other = MqttClient(MqttSettings(broker.url, "node-b", username="node-b", password=pw["node-b"])).start()
        runner = threading.Thread(target=node.run, daemon=True)
        runner.start()
        topic = f"ioc/node-a/{cam_id}/debug/record"
        try:
            worker = node.workers[0]
            wait_until(lambda: worker.analyzer is not None and worker.analyzer.stats.frames > 0, 60,
                       what="the camera analysing")
            wait_until(lambda: central.connected.is_set() and other.connected.is_set(), 10, what="clients connected")
            assert node.status().subscriptions_refused == {} and node.publisher.mqtt.settings.client_id == "node-a"
            # Another node may not ask node-a for anything.
            ack = other.publish_wait(topic, b'{"seconds": 5}', timeout=10)
            assert ack is not None and not ack.ok and "Not authorized" in ack.reason
            # Too long: refused, said in the status; nothing is recorded.
            asked(central, topic, b'{"seconds": 500}')
            wait_until(lambda: status and status[-1]["state"] == "refused", 15, what="the refusal")
            assert "120" in status[-1]["error"] and not worker.debug.recording

            asked(central, topic, b'{"seconds": 3}')
            done = wait_until(lambda: next((s for s in status if s["state"] == "recorded"), None), 60,
                              what="the recording announced")
            assert [s["state"] for s in status][-2:] == ["requested", "recorded"]
            video = Path(done["file"])
            assert video.is_file() and video.parent == tmp_path / "edge" / "debug" / cam_id
            assert done["size"] == video.stat().st_size and done["sha256"]
            cap = cv2.VideoCapture(str(video))
            frames = []
            while (ok := cap.read())[0]:
                frames.append(ok[1])
            cap.release()
            # 3 s at 2 analysed frames a second (the camera's rate): bounded, not open-ended.
            assert 5 <= len(frames) <= 10, len(frames)
            assert frames[0].shape[:2] == (1280, 720)
            trace = [json.loads(line) for line in Path(done["trace"]).read_text().splitlines()]
            assert len(trace) == len(frames)
            ts = [r["t"] for r in trace]
            assert ts == sorted(ts) and 2.0 <= ts[-1] - ts[0] <= 3.6  # the seconds asked for
            assert all({"frame", "signals", "rules", "events"} <= r.keys() for r in trace)
        finally:
            node.stopping.set()
            runner.join(30)
            node.stop()
            central.stop()
            other.stop()
