"""The live node's runtime under faults, against the real Mosquitto: a stuck evidence disk does not
slow analysis and loses no event; a camera worker that crashes is restarted with backoff, its
health says so (validated with the contract), and one that keeps crashing is `failed`."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from contract.events import ViolationEvent
from contract.status import CameraHealth
from edge.data import video_path
from edge.pipeline import EventRecord
from tests.integration.live_node import VIDEO, camera, live_node
from tests.services import unique_name, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

class Listener:
    def __init__(self, port: int, prefix: str, node: str) -> None:
        self.events: list[ViolationEvent] = []
        self.health: list[CameraHealth] = []
        self.lock = threading.Lock()
        self.c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=unique_name("rt-"), protocol=mqtt.MQTTv5)
        self.c.on_message = self._on_message
        self.c.on_connect = lambda c, *_: c.subscribe(f"{prefix}/{node}/#", qos=1)  # as central does
        self.c.connect("127.0.0.1", port)
        self.c.loop_start()

    def _on_message(self, _c, _u, msg) -> None:
        with self.lock:
            if msg.topic.endswith("/health"):
                self.health.append(CameraHealth.from_json(msg.payload))  # raises (and is seen) if invalid
            elif "/events/" in msg.topic:
                self.events.append(ViolationEvent.model_validate(json.loads(msg.payload)))

    def of(self, camera: str) -> list[CameraHealth]:
        with self.lock:
            return [h for h in self.health if h.camera == camera]

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()


def test_a_stuck_evidence_disk_does_not_slow_analysis_nor_lose_the_event(mqtt_broker, tmp_path: Path) -> None:
    if not video_path(VIDEO).is_file():
        pytest.skip("sample video missing (set EDGE_DATA_DIR)")
    prefix = unique_name("rt")
    listen = Listener(mqtt_broker.port, prefix, "slow-disk-node")
    node = live_node(mqtt_broker.port, tmp_path / "edge", prefix, "slow-disk-node", [camera()],
                 clips={"pre_seconds": 2, "post_seconds": 2})
    real_submit = node.evidence.submit
    writing = threading.Event()
    STUCK_S = 4.0

    def stuck_disk(rec: EventRecord) -> None:
        """Stands in for an fsync that hangs for seconds: every outbox/evidence write waits."""
        writing.set()
        time.sleep(STUCK_S)
        real_submit(rec)

    node.evidence.submit = stuck_disk
    runner = threading.Thread(target=node.run, daemon=True)
    runner.start()
    try:
        wait_until(writing.is_set, 120, interval=0.05, what="the first event's write (stuck)")
        worker = node.workers[0]
        before, t0 = worker.health().analysed_frames, time.monotonic()
        time.sleep(3.0)
        done, dt = worker.health().analysed_frames - before, time.monotonic() - t0
        # 5 fps analysis: it goes on at its rate while the write hangs (before: 0 frames).
        assert done >= 0.8 * 5 * dt, f"{done} frames analysed in {dt:.1f} s while the disk was stuck"
        first = wait_until(lambda: listen.events[:1], 30, what="the event, once the write is through")[0]
        assert first.evidence_pending == ["clip"] and {e.kind for e in first.evidence} >= {"snapshot"}
        again = wait_until(lambda: [e for e in listen.events[1:] if e.id == first.id], 30,
                           what="the same event with its clip")[0]
        assert "clip" in {e.kind for e in again.evidence}
        wait_until(lambda: node.outbox.backlog() == 0, 20, what="everything acknowledged by the broker")
        s = node.evidence.stats()
        assert s["lost"] == 0 and s["snapshots_dropped"] == 0 and s["submitted"] >= 2
    finally:
        node.stop()
        runner.join(15)
        listen.close()


def test_a_crashed_camera_worker_is_restarted_and_reported(mqtt_broker, tmp_path: Path) -> None:
    if not video_path(VIDEO).is_file():
        pytest.skip("sample video missing (set EDGE_DATA_DIR)")
    prefix = unique_name("rt")
    late = tmp_path / "late.mp4"  # not there yet: the camera worker raises at open, and again...
    cameras = [
        camera(str(late), "late-camera"),
        camera(str(tmp_path / "never.mp4"), "gone-camera"),  # ... this one for good: failed
        camera(VIDEO, "crashing-camera"),  # streams, then its analysis raises once mid-stream
    ]
    listen = Listener(mqtt_broker.port, prefix, "restart-node")
    node = live_node(mqtt_broker.port, tmp_path / "edge", prefix, "restart-node", cameras,
                 restart={"initial_s": 0.2, "max_s": 0.5, "max_consecutive": 4}, clips={"enabled": False})
    runner = threading.Thread(target=node.run, daemon=True)
    runner.start()
    try:
        wait_until(lambda: any(h.state == "restarting" for h in listen.of("late-camera")), 30,
                   what="the late camera restarting")
        os.symlink(video_path(VIDEO), late)  # the camera comes back

        crashing = node.workers[2]
        analyzer = wait_until(lambda: crashing.analyzer if (crashing.analyzer and crashing.analyzer.stats.frames >= 10)
                              else None, 60, what="the third camera analysing")
        real_process = analyzer.process

        def process_then_crash(frame, when):
            analyzer.process = real_process  # once
            raise RuntimeError("analysis blew up")

        analyzer.process = process_then_crash
        wait_until(lambda: [h for h in listen.of("crashing-camera") if h.state == "restarting"], 30,
                   what="the crash reported")
        wait_until(lambda: [h for h in listen.of("crashing-camera") if h.state == "streaming" and h.restarts == 1],
                   60, what="the restarted camera")
        crashed = [h for h in listen.of("crashing-camera") if h.state == "restarting"][0]
        assert crashed.last_error == "RuntimeError: analysis blew up"
        assert crashed.last_frame_at is not None and crashed.overloaded is False  # down is not overloaded
        # Counters go on from where the crashed run left them (they count since the node started).
        wait_until(lambda: node.workers[2].health().analysed_frames > crashed.analysed_frames >= 10, 30,
                   what="analysis counted on after the restart")

        late_back = wait_until(lambda: [h for h in listen.of("late-camera")
                                        if h.state == "streaming" and h.analysed_frames > 0], 60,
                               what="the late camera streaming")[-1]
        assert late_back.restarts >= 1
        failed = wait_until(lambda: [h for h in listen.of("gone-camera") if h.state == "failed"], 30,
                            what="the gone camera failed")[-1]
        assert failed.restarts == 4 and "no such file" in (failed.last_error or "")
        status = node.status()
        assert status.cameras["gone-camera"].state == "failed"
        assert status.cameras["crashing-camera"].restarts == 1
    finally:
        node.stop()
        runner.join(15)
        listen.close()
