"""The edge outbox and publisher against a real Mosquitto: nothing lost across a broker outage."""

from __future__ import annotations

import threading
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from edge.local_broker import LocalMosquitto
from edge.outbox import Outbox, OutboxMessage
from edge.publisher import MqttPublisher
from tests.services import unique_name, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]


class Collector:
    """A persistent-session subscriber (as central is) that records every payload it receives."""

    def __init__(self, url_port: int, topic: str) -> None:
        self.received: list[bytes] = []
        self.lock = threading.Lock()
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=unique_name("collector-"), protocol=mqtt.MQTTv5
        )
        self.client.on_message = self._on_message
        self.client.on_connect = lambda c, *_: c.subscribe(topic, qos=1)
        props = mqtt.Properties(mqtt.PacketTypes.CONNECT)
        props.SessionExpiryInterval = 600
        self.client.connect("127.0.0.1", url_port, clean_start=False, properties=props)
        self.client.loop_start()

    def _on_message(self, client, userdata, msg) -> None:
        with self.lock:
            self.received.append(msg.payload)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def test_messages_queued_while_broker_is_down_arrive_once_in_order(tmp_path: Path):
    prefix = unique_name("edge")
    with LocalMosquitto(state_dir=tmp_path / "broker") as broker:
        collector = Collector(broker.port, f"{prefix}/#")
        outbox = Outbox(tmp_path / "outbox.sqlite3")
        publisher = MqttPublisher(outbox, broker.url, unique_name("node-"))
        publisher.start()
        try:
            assert publisher.connected.wait(10)
            outbox.put([OutboxMessage(f"{prefix}/n/c/events/x", f"{i}".encode()) for i in range(50)])
            publisher.notify()
            wait_until(lambda: outbox.backlog() == 0, 15, what="first batch acknowledged")

            broker.stop()  # the broker goes away; the node keeps producing events
            wait_until(lambda: not publisher.connected.is_set(), 10, what="publisher notices the outage")
            outbox.put([OutboxMessage(f"{prefix}/n/c/events/x", f"{i}".encode()) for i in range(50, 150)])
            publisher.notify()
            assert outbox.backlog() == 100  # kept on disk, not dropped

            broker.start()
            wait_until(lambda: outbox.backlog() == 0, 40, what="backlog delivered after the broker returned")
            wait_until(lambda: len(collector.received) >= 150, 20, what="collector got everything")
        finally:
            publisher.stop()
            collector.close()
            outbox.close()
    got = [int(p) for p in collector.received]
    assert sorted(set(got)) == list(range(150)), "lost messages"
    # QoS 1 allows a redelivery after a reconnect; central dedupes by event id. Order per camera holds.
    firsts = sorted(set(got), key=got.index)
    assert firsts == list(range(150))


def test_outbox_survives_a_restart_of_the_node(tmp_path: Path):
    """Messages put before a crash (nothing published) are delivered by the next process."""
    prefix = unique_name("edge")
    path = tmp_path / "outbox.sqlite3"
    box = Outbox(path)
    box.put([OutboxMessage(f"{prefix}/n/c/events/x", f"{i}".encode()) for i in range(20)])
    box.close()
    with LocalMosquitto(state_dir=tmp_path / "broker") as broker:
        collector = Collector(broker.port, f"{prefix}/#")
        outbox = Outbox(path)
        publisher = MqttPublisher(outbox, broker.url, unique_name("node-"))
        publisher.start()
        try:
            wait_until(lambda: outbox.backlog() == 0, 15, what="old outbox drained")
            wait_until(lambda: len(collector.received) >= 20, 10, what="collector got everything")
        finally:
            publisher.stop()
            collector.close()
            outbox.close()
    assert sorted(int(p) for p in collector.received) == list(range(20))


def test_messages_nobody_subscribed_to_are_kept_until_central_is_back(tmp_path: Path):
    """A restarted broker may have lost central's (shared) subscription: it then acks with 'no
    matching subscribers' and drops the message. The outbox keeps such messages and sends them
    again until someone receives them."""
    prefix = unique_name("edge")
    with LocalMosquitto(state_dir=tmp_path / "broker") as broker:
        outbox = Outbox(tmp_path / "outbox.sqlite3")
        publisher = MqttPublisher(outbox, broker.url, unique_name("node-"))
        publisher.start()
        collector = None
        try:
            assert publisher.connected.wait(10)
            outbox.put([OutboxMessage(f"{prefix}/n/c/events/x", f"{i}".encode()) for i in range(10)])
            publisher.notify()
            wait_until(lambda: publisher.unheard >= 10, 10, what="PUBACKs with 'no matching subscribers'")
            assert outbox.backlog() == 10  # kept, not dropped
            collector = Collector(broker.port, f"{prefix}/#")  # central comes back
            wait_until(lambda: outbox.backlog() == 0, 60, what="delivered once a subscriber is there")
            wait_until(lambda: len(set(collector.received)) == 10, 10, what="all ten received")
        finally:
            publisher.stop()
            if collector:
                collector.close()
            outbox.close()
    assert sorted({int(p) for p in collector.received}) == list(range(10))
