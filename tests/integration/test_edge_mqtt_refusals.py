"""The shared MQTT client (contract.mqtt) and the edge's users of it, on private Mosquittos:

- mqtts:// with a private CA file works, and without it the client never connects;
- an edge publish the ACL refuses (PUBACK "Not authorized") stays in the outbox, is not counted
  as delivered, and goes out on a retry once the ACL allows it;
- the signal feed's refused subscription (SUBACK >= 0x80; Mosquitto's ACL file never refuses a
  SUBSCRIBE, so that broker runs the dynamic-security plugin) is an error in the log and in status.
"""

from __future__ import annotations

import logging

import pytest

from central.broker_security import acl_text, make_accounts
from contract.mqtt import MqttClient, MqttSettings
from edge.outbox import Outbox, OutboxMessage
from edge.publisher import MqttPublisher
from edge.signal_feed import SignalFeed
from tests import mqtt_brokers
from tests.mqtt_brokers import (
    CENTRAL_USER,
    EVENT_TOPIC,
    NODE_PASSWORD,
    Listener,
)
from tests.services import unique_name, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


secured, refusing = mqtt_brokers.secured, mqtt_brokers.refusing  # fixtures


def test_mqtts_with_a_private_ca_file(secured):
    broker, security = secured
    assert broker.tls_url
    listener = Listener(broker.tls_url, security.ca_file)
    node = MqttClient(
        MqttSettings(broker.tls_url, unique_name("node-a-"), username="node-a", password=NODE_PASSWORD,
                     ca_file=str(security.ca_file)),
    ).start()
    fails: list[int] = []
    no_ca = MqttClient(
        MqttSettings(broker.tls_url, unique_name("node-a-"), username="node-a", password=NODE_PASSWORD),
        on_connect_fail=lambda *_a: fails.append(1),
    ).start()
    try:
        assert listener.subacks[0].ok
        wait_until(node.connected.is_set, 10, what="TLS connection with the private CA")
        assert node.status()["connack"] == "Success"
        ack = node.publish_wait(EVENT_TOPIC, b"{}", timeout=10)
        assert ack is not None and ack.ok, ack
        wait_until(lambda: EVENT_TOPIC in listener.topics, 10, what="message over TLS")
        # The same client, refused by the ACL: the Ack says so, `is_published()` alone would not.
        ack = node.publish_wait("ioc/node-b/cam-1/events/illegal_stopping", b"{}", timeout=10)
        assert ack is not None and not ack.ok and ack.reason == "Not authorized"
        assert node.status()["publishes_refused"] == 1
        # Without the CA the server certificate is not trusted: the client keeps trying, never connects.
        wait_until(lambda: fails, 10, what="failed TLS handshake")
        assert not no_ca.connected.is_set() and no_ca.last_connack is None
    finally:
        for c in (node, no_ca):
            c.stop()
        listener.close()


def test_edge_publish_refused_by_the_acl_stays_in_the_outbox_and_is_sent_once_allowed(secured, tmp_path, caplog):
    broker, security = secured
    security.acl_file.write_text(f"user {CENTRAL_USER}\ntopic read ioc/#\n", encoding="utf-8")  # no node may write
    broker.restart()
    listener = Listener(broker.url)
    outbox = Outbox(tmp_path / "outbox.sqlite3")
    pub = MqttPublisher(outbox, MqttSettings(broker.url, unique_name("node-a-"), username="node-a", password=NODE_PASSWORD))
    caplog.set_level(logging.ERROR, logger="edge.publisher")
    try:
        pub.start()
        outbox.put([OutboxMessage(EVENT_TOPIC, b"{}")])
        pub.notify()
        wait_until(lambda: pub.refused >= 1, 15, what="the broker's refusal")
        assert outbox.backlog() == 1 and pub.acked == 0
        wait_until(lambda: pub.status()["refused_pending"] == 1, 5, what="refusal in status")
        assert EVENT_TOPIC not in listener.topics
        assert any("refused" in r.getMessage() and "Not authorized" in r.getMessage() for r in caplog.records)
        # The deployment's ACL (a node writes under its own id) arrives: the kept message goes out.
        security.acl_file.write_text(acl_text("ioc", make_accounts(["node-a"])), encoding="utf-8")
        broker.restart()
        wait_until(lambda: EVENT_TOPIC in listener.topics, 40, what="the refused message, retried")
        wait_until(lambda: outbox.backlog() == 0, 10, what="outbox emptied on the successful PUBACK")
        assert pub.acked == 1 and pub.status()["refused_pending"] == 0
    finally:
        pub.stop()
        listener.close()
        outbox.close()


def test_signal_feed_refused_subscription_is_an_error_in_log_and_status(refusing, caplog):
    caplog.set_level(logging.ERROR, logger="edge.signal_feed")
    feed = SignalFeed(
        MqttSettings(refusing.url, unique_name("feed-"), username="node-a", password=NODE_PASSWORD), None, "ioc", "node-a"
    )
    feed.start()
    try:
        wait_until(lambda: feed.status()["subscriptions_refused"], 10, what="signal feed's refused SUBACK")
        assert feed.status()["connected"]
        assert feed.status()["subscriptions_refused"] == {"ioc/node-a/+/signal/+": "Not authorized"}
        assert any("subscription refused" in r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR)
    finally:
        feed.stop()
