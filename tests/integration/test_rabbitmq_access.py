"""`ioc-central ingest` on a real RabbitMQ broker with the generated accounts
(`central.rabbitmq_cluster.definitions`), and the attacks of a stolen edge box on it.

Central consumes the events quorum queue it declares (rabbitmq: in central.yaml), which carries
node status, camera health and evidence too: two ingesters divide them, each message stored once,
and central's MQTT session subscribes to nothing; node A publishes through its own outbox and
publisher. Then node A's
credentials try what docs/security.md says they cannot: publish as node B (MQTT, with its own
or B's client id, and over AMQP), read other nodes' topics, and consume, delete or tap the events
queue. Each attempt is refused and nothing of it reaches the database.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import paho.mqtt.client as mqtt
import pika
import pika.exceptions
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import create_engine, select

from central.config import CentralConfig
from central.db import CameraHealthRow, DeadLetterRow, EventRow, EvidenceRow, NodeStatusRow, migrate
from central.evidence import relative_path, sha256_hex
from central.ingest_rabbitmq import RabbitMqEventSource, start_event_source
from central.ingester import Ingester
from central.rabbitmq_cluster import RabbitUsers, definitions
from contract.mqtt import MqttSettings
from contract.status import CameraHealth, NodeStatus
from contract.topics import camera_health_topic, event_topic, evidence_topic, node_status_topic
from edge.outbox import Outbox, OutboxMessage
from edge.publisher import MqttPublisher
from tests.integration.test_central_cli import _env
from tests.rabbitmq_cluster import RabbitCluster, start_cluster
from tests.services import fake_jpeg, make_event, wait_until
from tests.support import REPO_ROOT

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

STATUS_NODES = [f"node-s{i}" for i in range(6)]  # the nodes of the status test
USERS = RabbitUsers(
    {"node-a": "secret-a", "node-b": "secret-b", **{n: f"secret-{n}" for n in STATUS_NODES}},
    central_password="secret-central",
)


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RabbitCluster]:
    # One node is enough for access control; the queue (1 replica here) is declared by central.
    c = start_cluster(tmp_path_factory.mktemp("rabbit"), 1, definitions(USERS, "ioc", with_queue=False))
    try:
        yield c
    finally:
        c.stop()
        c.__exit__()


class Client:
    """A bare MQTT 3.1.1 client: what the broker answered (CONNACK, PUBACK, SUBACK), what it sent."""

    def __init__(self, broker: RabbitCluster, user: str, password: str, client_id: str) -> None:
        self.connected = threading.Event()
        self.disconnected = threading.Event()
        self.acked: set[int] = set()
        self.granted: dict[int, list[int]] = {}
        self.received: list[str] = []
        self.c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv311)
        self.c.username_pw_set(user, password)
        self.c.on_connect = lambda _c, _u, _f, rc, _p: self.connected.set() if not rc.is_failure else None
        self.c.on_disconnect = lambda *_a: self.disconnected.set()
        self.c.on_publish = lambda _c, _u, mid, _rc, _p: self.acked.add(mid)
        self.c.on_subscribe = lambda _c, _u, mid, rcs, _p: self.granted.__setitem__(mid, [int(r.value) for r in rcs])
        self.c.on_message = lambda _c, _u, m: self.received.append(m.topic)
        self.c.reconnect_delay_set(60, 60)  # one connection: a refusal is not papered over by a reconnect
        self.c.connect("127.0.0.1", broker.nodes[0].mqtt_port, 10)
        self.c.loop_start()
        assert self.connected.wait(10), f"{user} could not connect"

    def publish(self, topic: str, payload: bytes) -> int:
        return int(self.c.publish(topic, payload, qos=1).mid)

    def subscribe(self, topic: str) -> int:
        return int(self.c.subscribe(topic, qos=1)[1])

    def close(self) -> None:
        self.c.loop_stop()
        self.c.disconnect()


def _amqp(broker: RabbitCluster, user: str, password: str) -> pika.BlockingConnection:
    return pika.BlockingConnection(
        pika.ConnectionParameters("127.0.0.1", broker.nodes[0].amqp_port, credentials=pika.PlainCredentials(user, password))
    )


def test_central_ingests_from_the_queue_and_a_node_cannot_go_beyond_its_own_topics(
    broker: RabbitCluster, tmp_path: Path
) -> None:
    db = tmp_path / "central.db"
    cfg = tmp_path / "central.yaml"
    (tmp_path / "central.password").write_text("secret-central\n")
    node = broker.nodes[0]
    cfg.write_text(
        f"database_url: sqlite:///{db}\n"
        f"mqtt: {{url: 'mqtt://127.0.0.1:{node.mqtt_port}', protocol: '3.1.1', share_group: null, client_id: central-1,"
        f" username: central, password_file: {tmp_path / 'central.password'}}}\n"
        f"rabbitmq: {{servers: ['amqp://127.0.0.1:{node.amqp_port}'], password_file: {tmp_path / 'central.password'},"
        f" replicas: 1}}\n"
        f"evidence_dir: {tmp_path / 'evidence'}\n",
        encoding="utf-8",
    )
    migrated = subprocess.run(
        [sys.executable, "-m", "central", "--config", str(cfg), "migrate"], cwd=REPO_ROOT, env=_env(),
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert migrated.returncode == 0, migrated.stderr
    proc = subprocess.Popen(
        [sys.executable, "-m", "central", "--config", str(cfg), "ingest"],
        cwd=REPO_ROOT, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    err: list[str] = []
    threading.Thread(target=lambda: err.extend(iter(proc.stderr.readline, "")), daemon=True).start()  # type: ignore[union-attr]
    threading.Thread(target=lambda: list(iter(proc.stdout.readline, "")), daemon=True).start()  # type: ignore[union-attr]
    outbox = Outbox(tmp_path / "outbox.sqlite3")
    publisher = MqttPublisher(
        outbox, MqttSettings(f"mqtt://127.0.0.1:{node.mqtt_port}", "node-a", username="node-a", password="secret-a",
                             protocol="3.1.1")
    )  # fmt: skip
    engine = create_engine(f"sqlite:///{db}")

    def stored() -> set[str]:
        with engine.connect() as c:
            return set(c.execute(select(EventRow.id)).scalars())

    clients: list[Client] = []
    started = False
    try:
        wait_until(
            lambda: any("rabbitmq_consuming" in x for x in err) and any("mqtt_subscribed" in x for x in err)
            or proc.poll() is not None,
            timeout=60, what="central ingesting",
        )  # fmt: skip
        assert proc.poll() is None, "".join(err[-30:])

        # --- the way it is meant to work: node A's events through its outbox, its status too (both via the queue)
        events = [make_event(node="node-a", camera="cam-1") for _ in range(10)]
        outbox.put([OutboxMessage(event_topic("ioc", e.node, e.camera, e.type.value), e.to_json().encode()) for e in events])
        publisher.start()
        started = True
        assert publisher.connected.wait(20)
        publisher.publish_state(node_status_topic("ioc", "node-a"), b'{"node": "node-a", "state": "online"}')
        wait_until(lambda: stored() >= {e.id for e in events}, timeout=40, what="node A's 10 events stored")
        with engine.connect() as c:
            wait_until(lambda: c.execute(select(NodeStatusRow.node)).scalars().all() == ["node-a"], timeout=20,
                       what="node A's status stored")  # fmt: skip

        # --- node A's credentials publishing as node B: no PUBACK, the broker drops the connection
        forged = make_event(node="node-b", camera="cam-1")
        topic_b = event_topic("ioc", "node-b", "cam-1", forged.type.value)
        for client_id in ("node-a", "node-b"):
            a = Client(broker, "node-a", "secret-a", client_id)
            clients.append(a)
            mid = a.publish(topic_b, forged.to_json().encode())
            assert a.disconnected.wait(10), f"publishing as node B (client id {client_id}) was not refused"
            assert mid not in a.acked
        # ... nor under its own name with another client id (the topic permission wants both to be its name)
        own = make_event(node="node-a", camera="cam-1")
        a = Client(broker, "node-a", "secret-a", "node-b")
        clients.append(a)
        mid = a.publish(event_topic("ioc", "node-a", "cam-1", own.type.value), own.to_json().encode())
        assert a.disconnected.wait(10) and mid not in a.acked, "node A published with node B's client id"

        # --- reading other nodes' topics: refused at SUBSCRIBE, and nothing of node B arrives
        for pattern in ("ioc/node-b/#", "ioc/+/+/events/+", "#"):
            a = Client(broker, "node-a", "secret-a", "node-a")
            clients.append(a)
            mid = a.subscribe(pattern)
            wait_until(lambda a=a, mid=mid: a.disconnected.is_set() or mid in a.granted, timeout=10,
                       what=f"an answer to SUBSCRIBE {pattern}")  # fmt: skip
            assert a.disconnected.is_set() or all(code >= 0x80 for code in a.granted[mid]), f"{pattern} granted"
        b = Client(broker, "node-b", "secret-b", "node-b")
        clients.append(b)
        b_event = make_event(node="node-b", camera="cam-1")
        b_mid = b.publish(event_topic("ioc", "node-b", "cam-1", b_event.type.value), b_event.to_json().encode())
        wait_until(lambda: b_mid in b.acked, timeout=10, what="node B's own publish acknowledged")
        wait_until(lambda: b_event.id in stored(), timeout=20, what="node B's event stored")
        assert all(not c.received for c in clients), "node A received other nodes' messages"
        # its own subtree it may read (its signal heads, its debug-recording requests)
        a = Client(broker, "node-a", "secret-a", "node-a")
        clients.append(a)
        mid = a.subscribe("ioc/node-a/+/signal/#")
        wait_until(lambda: mid in a.granted, timeout=10, what="SUBACK for its own signal topics")
        assert a.granted[mid] == [1]

        # --- the events queue over AMQP with node A's credentials: consume, delete, tap, publish
        def refused(action) -> str:  # type: ignore[no-untyped-def]
            conn = _amqp(broker, "node-a", "secret-a")
            try:
                ch = conn.channel()
                action(ch)
                conn.process_data_events(0.5)
            except pika.exceptions.ChannelClosedByBroker as e:
                return f"{e.reply_code} {e.reply_text}"
            finally:
                if conn.is_open:
                    conn.close()
            raise AssertionError("allowed")

        assert refused(lambda ch: ch.basic_consume("ioc.events", lambda *_a: None)).startswith("403")
        assert refused(lambda ch: ch.basic_get("ioc.events")).startswith("403")
        assert refused(lambda ch: ch.queue_delete("ioc.events")).startswith("403")
        assert refused(lambda ch: ch.queue_purge("ioc.events")).startswith("403")
        assert refused(lambda ch: ch.queue_bind("ioc.events", "amq.topic", "ioc.#")).startswith("403")
        # its own session queue, bound to everyone's events: the binding key is checked too
        tap = refused(lambda ch: (ch.queue_declare("mqtt-subscription-node-aqos0", auto_delete=True),
                                  ch.queue_bind("mqtt-subscription-node-aqos0", "amq.topic", "ioc.#")))  # fmt: skip
        assert tap.startswith("403") and "topic 'ioc.#'" in tap, tap
        assert refused(lambda ch: ch.queue_declare("tap", durable=False, exclusive=True)).startswith("403")

        def publish_amqp(key: str):  # type: ignore[no-untyped-def]
            def act(ch) -> None:  # type: ignore[no-untyped-def]
                ch.confirm_delivery()
                ch.basic_publish("amq.topic", key, forged.to_json().encode())

            return act

        assert refused(publish_amqp("ioc.node-b.cam-1.events.illegal_stopping")).startswith("403")
        assert refused(publish_amqp("ioc.node-a.cam-1.events.illegal_stopping")).startswith("403")  # no MQTT client id

        # --- nothing of it reached the database; the queue still has its consumer
        time.sleep(2)
        ids = stored()
        assert forged.id not in ids and own.id not in ids
        assert ids == {e.id for e in events} | {b_event.id}
        with engine.connect() as c:
            assert c.execute(select(DeadLetterRow.topic)).scalars().all() == []
        conn = _amqp(broker, "central", "secret-central")
        assert conn.channel().queue_declare("ioc.events", passive=True).method.consumer_count == 1
        conn.close()
        assert proc.poll() is None, "".join(err[-30:])
    finally:
        for c in clients:
            c.close()
        if started:
            publisher.stop()
        outbox.close()
        engine.dispose()
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
    assert proc.returncode == 0, "".join(err[-30:])


def test_healthz_and_metrics_say_whether_the_queue_is_consumed(broker: RabbitCluster, tmp_path: Path) -> None:
    """With events from the queue, "mqtt: connected" says nothing of them: /healthz and /metrics
    show the queue consumer itself, and follow it when its broker node goes away and comes back."""
    import socket
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    (tmp_path / "central.password").write_text("secret-central\n")
    node = broker.nodes[0]
    cfg = tmp_path / "central.yaml"
    cfg.write_text(
        f"database_url: sqlite:///{tmp_path / 'central.db'}\n"
        f"mqtt: {{url: 'mqtt://127.0.0.1:{node.mqtt_port}', protocol: '3.1.1', share_group: null, client_id: central-1,"
        f" username: central, password_file: {tmp_path / 'central.password'}}}\n"
        f"rabbitmq: {{servers: ['amqp://127.0.0.1:{node.amqp_port}'], password_file: {tmp_path / 'central.password'},"
        f" replicas: 1}}\n"
        f"web: {{host: 127.0.0.1, port: {port}}}\n"
        f"evidence_dir: {tmp_path / 'evidence'}\n",
        encoding="utf-8",
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "central", "--config", str(cfg), "run"],
        cwd=REPO_ROOT, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    err: list[str] = []
    threading.Thread(target=lambda: err.extend(iter(proc.stderr.readline, "")), daemon=True).start()  # type: ignore[union-attr]

    def healthz() -> dict:  # type: ignore[type-arg]
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as r:
                return json.loads(r.read())
        except OSError:
            return {}

    def gauge() -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
            lines = r.read().decode().splitlines()
        return next((x for x in lines if x.startswith("ioc_central_event_source_consuming{")), "")

    def consuming() -> bool | None:
        return healthz().get("event_source", {}).get("consuming")

    try:
        wait_until(lambda: consuming() is True or proc.poll() is not None, timeout=60, what="the queue consumed")
        assert proc.poll() is None, "".join(err[-30:])
        assert healthz()["event_source"] == {"engine": "rabbitmq", "consuming": True}
        assert gauge() == 'ioc_central_event_source_consuming{engine="rabbitmq"} 1.0'
        broker.kill(0)
        wait_until(lambda: consuming() is False, timeout=30, what="/healthz saying the queue is not consumed")
        assert gauge().endswith(" 0.0")
        assert healthz()["status"] == "ok"  # the console itself still serves: not a liveness failure
        broker.start(0)
        wait_until(lambda: consuming() is True, timeout=120, what="consuming again after the node is back")
        assert proc.poll() is None, "".join(err[-30:])
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()


def _json(value: object) -> dict:  # type: ignore[type-arg]
    return json.loads(value) if isinstance(value, str | bytes) else value  # type: ignore[return-value]


def _queue_exists(broker: RabbitCluster, name: str) -> bool:
    conn = _amqp(broker, "central", "secret-central")
    try:
        conn.channel().queue_declare(name, passive=True)
        return True
    except pika.exceptions.ChannelClosedByBroker as e:
        assert e.reply_code == 404, e
        return False
    finally:
        if conn.is_open:
            conn.close()


def test_status_health_and_evidence_divide_among_ingesters_through_the_queue(
    broker: RabbitCluster, tmp_path: Path
) -> None:
    """Node status, camera health and MQTT evidence come through the events queue like events:
    two ingesters consuming it divide them (each one's counters show a share, together exactly one
    per message, nothing twice), every node's newest status and camera's newest health are stored,
    and central's MQTT session subscribes to nothing. Its MQTT session left by an earlier version
    (subscribed to status, health and evidence) is deleted at the first connection (a clean
    session): it would take every message again, and every picture into one more quorum queue."""
    node = broker.nodes[0]
    db = tmp_path / "central.db"
    migrate(f"sqlite:///{db}")
    cfg = CentralConfig.model_validate(
        {
            "database_url": f"sqlite:///{db}",
            "mqtt": {"url": f"mqtt://127.0.0.1:{node.mqtt_port}", "protocol": "3.1.1", "share_group": None,
                     "username": "central", "password": "secret-central"},
            "rabbitmq": {"servers": [f"amqp://127.0.0.1:{node.amqp_port}"], "password": "secret-central", "replicas": 1},
            "evidence_dir": str(tmp_path / "evidence"),
        }
    )  # fmt: skip
    ids = ["central-s1", "central-s2"]
    # The session an earlier version kept: durable, subscribed to status, health and evidence.
    old = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=ids[0], protocol=mqtt.MQTTv311, clean_session=False)
    old.username_pw_set("central", "secret-central")
    subscribed = threading.Event()
    old.on_subscribe = lambda *_a: subscribed.set()
    old.on_connect = lambda c, *_a: c.subscribe([("ioc/+/status", 1), ("ioc/+/+/health", 1), ("ioc/+/+/evidence/+", 1)])
    old.connect("127.0.0.1", node.mqtt_port, 10)
    old.loop_start()
    assert subscribed.wait(10)
    old.disconnect()
    old.loop_stop()
    assert _queue_exists(broker, f"mqtt-subscription-{ids[0]}qos1")

    ingesters: list[Ingester] = []
    sources: list[RabbitMqEventSource] = []
    publishers: list[mqtt.Client] = []
    engine = create_engine(f"sqlite:///{db}")
    try:
        for cid in ids:
            ing = Ingester(cfg, client_id=cid, console=io.StringIO()).start()
            ingesters.append(ing)
            sources.append(start_event_source(cfg, ing))
        for ing, src in zip(ingesters, sources, strict=True):
            assert ing.topics == [] and ing.wait_subscribed(20)
            assert src.wait_ready(30), src.error
        conn = _amqp(broker, "central", "secret-central")
        assert conn.channel().queue_declare("ioc.events", passive=True).method.consumer_count == 2
        conn.close()
        for cid in ids:
            assert not _queue_exists(broker, f"mqtt-subscription-{cid}qos1"), f"{cid} has an MQTT session queue"

        # Every node: 5 rounds of its status and its 2 cameras' health (retained, as a node sends
        # them), and 2 evidence files; node-s0 one more of 15 MB (under the 16 MB limit).
        t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
        rounds, cams = 5, ("cam-1", "cam-2")
        files: dict[str, bytes] = {}
        sent = 0
        for n in STATUS_NODES:
            c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=n, protocol=mqtt.MQTTv311)
            c.username_pw_set(n, f"secret-{n}")
            c.connect("127.0.0.1", node.mqtt_port, 30)
            c.loop_start()
            publishers.append(c)
            infos = []
            for r in range(rounds):
                at = t0 + timedelta(seconds=10 * r)
                health = {cam: CameraHealth(node=n, camera=cam, state="streaming", at=at, analysis_fps_target=5.0 + r)
                          for cam in cams}  # fmt: skip
                status = NodeStatus(node=n, state="online", at=at, uptime_s=10.0 * r, outbox_backlog=r, published=0,
                                    held_no_subscriber=0, cameras=health)
                infos.append(c.publish(node_status_topic("ioc", n), status.to_json().encode(), qos=1, retain=True))
                for cam in cams:
                    payload = health[cam].to_json().encode()
                    infos.append(c.publish(camera_health_topic("ioc", n, cam), payload, qos=1, retain=True))
                sent += 1 + len(cams)
            blobs = [fake_jpeg(f"{n}-{i}", 4096) for i in range(2)]
            if n == STATUS_NODES[0]:
                blobs.append(fake_jpeg(f"{n}-big", 15 * 1024 * 1024))
            for blob in blobs:
                files[sha256_hex(blob)] = blob
                infos.append(c.publish(evidence_topic("ioc", n, "cam-1", sha256_hex(blob)), blob, qos=1))
            for info in infos:
                info.wait_for_publish(60)  # PUBACK: the queue has it
        sent += len(files)

        def total(name: str) -> int:
            return sum(getattr(i.counters, name) for i in ingesters)

        wait_until(lambda: total("acked") >= sent, timeout=90,
                   what=f"{sent} messages stored and acked by the two ingesters")  # fmt: skip
        time.sleep(2)  # anything coming twice (an MQTT session, a redelivery) would come by now
        shares = [i.counters.snapshot() for i in ingesters]
        print(f"\ningester shares (received, status_updates, evidence_stored): "
              f"{[(s['received'], s['status_updates'], s['evidence_stored']) for s in shares]}")  # fmt: skip
        assert total("received") == sent and total("acked") == sent, shares  # once each, overall
        assert total("status_updates") == sent - len(files), shares
        assert total("evidence_stored") == len(files) and total("evidence_duplicates") == 0, shares
        assert all(s["status_updates"] > 0 for s in shares), f"not divided: {shares}"
        assert all(s["received"] < sent for s in shares), f"not divided: {shares}"
        assert total("dead_letters") == 0, shares

        with engine.connect() as c:
            rows = dict(c.execute(select(NodeStatusRow.node, NodeStatusRow.payload)).all())
            assert set(rows) == set(STATUS_NODES)
            assert all(_json(p)["outbox_backlog"] == rounds - 1 for p in rows.values()), "not every node's newest status"
            health_rows = {(n, cam): _json(p) for n, cam, p in
                           c.execute(select(CameraHealthRow.node, CameraHealthRow.camera, CameraHealthRow.payload))}
            assert set(health_rows) == {(n, cam) for n in STATUS_NODES for cam in cams}
            assert all(h["analysis_fps_target"] == 5.0 + rounds - 1 for h in health_rows.values())
            stored_files = c.execute(select(EvidenceRow.sha256)).scalars().all()
            assert sorted(stored_files) == sorted(files)
            assert c.execute(select(DeadLetterRow.topic)).scalars().all() == []
        big = max(files, key=lambda k: len(files[k]))
        assert (tmp_path / "evidence" / relative_path(big)).read_bytes() == files[big]  # 15 MB through the queue
        conn = _amqp(broker, "central", "secret-central")
        q = conn.channel().queue_declare("ioc.events", passive=True).method
        conn.close()
        assert q.message_count == 0 and q.consumer_count == 2
    finally:
        for c in publishers:
            c.loop_stop()
            c.disconnect()
        for src in sources:
            src.stop()
        for ing in ingesters:
            ing.stop()
        engine.dispose()
