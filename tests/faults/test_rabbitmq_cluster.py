"""Edge MQTT QoS 1 -> a real 3-node RabbitMQ cluster (MQTT plugin -> amq.topic -> a quorum queue
on 3 nodes) -> two competing ingesters per database (`ioc-central`'s own wiring: `Ingester` +
`RabbitMqEventSource`) -> SQLite and PostgreSQL, under a steady load of simulated edge nodes
(each the node's own outbox and publisher, failing over across the three MQTT ports), through
faults: one broker node killed, another after the first is back, then the whole cluster stopped
and started. Every event is stored exactly once; delivery resumes within seconds of each fault.

Both databases run at once, each with its own topic prefix, accounts (the generated topic
permissions) and queue, so both see the same faults. Throughput and publish->stored latency per
phase are printed (run with -s) and, with IOC_BENCH_OUT=FILE, written as JSON for
docs/benchmarks.md. IOC_RABBIT_RATE: events/s per simulated node (default 10).

The first test is the reason RabbitMQ was chosen over NATS: the MQTT plugin PUBACKs a QoS 1
publish only once the queue has it. A queue whose only replica is on a stopped node holds a
publish unacknowledged until that node is back; a topic no queue is bound to is acknowledged at
once (and dropped): the events queue must exist before nodes publish.
"""

from __future__ import annotations

import io
import json
import logging
import os
import socket
import statistics
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pika
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import func, select

from central.config import CentralConfig
from central.db import DeadLetterRow, EventRow, make_engine, migrate
from central.ingest_rabbitmq import RabbitMqEventSource, start_event_source
from central.ingester import Ingester, Outcome
from central.rabbitmq_cluster import RabbitUsers, definitions
from contract.mqtt import MqttSettings
from contract.topics import event_topic
from edge.outbox import Outbox, OutboxMessage
from edge.publisher import MqttPublisher
from tests.rabbitmq_cluster import RabbitCluster, start_cluster
from tests.services import make_event, wait_until

pytestmark = [pytest.mark.integration]
logging.getLogger("pika").setLevel(logging.CRITICAL)  # each killed node: pages of connection errors pika logs itself

RATE = float(os.environ.get("IOC_RABBIT_RATE", "10"))  # events/s per simulated node
PHASE_S = 6.0  # load before each fault and after each recovery
NODES_PER_DB = 3
PASSWORD = "node-secret"
CENTRAL_PASSWORD = "central-secret"
PIPELINES = {"sqlite": "ioc", "postgresql": "iocpg"}  # database -> topic prefix (its own queue and accounts)


def _users(db: str) -> RabbitUsers:
    nodes = {f"{db[:2]}-node-{k}": PASSWORD for k in range(NODES_PER_DB)}
    return RabbitUsers(nodes, central_password=CENTRAL_PASSWORD, central_user=f"central{db[:2]}")


def _definitions() -> dict[str, Any]:
    doc: dict[str, Any] = {}
    for db, prefix in PIPELINES.items():
        part = definitions(_users(db), prefix, queue=f"{prefix}.events", with_queue=False)
        for key, rows in part.items():
            doc.setdefault(key, [])
            doc[key] += [r for r in rows if r not in doc[key]]
    return doc


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RabbitCluster]:
    c = start_cluster(tmp_path_factory.mktemp("rabbit"), 3, _definitions())
    try:
        yield c
    finally:
        c.stop()
        c.__exit__()


# ---------------------------------------------------------------------------------- PUBACK


class _Probe:
    """A bare MQTT 3.1.1 client of one node account: which QoS 1 publishes got their PUBACK."""

    def __init__(self, url: str, user: str) -> None:
        self.acked: set[int] = set()
        self.connected = threading.Event()
        self.c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=user, protocol=mqtt.MQTTv311)
        self.c.username_pw_set(user, PASSWORD)
        self.c.on_connect = lambda *_a: self.connected.set()
        self.c.on_publish = lambda _c, _u, mid, _rc, _p: self.acked.add(mid)
        self.c.reconnect_delay_set(1, 1)
        host, port = url.removeprefix("mqtt://").split(":")
        self.c.connect(host, int(port), 10)
        self.c.loop_start()
        assert self.connected.wait(10)

    def publish(self, topic: str) -> int:
        return int(self.c.publish(topic, make_event().to_json().encode(), qos=1).mid)

    def reconnect(self) -> None:
        """Drop the connection under paho (as a broker node going away does): it reconnects and
        sends every unacknowledged QoS 1 message again."""
        self.connected.clear()
        sock = self.c.socket()
        if sock is not None:
            sock.shutdown(socket.SHUT_RDWR)
        assert self.connected.wait(15), "not reconnected"

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()


