"""Broker access control with a password per node, an ACL and TLS, on a real Mosquitto."""

from __future__ import annotations

import secrets
import threading
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from central.broker_security import CENTRAL_USER, secure_broker_files
from edge.local_broker import LocalMosquitto
from edge.outbox import Outbox, OutboxMessage
from edge.publisher import MqttPublisher
from tests.services import unique_name, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

NODES = {"node-a": secrets.token_urlsafe(16), "node-b": secrets.token_urlsafe(16)}
CENTRAL_PASSWORD = secrets.token_urlsafe(16)


@pytest.fixture(scope="module")
def secured(tmp_path_factory):
    folder = tmp_path_factory.mktemp("broker-security")
    security = secure_broker_files(folder, NODES, CENTRAL_PASSWORD, prefix="ioc")
    with LocalMosquitto(state_dir=folder / "state", security=security) as broker:
        yield broker, security


class Client:
    def __init__(self, port: int, user: str | None, password: str | None, *, ca: Path | None = None) -> None:
        self.received: list[str] = []
        self.connack = threading.Event()
        self.reason = None
        self.suback: list = []
        self.c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=unique_name("c-"), protocol=mqtt.MQTTv5)
        if user:
            self.c.username_pw_set(user, password)
        if ca:
            self.c.tls_set(ca_certs=str(ca))
        self.c.on_connect = self._on_connect
        self.c.on_message = lambda _c, _u, m: self.received.append(m.topic)
        self.c.on_subscribe = lambda _c, _u, _mid, codes, _p: self.suback.extend(codes)
        self.c.connect("127.0.0.1", port)
        self.c.loop_start()

    def _on_connect(self, _c, _u, _f, reason, _p) -> None:
        self.reason = reason
        self.connack.set()

    def publish(self, topic: str) -> mqtt.MQTTMessageInfo:
        info = self.c.publish(topic, b"x", qos=1)
        info.wait_for_publish(10)
        return info

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()


def test_unauthenticated_and_wrong_password_are_refused(secured):
    broker, _ = secured
    for user, password in [(None, None), ("node-a", "wrong"), ("nobody", "x")]:
        c = Client(broker.port, user, password)
        try:
            assert c.connack.wait(10)
            assert c.reason.is_failure, f"{user!r} was let in"
        finally:
            c.close()


def test_a_node_publishes_only_as_itself_and_reads_no_other_node(secured):
    broker, _ = secured
    central = Client(broker.port, CENTRAL_USER, CENTRAL_PASSWORD)
    node_a = Client(broker.port, "node-a", NODES["node-a"])
    node_b = Client(broker.port, "node-b", NODES["node-b"])
    try:
        for c in (central, node_a, node_b):
            assert c.connack.wait(10) and not c.reason.is_failure
        central.c.subscribe("ioc/#", qos=1)
        node_b.c.subscribe("ioc/#", qos=1)  # allowed to subscribe, but must receive nothing of node-a's
        wait_until(lambda: central.suback and node_b.suback, 10, what="subscriptions")

        node_a.publish("ioc/node-a/cam-1/events/illegal_stopping")
        node_a.publish("ioc/node-b/cam-1/events/illegal_stopping")  # impersonation
        node_a.publish("ioc/central/whatever")
        wait_until(lambda: "ioc/node-a/cam-1/events/illegal_stopping" in central.received, 10, what="own event")
        central.publish("ioc/node-a/cam-1/events/illegal_stopping")  # central may only read
        node_b.publish("ioc/node-b/cam-9/health")
        wait_until(lambda: "ioc/node-b/cam-9/health" in central.received, 10, what="node-b's own health")

        assert central.received.count("ioc/node-a/cam-1/events/illegal_stopping") == 1  # not central's own
        assert "ioc/node-b/cam-1/events/illegal_stopping" not in central.received
        assert "ioc/central/whatever" not in central.received
        assert not [t for t in node_b.received if t.startswith("ioc/node-a/")], node_b.received
    finally:
        for c in (central, node_a, node_b):
            c.close()


def test_edge_publisher_over_tls_with_node_credentials(secured, tmp_path):
    broker, security = secured
    central = Client(broker.tls_port, CENTRAL_USER, CENTRAL_PASSWORD, ca=security.ca_file)
    outbox = Outbox(tmp_path / "outbox.sqlite3")
    pub = MqttPublisher(
        outbox, broker.tls_url, unique_name("node-a-"), username="node-a", password=NODES["node-a"],
        ca_file=str(security.ca_file),
    )
    try:
        assert central.connack.wait(10) and not central.reason.is_failure
        central.c.subscribe("ioc/#", qos=1)
        wait_until(lambda: central.suback, 10, what="subscription")
        pub.start()
        outbox.put([OutboxMessage("ioc/node-a/cam-1/events/illegal_stopping", b"{}")])
        # Impersonation through the outbox: refused by the broker, kept (not silently dropped).
        outbox.put([OutboxMessage("ioc/node-b/cam-1/events/illegal_stopping", b"{}")])
        pub.notify()
        wait_until(lambda: "ioc/node-a/cam-1/events/illegal_stopping" in central.received, 15, what="over TLS")
        wait_until(lambda: pub.refused == 1, 10, what="the broker's refusal")
        assert outbox.backlog() == 1
        assert "ioc/node-b/cam-1/events/illegal_stopping" not in central.received
    finally:
        pub.stop()
        central.close()
        outbox.close()


def test_tls_without_the_ca_is_refused(secured):
    broker, _ = secured
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=unique_name("c-"), protocol=mqtt.MQTTv5)
    c.tls_set()  # system CAs only: our test CA is not among them
    c.username_pw_set("node-a", NODES["node-a"])
    with pytest.raises(Exception, match="(?i)certificate"):
        c.connect("127.0.0.1", broker.tls_port)


def test_central_asks_a_node_for_a_debug_recording_and_no_other_node_hears_it(secured):
    """The ACL file form (the dynamic-security form: tests/integration/test_debug_record_live.py)."""
    broker, _ = secured
    central = Client(broker.port, CENTRAL_USER, CENTRAL_PASSWORD)
    node_a = Client(broker.port, "node-a", NODES["node-a"])
    node_b = Client(broker.port, "node-b", NODES["node-b"])
    try:
        for c in (central, node_a, node_b):
            assert c.connack.wait(10) and not c.reason.is_failure
        node_a.c.subscribe("ioc/node-a/+/debug/record", qos=1)
        node_b.c.subscribe("ioc/#", qos=1)  # the ACL file grants the SUBSCRIBE; delivery is checked
        wait_until(lambda: node_a.suback and node_b.suback, 10, what="subscriptions")
        central.publish("ioc/node-a/cam-1/debug/record")
        node_b.publish("ioc/node-a/cam-2/debug/record")  # another node may not ask
        wait_until(lambda: "ioc/node-a/cam-1/debug/record" in node_a.received, 10, what="the request at node-a")
        central.publish("ioc/node-a/cam-3/events/red_light")  # central still may not publish events
        central.publish("ioc/node-a/cam-9/debug/record")  # a marker: what came before has arrived
        wait_until(lambda: "ioc/node-a/cam-9/debug/record" in node_a.received, 10, what="marker")
        assert node_a.received == ["ioc/node-a/cam-1/debug/record", "ioc/node-a/cam-9/debug/record"], node_a.received
        assert not [t for t in node_b.received if t.startswith("ioc/node-a/")], node_b.received
    finally:
        for c in (central, node_a, node_b):
            c.close()
