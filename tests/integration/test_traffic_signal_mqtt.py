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


def test_a_controllers_signal_reaches_the_nodes_rules_on_its_one_connection_under_dynamic_security(tmp_path):
    """The generated broker config binds node-a's account to client id `node-a`: the node must hear
    its controller on the connection it publishes on (a second `node-a-signals` one is refused)."""
    import secrets

    from central.broker_security import broker_files
    from contract.mqtt import MqttClient, MqttSettings
    from edge.local_broker import LocalMosquitto
    from tests.integration.live_node import live_node

    pw = {name: secrets.token_urlsafe(16) for name in ("central", "node-a", "ctl-a")}
    security = broker_files(tmp_path / "security", {"node-a": pw["node-a"]}, pw["central"], prefix="ioc", tls=False,
                            dynsec=True, controllers={"ctl-a": ("node-a", pw["ctl-a"])})
    with LocalMosquitto(state_dir=tmp_path / "broker", security=security) as broker:
        cam = CameraConfig.model_validate(CAMERA)
        node = live_node(broker.port, tmp_path / "node", "ioc", "node-a", [cam],
                         mqtt={"url": broker.url, "topic_prefix": "ioc", "password": pw["node-a"]})
        assert node.signal_feed is not None and node.signal_feed.shared is node.publisher
        assert node.publisher.mqtt.settings.client_id == "node-a"
        controller = MqttClient(MqttSettings(broker.url, "ctl-a", username="ctl-a", password=pw["ctl-a"]))
        second = MqttClient(MqttSettings(broker.url, "node-a-signals", username="node-a", password=pw["node-a"]))
        node.publisher.start()
        controller.start()
        second.start()
        try:
            wait_until(node.publisher.connected.is_set, 10, what="node-a connected")
            wait_until(controller.connected.is_set, 10, what="controller connected")
            # What the node used to open for its feed: refused by the client-id binding.
            wait_until(lambda: second.last_connack is not None, 10, what="the second connection's CONNACK")
            assert not second.connected.is_set() and "authori" in second.last_connack.lower(), second.last_connack
            rules = build_rules(cam, build_zones(cam, (640, 480)), (640, 480))
            feed = node.signal_feed
            topic = signal_topic("ioc", "node-a", "junction-1", "main")

            def seen() -> bool:
                assert controller.publish_wait(topic, b'{"state": "red"}', timeout=5).ok
                return feed.received >= 1
            wait_until(seen, 15, what="the controller's signal on the node's connection")
            assert node.status().subscriptions_refused == {}
            now = time.time()
            events = []
            for i, y in enumerate([360, 340, 320, 300, 280, 260]):
                t = 10.0 + 0.2 * i
                feed.apply("junction-1", rules, t, now + 0.2 * i)
                for rule in rules:
                    events += rule.update(crossing(t, y))
            assert [v.type.value for v in events] == ["red_light"]
            assert events[0].details["signal_state"] == "red"
        finally:
            for c in (controller, second):
                c.stop()
            node.publisher.stop()
            node.outbox.close()
