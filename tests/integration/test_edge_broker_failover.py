"""An edge node fails over between a broker cluster's nodes (mqtt.failover_urls): with one node
killed under load it goes on publishing from its outbox to the next, and nothing is lost.

Two real Mosquitto processes stand for two cluster nodes (Mosquitto does not cluster; the
collector listens on both, as a cluster's shared stream would). The 3-node NATS cluster test
(tests/faults/test_broker_cluster.py) runs the same publisher against a replicated stream."""

from __future__ import annotations

from pathlib import Path

import pytest

from contract.mqtt import MqttSettings
from edge.config import MqttConfig
from edge.local_broker import LocalMosquitto
from edge.outbox import Outbox, OutboxMessage
from edge.publisher import MqttPublisher
from tests.integration.test_edge_outbox_mqtt import Collector
from tests.services import unique_name, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
def test_publisher_moves_to_the_next_broker_when_one_dies(tmp_path: Path, protocol: str) -> None:
    prefix = unique_name("edge")
    with LocalMosquitto(state_dir=tmp_path / "a") as a, LocalMosquitto(state_dir=tmp_path / "b") as b:
        got_a, got_b = Collector(a.port, f"{prefix}/#"), Collector(b.port, f"{prefix}/#")
        outbox = Outbox(tmp_path / "outbox.sqlite3")
        settings = MqttSettings(a.url, unique_name("node-"), failover_urls=(b.url,), protocol=protocol)
        publisher = MqttPublisher(outbox, settings)
        publisher.start()
        try:
            assert publisher.connected.wait(10)
            assert publisher.mqtt.broker == f"127.0.0.1:{a.port}"
            outbox.put([OutboxMessage(f"{prefix}/n/c/events/x", f"{i}".encode()) for i in range(50)])
            publisher.notify()
            wait_until(lambda: outbox.backlog() == 0, 15, what="first batch acknowledged by a")

            a.kill()  # the node it is connected to dies; the next events must go to b
            outbox.put([OutboxMessage(f"{prefix}/n/c/events/x", f"{i}".encode()) for i in range(50, 150)])
            publisher.notify()
            wait_until(lambda: outbox.backlog() == 0, 40, what="backlog delivered to b")
            assert publisher.mqtt.broker == f"127.0.0.1:{b.port}"
            wait_until(lambda: len(got_b.received) >= 100, 20, what="b got the rest")
        finally:
            publisher.stop()
            got_a.close()
            got_b.close()
            outbox.close()
    seen = {int(p) for p in got_a.received} | {int(p) for p in got_b.received}
    assert seen == set(range(150)), f"lost: {sorted(set(range(150)) - seen)[:10]}"
    assert {int(p) for p in got_b.received} >= set(range(50, 150))


def test_a_node_config_names_the_cluster(tmp_path: Path) -> None:
    cfg = MqttConfig.model_validate(
        {
            "url": "mqtt://10.0.0.1:1883",
            "failover_urls": ["mqtt://10.0.0.2:1883", "mqtt://10.0.0.3"],
            "protocol": "3.1.1",
        }
    )
    s = cfg.client_settings("node-1", "node-1")
    assert s.brokers == [("10.0.0.1", 1883), ("10.0.0.2", 1883), ("10.0.0.3", 1883)] and s.protocol == "3.1.1"
    with pytest.raises(ValueError, match="scheme"):
        MqttConfig.model_validate({"url": "mqtts://10.0.0.1", "failover_urls": ["mqtt://10.0.0.2"]})
