"""Edge MQTT QoS 1 -> a real 3-server NATS cluster (JetStream, R3) -> two competing JetStream
ingesters -> the database, through faults: one server killed, another after the first is back,
then the whole cluster restarted. Every event is stored exactly once (rows counted by event id)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from central.config import CentralConfig
from central.db import EventRow, make_engine, make_session_factory
from central.ingest_jetstream import JetStreamIngester, JetStreamSettings
from central.ingester import MessageProcessor
from contract.mqtt import MqttSettings
from contract.topics import event_topic
from edge.outbox import Outbox, OutboxMessage
from edge.publisher import MqttPublisher
from tests.nats_cluster import NatsCluster
from tests.services import make_event, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


class ClusterNode:
    """A simulated edge node with the node's own outbox and publisher (MQTT 3.1.1, QoS 1, the
    cluster's three URLs, each node starting from a different one): an event counts as sent when it
    is in the outbox; the publisher delivers it, failing over when its server goes away."""

    def __init__(self, node: str, urls: list[str], state: Path) -> None:
        self.node = node
        self.outbox = Outbox(state / f"{node}.sqlite3")
        settings = MqttSettings(urls[0], node, failover_urls=tuple(urls[1:]), protocol="3.1.1", keepalive_s=5)
        self.publisher = MqttPublisher(self.outbox, settings)
        self.publisher.start()
        self.sent: list[str] = []

    def send(self, n: int) -> None:
        for _ in range(n):
            e = make_event(node=self.node, camera="cam-1")
            self.outbox.put([OutboxMessage(event_topic("ioc", e.node, e.camera, e.type.value), e.to_json().encode())])
            self.sent.append(e.id)
            self.publisher.notify()
            time.sleep(0.01)

    def close(self) -> None:
        self.publisher.stop()
        self.outbox.close()


def _rows(engine) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    with engine.connect() as c:
        return c.execute(select(func.count(), func.count(func.distinct(EventRow.id)))).one()


@pytest.mark.xfail(
    raises=AssertionError,
    strict=False,
    reason="known gap (docs/deploy.md): nats-server 2.9's MQTT listener PUBACKs a QoS 1 message before a JetStream "
    "stream holds it; while the stream has no leader (a server killed, the cluster restarted) such an acknowledged "
    "event is lost: 1 run in 5 here lost 40 of 240",
)
def test_cluster_faults_lose_nothing_store_nothing_twice(central_database_url: str, tmp_path: Path) -> None:
    cluster = NatsCluster(tmp_path / "nats")
    cluster.start()
    engine = make_engine(central_database_url)
    cfg = CentralConfig.model_validate({"database_url": central_database_url, "evidence_dir": str(tmp_path / "ev")})

    def ingester() -> JetStreamIngester:
        proc = MessageProcessor(
            make_session_factory(engine),
            dialect_name=engine.dialect.name,
            evidence_dir=tmp_path / "ev",
            topic_prefix="ioc",
            config=cfg,
        )
        return JetStreamIngester(proc, JetStreamSettings(servers=cluster.servers, batch_max=50)).start()

    ingesters = [ingester(), ingester()]  # competing consumers of one durable
    nodes = [ClusterNode(f"node-{k}", cluster.mqtt_urls[k:] + cluster.mqtt_urls[:k], tmp_path) for k in range(3)]
    try:
        for i in ingesters:
            assert i.wait_ready(30), f"ingester not ready: {i.error}"

        def burst(n: int) -> None:
            threads = [threading.Thread(target=nd.send, args=(n,)) for nd in nodes]
            for t in threads:
                t.start()
            for t in threads:
                t.join(60)

        burst(20)
        print("burst done", time.monotonic(), flush=True)
        cluster.kill("n1")
        burst(20)
        print("burst done", time.monotonic(), flush=True)
        cluster.start("n1")
        cluster.kill("n2")
        burst(20)
        print("burst done", time.monotonic(), flush=True)
        cluster.start("n2")
        cluster.stop()  # the whole cluster restarts; the streams are on disk
        cluster.start()
        burst(20)
        print("burst done", time.monotonic(), flush=True)
        sent = {e for nd in nodes for e in nd.sent}
        assert len(sent) == 3 * 80
        wait_until(lambda: all(nd.outbox.backlog() == 0 for nd in nodes), timeout=60, what="every outbox drained")
        try:
            wait_until(lambda: _rows(engine)[1] >= len(sent), timeout=45, what=f"{len(sent)} events stored")
        except AssertionError as e:
            raise AssertionError(
                f"{e}: rows {_rows(engine)}, ingesters {[vars(i.counters) for i in ingesters]}, "
                f"errors {[i.error for i in ingesters]}"
            ) from None
        total, distinct = _rows(engine)
        assert distinct == len(sent), "events lost"
        assert total == distinct, "an event stored twice"
        assert all(i.error is None for i in ingesters)
        # The counters move just after the commit the rows show: wait for them too.
        wait_until(lambda: sum(i.counters.stored for i in ingesters) >= len(sent), timeout=10, what="counters")
        assert sum(i.counters.stored for i in ingesters) == len(sent), [vars(i.counters) for i in ingesters]
    finally:
        for nd in nodes:
            nd.close()
        for i in ingesters:
            i.stop()
        cluster.stop()
        engine.dispose()