def test_puback_waits_for_the_quorum_queue(cluster: RabbitCluster) -> None:
    user = next(iter(_users("sqlite").nodes))
    central = cluster.amqp_urls[1].replace("amqp://", f"amqp://centralsq:{CENTRAL_PASSWORD}@")
    admin = pika.BlockingConnection(pika.URLParameters(central))
    ch = admin.channel()
    # One replica, on node 2 (the node this connection is on): stopping node 2 leaves the queue
    # without its leader while nodes 1 and 3 (a majority) go on serving MQTT.
    # (The leader goes on the declaring client's node: queue_leader_locator's default, client-local.)
    ch.queue_declare("ioc.events", durable=True, arguments={"x-queue-type": "quorum", "x-quorum-initial-group-size": 1})
    ch.queue_bind("ioc.events", "amq.topic", routing_key=f"ioc.{user}.probe.events.*")
    admin.close()
    # Measured: a queue member killed within a second of its declaration may not be in Ra's
    # registry on disk yet, and does not come back (a single replica here; the events queue has 3).
    time.sleep(5)

    def depth() -> int:
        conn = pika.BlockingConnection(pika.URLParameters(central))
        try:
            return int(conn.channel().queue_declare("ioc.events", passive=True).method.message_count)
        finally:
            conn.close()

    probe = _Probe(cluster.mqtt_urls[0], user)
    try:
        unrouted = probe.publish(f"ioc/{user}/nobody/events/illegal_stopping")
        wait_until(lambda: unrouted in probe.acked, timeout=10, what="PUBACK of a publish no queue takes")
        held = probe.publish(f"ioc/{user}/probe/events/illegal_stopping")
        wait_until(lambda: held in probe.acked, timeout=10, what="PUBACK while the queue is up")
        cluster.kill(1)
        time.sleep(2)  # the others notice
        pending = probe.publish(f"ioc/{user}/probe/events/illegal_stopping")
        time.sleep(8)
        assert pending not in probe.acked, "PUBACK although the queue's only replica is down"
        cluster.start(1)
        # The queue is back with what it acknowledged (its count reads 0 until its replica has
        # recovered). RabbitMQ 3.10 does not hand the pending publish to it (measured: no PUBACK in
        # 60 s, not in the queue): it stays unacknowledged, as the edge's outbox keeps it. On the
        # next connection the client sends it again, and now it is confirmed.
        wait_until(lambda: depth() >= 1, timeout=30, interval=1, what="the acknowledged message in the queue again")
        time.sleep(2)
        assert pending not in probe.acked and depth() == 1
        probe.reconnect()
        wait_until(lambda: pending in probe.acked, timeout=30, what="PUBACK of the publish sent again")
        assert depth() == 2  # held + pending; the unrouted one was acknowledged and dropped
    finally:
        probe.close()
        if cluster.nodes[1].name not in cluster.procs:
            cluster.start(1)
    admin = pika.BlockingConnection(pika.URLParameters(central))
    admin.channel().queue_delete("ioc.events")
    admin.close()


# ---------------------------------------------------------------------------------- the load


