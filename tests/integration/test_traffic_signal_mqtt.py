"""Signal state from a controller over a real Mosquitto: topic, payloads, timeout to unknown."""

from __future__ import annotations

import time

import numpy as np
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from contract.topics import signal_topic
from edge.config import CameraConfig
from edge.detections import TrackedObjects
from edge.pipeline import build_rules, build_zones
from edge.rules import Observation
from edge.rules.signals import SignalState, signal_board
from edge.signal_feed import SignalFeed, parse_signal_payload
from tests.services import unique_name, wait_until

NAMES = ("person", "bicycle", "car", "motorcycle")

CAMERA = {
    "camera": {"id": "junction-1", "analysis_fps": 5},
    "scene": {
        "reference_size": [640, 480],
        "lines": [{"id": "stop", "points": [[500, 300], [100, 300]]}],
        "signals": [{"id": "main", "source": "controller", "controller_timeout_s": 3}],
    },
    "rules": {"red_light": {"line": "stop", "signal": "main"}},
}


def crossing(t: float, y: float) -> Observation:
    box = np.array([[280, y - 40, 320, y]], np.float32)
    return Observation(t, TrackedObjects(box, np.array([0.9], np.float32), np.array([3], np.int32),
                                         np.array([1], np.int64), NAMES))


def test_parse_payloads():
    assert parse_signal_payload(b'{"state": "red", "at": "2026-01-01T00:00:00Z"}') is SignalState.RED
    assert parse_signal_payload(b"GREEN") is SignalState.GREEN
    assert parse_signal_payload(b"purple") is None and parse_signal_payload(b"\xff") is None


def test_controller_state_over_mqtt_drives_the_red_light_rule(mqtt_broker):
    prefix = unique_name("p")
    feed = SignalFeed(mqtt_broker.url, unique_name("feed"), prefix, "node-a")
    feed.start()
    pub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=unique_name("ctl"), protocol=mqtt.MQTTv5)
    pub.connect(mqtt_broker.host, mqtt_broker.port)
    pub.loop_start()
    try:
        cam = CameraConfig.model_validate(CAMERA)
        rules = build_rules(cam, build_zones(cam, (640, 480)), (640, 480))
        board = signal_board(rules)
        assert board is not None
        # Another node's or camera's topic must not leak in.
        pub.publish(signal_topic(prefix, "node-b", "junction-1", "main"), b"red", qos=1)
        topic = signal_topic(prefix, "node-a", "junction-1", "main")

        def publish_until_seen(payload: bytes, n: int) -> None:
            def seen() -> bool:
                pub.publish(topic, payload, qos=1)
                time.sleep(0.05)
                return feed.received >= n
            wait_until(seen, what="the signal state to arrive")

        publish_until_seen(b'{"state": "red"}', 1)
        now = time.time()
        feed.apply("junction-1", rules, 10.0, now)
        assert board.reading("main").state is SignalState.UNKNOWN  # read at the next frame
        events = []
        for i, y in enumerate([360, 340, 320, 300, 280, 260]):
            t = 10.0 + 0.2 * i
            feed.apply("junction-1", rules, t, now + 0.2 * i)
            for rule in rules:
                events += rule.update(crossing(t, y))
        assert [v.type.value for v in events] == ["red_light"]
        assert events[0].details["signal_state"] == "red"
        assert ("junction-1", "main") in feed.latest and all(k[0] == "junction-1" for k in feed.latest)
        # The controller falls silent: after controller_timeout_s the state is unknown.
        for rule in rules:
            rule.update(crossing(20.0, 200))
        assert board.reading("main").state is SignalState.UNKNOWN
    finally:
        pub.loop_stop()
        pub.disconnect()
        feed.stop()