class SimNode:
    """A simulated edge node at a steady rate: the node's outbox and publisher (MQTT 3.1.1, QoS 1,
    its own account, client id = node id, the cluster's three URLs starting from its own)."""

    def __init__(self, node: str, prefix: str, urls: list[str], state: Path) -> None:
        self.node, self.prefix = node, prefix
        self.outbox = Outbox(state / f"{node}.sqlite3")
        settings = MqttSettings(
            urls[0], node, username=node, password=PASSWORD, failover_urls=tuple(urls[1:]), protocol="3.1.1",
            keepalive_s=5,
        )  # fmt: skip
        self.publisher = MqttPublisher(self.outbox, settings)
        self.publisher.start()
        self.put_at: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        period = 1.0 / RATE
        due = time.monotonic()
        while not self._stop.is_set():
            e = make_event(node=self.node, camera="cam-1")
            self.outbox.put([OutboxMessage(event_topic(self.prefix, e.node, e.camera, e.type.value), e.to_json().encode())])
            self.put_at[e.id] = time.time()
            self.publisher.notify()
            due += period
            self._stop.wait(max(0.0, due - time.monotonic()))

    def stop_load(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def close(self) -> None:
        self.stop_load()
        self.publisher.stop()
        self.outbox.close()


@dataclass
class Pipeline:
    db: str
    url: str
    prefix: str
    nodes: list[SimNode] = field(default_factory=list)
    ingesters: list[Ingester] = field(default_factory=list)
    sources: list[RabbitMqEventSource] = field(default_factory=list)
    stored_at: dict[str, float] = field(default_factory=dict)
    stored_twice: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def on_outcome(self, outcome: Outcome) -> None:
        if outcome.kind == "stored" and outcome.event is not None:
            now = time.time()
            with self.lock:
                if outcome.event.id in self.stored_at:
                    self.stored_twice.append(outcome.event.id)
                self.stored_at.setdefault(outcome.event.id, now)

    def put_at(self) -> dict[str, float]:
        return {k: v for n in self.nodes for k, v in n.put_at.items()}


def _pipeline(db: str, url: str, cluster: RabbitCluster, tmp: Path) -> Pipeline:
    prefix = PIPELINES[db]
    users = _users(db)
    p = Pipeline(db, url, prefix)
    for k in range(2):  # two ingesters, each starting from another node
        urls = cluster.mqtt_urls[k:] + cluster.mqtt_urls[:k]
        cfg = CentralConfig.model_validate({
            "database_url": url,
            "evidence_dir": str(tmp / f"ev-{db}"),
            "mqtt": {"url": urls[0], "failover_urls": urls[1:], "protocol": "3.1.1", "share_group": None,
                     "topic_prefix": prefix, "client_id": f"{users.central_user}-{k}", "username": users.central_user,
                     "password": CENTRAL_PASSWORD, "keepalive_s": 5},
            "rabbitmq": {"servers": cluster.amqp_urls[k:] + cluster.amqp_urls[:k], "user": users.central_user,
                         "password": CENTRAL_PASSWORD, "queue": f"{prefix}.events", "prefetch": 200, "heartbeat_s": 5},
        })  # fmt: skip
        ing = Ingester(cfg, client_id=f"{users.central_user}-{k}", console=io.StringIO(), on_outcome=p.on_outcome,
                       reconnect_max_s=2)  # fmt: skip
        ing.start()
        p.ingesters.append(ing)
        p.sources.append(start_event_source(cfg, ing))
    for s in p.sources:
        assert s.wait_ready(60), f"{db}: not consuming: {s.error}"
    for k, node in enumerate(sorted(users.nodes)):
        urls = cluster.mqtt_urls[k % 3:] + cluster.mqtt_urls[: k % 3]
        p.nodes.append(SimNode(node, prefix, urls, tmp))
    return p


def _rows(engine) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    with engine.connect() as c:
        return tuple(c.execute(select(func.count(), func.count(func.distinct(EventRow.id)))).one())  # type: ignore[return-value]


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def _report(p: Pipeline, phases: list[tuple[str, float, float]], faults: dict[str, float]) -> dict[str, Any]:
    put = p.put_at()
    out: dict[str, Any] = {"db": p.db, "phases": [], "resume_s": {}}
    for name, t0, t1 in phases:
        ids = [i for i, t in put.items() if t0 <= t < t1]
        lat = sorted(p.stored_at[i] - put[i] for i in ids if i in p.stored_at)
        stored_in = sum(1 for t in p.stored_at.values() if t0 <= t < t1)
        out["phases"].append({
            "phase": name, "seconds": round(t1 - t0, 1), "published": len(ids),
            "stored_per_s": round(stored_in / (t1 - t0), 1) if t1 > t0 else 0,
            "p50_ms": round(1000 * _pct(lat, 50)) if lat else None,
            "p95_ms": round(1000 * _pct(lat, 95)) if lat else None,
            "max_ms": round(1000 * max(lat)) if lat else None,
        })  # fmt: skip
    for name, t in faults.items():
        # Delivery resumes: the first event published after the fault (or after the cluster is
        # back) that is stored, counted from that moment.
        after = [p.stored_at[i] - t for i, tp in put.items() if tp >= t and i in p.stored_at]
        out["resume_s"][name] = round(min(after), 2) if after else None
    return out


def _print(reports: list[dict[str, Any]]) -> None:
    for r in reports:
        print(f"\n{r['db']}: phase | s | published | stored/s | p50 ms | p95 ms | max ms")
        for ph in r["phases"]:
            print(f"  {ph['phase']} | {ph['seconds']} | {ph['published']} | {ph['stored_per_s']} | "
                  f"{ph['p50_ms']} | {ph['p95_ms']} | {ph['max_ms']}")  # fmt: skip
        print(f"  resume after: {r['resume_s']}")


@pytest.mark.timeout(900)  # measured 4-4.5 min (the 3.10 whole-cluster restart alone ~2 min); 300 s was hit in a CI run
def test_cluster_faults_lose_nothing_store_nothing_twice(
    cluster: RabbitCluster, tmp_path: Path, fresh_postgres_url: str
) -> None:
    # A PostgreSQL database of its own: the session's one holds earlier tests' events.
    urls = {"sqlite": f"sqlite:///{tmp_path / 'central.db'}", "postgresql": fresh_postgres_url}
    for url in urls.values():
        migrate(url)
    pipelines: list[Pipeline] = []
    phases: list[tuple[str, float, float]] = []
    faults: dict[str, float] = {}
    try:
        pipelines = [_pipeline(db, url, cluster, tmp_path) for db, url in urls.items()]
        nodes = [n for p in pipelines for n in p.nodes]
        for n in nodes:
            n.start()

        def phase(name: str, seconds: float | None = None) -> None:
            t0 = time.time()
            if seconds:
                time.sleep(seconds)
            phases.append((name, t0, time.time()))

        phase("before", PHASE_S)
        t = time.time()
        cluster.kill(0)
        faults["node 1 killed"] = t
        time.sleep(PHASE_S)
        cluster.start(0)
        phases.append(("node 1 down (killed -> back)", t, time.time()))
        phase("after node 1 is back", PHASE_S)
        t = time.time()
        cluster.kill(1)
        faults["node 2 killed"] = t
        time.sleep(PHASE_S)
        cluster.start(1)
        phases.append(("node 2 down (killed -> back)", t, time.time()))
        phase("after node 2 is back", PHASE_S)
        t = time.time()
        cluster.restart_all()
        faults["whole cluster back"] = time.time()
        phases.append(("whole cluster restart (stop -> all listening)", t, time.time()))
        phase("after the restart", PHASE_S)
        for n in nodes:
            n.stop_load()
        t_end = time.time()
        wait_until(lambda: all(n.outbox.backlog() == 0 for n in nodes), timeout=90, what="every outbox drained")
        for p in pipelines:
            sent = p.put_at()
            engine = make_engine(p.url)
            try:
                wait_until(lambda p=p, sent=sent: len(p.stored_at) >= len(sent), timeout=60,
                           what=f"{p.db}: {len(sent)} events stored")  # fmt: skip
            except AssertionError as e:
                raise AssertionError(
                    f"{e}: {p.db} rows {_rows(engine)}, stored {len(p.stored_at)}, "
                    f"ingesters {[i.counters.snapshot() for i in p.ingesters]}, sources {[s.error for s in p.sources]}"
                ) from None
            total, distinct = _rows(engine)
            with engine.connect() as c:
                ids = set(c.execute(select(EventRow.id)).scalars())
                dead = c.execute(select(func.count()).select_from(DeadLetterRow)).scalar_one()
            engine.dispose()
            assert ids == set(sent), f"{p.db}: {len(set(sent) - ids)} events lost, {len(ids - set(sent))} unknown"
            assert total == distinct == len(sent)
            assert not p.stored_twice, f"{p.db}: reported stored twice: {p.stored_twice[:5]}"
            assert sum(i.counters.stored for i in p.ingesters) == len(sent)
            assert dead == 0
        phases.append(("drain (load stopped -> all stored)", t_end, time.time()))
        reports = [_report(p, phases, faults) for p in pipelines]
        _print(reports)
        if os.environ.get("IOC_BENCH_OUT"):
            Path(os.environ["IOC_BENCH_OUT"]).write_text(json.dumps(
                {"rate_per_node": RATE, "nodes": len(nodes), "reports": reports}, indent=1))  # fmt: skip
        # A killed node: resumed in 0.1-0.5 s. The whole cluster back: 10-16 s on a quiet box, 25-26 s
        # with other suites running beside it (the edges' reconnect backoff, the queue electing its
        # leader): the bound says "resumes by itself", the seconds go to docs/benchmarks.md.
        bounds = {"whole cluster back": 60.0}
        for r in reports:
            for name, resumed in r["resume_s"].items():
                bound = bounds.get(name, 20.0)
                assert resumed is not None and resumed < bound, f"{r['db']}: delivery resumed {resumed} s after {name}"
    finally:
        for p in pipelines:
            for n in p.nodes:
                n.close()
            for s in p.sources:
                s.stop()
            for i in p.ingesters:
                i.stop()
