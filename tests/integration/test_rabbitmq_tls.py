"""TLS between the nodes of a real three-node RabbitMQ cluster, and TLS-only client listeners,
configured as `python -m central.rabbitmq_cluster --tls-dir DIR` configures a deployment.

A CA and one certificate per node (`central.rabbitmq_cluster.generate_pki`, openssl) and a second,
unrelated CA for an intruder. Three `rabbitmq-server` nodes on this machine (tests/rabbitmq_cluster.py)
run the Erlang distribution over TLS (`-proto_dist inet_tls -ssl_dist_optfile`, both ends verified
against the CA) and listen only for AMQPS and MQTTS. The test checks that:

- the cluster forms over it (join_cluster, the events quorum queue on three nodes), and each node's
  connections to its peers are TLS connections (`net_kernel:nodes_info`: protocol `tls`);
- each node's distribution port answers only TLS, and only to a peer with a CA-signed
  certificate: a TLS client without a certificate, or with the intruder CA's, is refused, and so
  is a plain-TCP `rabbitmqctl` that has the cookie;
- a plain MQTT CONNECT gets no CONNACK on the MQTT port;
- an edge node's event, MQTT 3.1.1 QoS 1 over TLS through its own outbox and publisher into
  node 2, reaches central (`Ingester` + `RabbitMqEventSource`, AMQPS from node 3) and is stored,
  and its status over MQTTS too;
- a fourth RabbitMQ node with the right Erlang cookie but a certificate the cluster's CA did not sign
  cannot join: `join_cluster` fails, the cluster still has its three nodes.
"""

from __future__ import annotations

import io
import json
import logging
import re
import shutil
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import create_engine, select

from central.config import CentralConfig
from central.db import EventRow, NodeStatusRow, migrate
from central.ingest_rabbitmq import start_event_source
from central.ingester import Ingester
from central.rabbitmq_cluster import RabbitUsers, definitions, generate_pki
from contract.mqtt import MqttSettings
from contract.topics import event_topic, node_status_topic
from edge.outbox import Outbox, OutboxMessage
from edge.publisher import MqttPublisher
from tests.rabbitmq_cluster import CTL, RabbitCluster, start_cluster
from tests.services import make_event, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(420)]
logging.getLogger("pika").setLevel(logging.CRITICAL)

USERS = RabbitUsers({"node-a": "secret-a"}, central_password="secret-central")


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("pki")
    generate_pki(root / "ca", ["ioc1", "ioc2", "ioc3", "probe"])
    # Another CA under the very same name: only the signature tells them apart.
    generate_pki(root / "rogue", ["intruder"])
    return root / "ca", root / "rogue"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, pki: tuple[Path, Path]) -> Iterator[RabbitCluster]:
    good, _ = pki
    c = start_cluster(
        tmp_path_factory.mktemp("rabbit-tls"), 3, definitions(USERS, "ioc", replicas=3),
        tls_dirs=[good / f"ioc{k}" for k in (1, 2, 3)],
    )  # fmt: skip
    try:
        yield c
    finally:
        c.stop()
        c.__exit__()


def _ctx(ca: Path, cert_dir: Path | None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(ca))
    if cert_dir is not None:
        ctx.load_cert_chain(str(cert_dir / "server.crt"), str(cert_dir / "server.key"))
    return ctx


def _dist_peer(port: int, ctx: ssl.SSLContext) -> str:
    """A TLS connection to a node's distribution port: the peer's CN once the node has accepted our
    certificate (TLS 1.3 finishes the client side first: the node's verdict comes with the first read)."""
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    with raw, ctx.wrap_socket(raw, server_hostname="localhost") as tls:
        subject = (tls.getpeercert() or {}).get("subject", ())
        cn = next(str(v) for rdn in subject for k, v in rdn if k == "commonName")  # type: ignore[str-unpack]
        tls.settimeout(3)
        try:
            data = tls.recv(1)  # the node waits for our Erlang handshake: a timeout means accepted
        except TimeoutError:
            return cn
        raise ConnectionError(f"closed by the node ({data!r})")


def test_cluster_over_tls_refuses_what_its_ca_did_not_sign(
    cluster: RabbitCluster, pki: tuple[Path, Path], tmp_path: Path
) -> None:
    good, rogue = pki
    names = sorted(n.name for n in cluster.nodes)

    # --- formed over TLS: every node's distribution is inet_tls, every peer connection a TLS one
    assert cluster.running_nodes() == names
    for k in range(3):
        assert '"inet_tls"' in cluster.ctl(k, "eval", "init:get_argument(proto_dist).")
        out = cluster.ctl(
            k, "eval",
            "[{N, element(4, proplists:get_value(address, I))} || {N, I} <- element(2, net_kernel:nodes_info())].",
        )  # fmt: skip
        peers = dict(re.findall(r"\{'?([\w@.-]+)'?,(\w+)\}", out))  # an atom with '-' comes quoted
        assert {n for n in names if n != cluster.nodes[k].name} <= set(peers), out
        assert set(peers.values()) == {"tls"}, out
    raw = cluster.ctl(0, "quorum_status", "ioc.events", "--formatter", "json", tool="rabbitmq-queues")
    status = json.loads(raw)
    assert len(status) == 3 and all(n in raw for n in names), raw  # its Raft members talk over TLS too
    print(f"\nioc.events quorum status: {raw.strip()[:400]}")

    # --- the distribution port: TLS only, and only for a certificate of the cluster's CA
    for k, n in enumerate(cluster.nodes):
        assert _dist_peer(n.dist_port, _ctx(good / "ca.crt", good / "probe")) == f"ioc{k + 1}"
        with pytest.raises(OSError):  # SSLError, ConnectionError
            _dist_peer(n.dist_port, _ctx(good / "ca.crt", None))  # no client certificate
        with pytest.raises(OSError):  # SSLError, ConnectionError
            _dist_peer(n.dist_port, _ctx(good / "ca.crt", rogue / "intruder"))  # another CA's
    # a plain-TCP CLI with the cookie: the same rabbitmqctl call without the TLS arguments
    env = cluster._env()
    env.pop("RABBITMQ_CTL_ERL_ARGS")
    plain = subprocess.run(
        [str(CTL), "-n", cluster.nodes[0].name, "status"], env=env, capture_output=True, text=True, timeout=120,
        cwd=cluster.root,
    )  # fmt: skip
    assert plain.returncode != 0, plain.stdout
    print(f"\nplain-TCP rabbitmqctl with the cookie: rc {plain.returncode}: {plain.stderr.strip()[:300]}")

    # --- the client listeners are TLS-only: a plain MQTT CONNECT gets no CONNACK
    refused = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="node-a", protocol=mqtt.MQTTv311)
    refused.username_pw_set("node-a", "secret-a")
    got_connack: list[object] = []
    refused.on_connect = lambda *a: got_connack.append(a)
    try:
        refused.connect("127.0.0.1", cluster.nodes[0].mqtt_port, 5)
        refused.loop_start()
        time.sleep(3)
    except OSError:
        pass
    finally:
        refused.loop_stop()
        refused.disconnect()
    assert not got_connack

    # --- an MQTT QoS 1 event over TLS into node 2 reaches central, which consumes over AMQPS from node 3
    db = f"sqlite:///{tmp_path / 'central.db'}"
    migrate(db)
    ca = str(cluster.ca_file)
    mqtt_urls, amqp_urls = cluster.mqtt_urls, cluster.amqp_urls
    cfg = CentralConfig.model_validate({
        "database_url": db, "evidence_dir": str(tmp_path / "evidence"),
        "mqtt": {"url": mqtt_urls[0], "failover_urls": mqtt_urls[1:], "protocol": "3.1.1", "share_group": None,
                 "client_id": "central-1", "username": "central", "password": "secret-central", "ca_file": ca},
        "rabbitmq": {"servers": [amqp_urls[2], *amqp_urls[:2]], "password": "secret-central", "ca_file": ca},
    })  # fmt: skip
    assert all(u.startswith("amqps://") for u in amqp_urls) and all(u.startswith("mqtts://") for u in mqtt_urls)
    ingester = Ingester(cfg, client_id="central-1", console=io.StringIO(), reconnect_max_s=2).start()
    source = start_event_source(cfg, ingester)
    outbox = Outbox(tmp_path / "outbox.sqlite3")
    publisher = MqttPublisher(
        outbox, MqttSettings(mqtt_urls[1], "node-a", username="node-a", password="secret-a", protocol="3.1.1",
                             ca_file=ca, failover_urls=(mqtt_urls[2], mqtt_urls[0]))
    )  # fmt: skip
    engine = create_engine(db)
    started = False
    try:
        assert source.wait_ready(60), f"central not consuming over AMQPS: {source.error}"
        assert ingester.subscribed.wait(30), "central's MQTT session over TLS not subscribed"
        events = [make_event(node="node-a", camera="cam-1") for _ in range(5)]
        outbox.put([OutboxMessage(event_topic("ioc", e.node, e.camera, e.type.value), e.to_json().encode()) for e in events])
        publisher.start()
        started = True
        assert publisher.connected.wait(30), "the edge publisher did not connect over MQTTS"
        publisher.publish_state(node_status_topic("ioc", "node-a"), b'{"node": "node-a", "state": "online"}')
        with engine.connect() as c:
            wait_until(
                lambda: set(c.execute(select(EventRow.id)).scalars()) == {e.id for e in events},
                timeout=60, what="the 5 events stored",
            )  # fmt: skip
            wait_until(lambda: c.execute(select(NodeStatusRow.node)).scalars().all() == ["node-a"], timeout=30,
                       what="the node's status stored")  # fmt: skip
        wait_until(lambda: outbox.backlog() == 0, timeout=20, what="every PUBACK (the outbox empty)")
    finally:
        if started:
            publisher.stop()
        outbox.close()
        source.stop()
        ingester.stop()
        engine.dispose()

    # --- a node with the cookie and a certificate of another CA cannot join, even trusting the
    # cluster's CA (its certificate is public): its ca.crt holds both CAs, so its own CLI reaches it
    tls = tmp_path / "intruder-tls"
    tls.mkdir()
    (tls / "ca.crt").write_bytes((good / "ca.crt").read_bytes() + (rogue / "ca.crt").read_bytes())
    for name in ("server.crt", "server.key"):
        shutil.copyfile(rogue / "intruder" / name, tls / name)
    intruder = RabbitCluster(tmp_path / "intruder", 1, tls_dirs=[tls], cookie=cluster.cookie)
    try:
        intruder.start(0)
        intruder.ctl(0, "await_startup")  # its own CLI (the same rogue certificate) reaches it
        intruder.ctl(0, "stop_app")
        log1 = cluster.root / "log" / cluster.short(cluster.nodes[0]) / f"{cluster.nodes[0].name}.log"
        since = len(log1.read_text(errors="replace").splitlines())
        with pytest.raises(AssertionError) as refused_join:
            intruder.ctl(0, "join_cluster", cluster.nodes[0].name, timeout=120)
        print(f"intruder's join_cluster: {str(refused_join.value)[:600]}")
        assert cluster.running_nodes() == names
        assert intruder.nodes[0].name not in cluster.ctl(0, "cluster_status")
        # why: node 1 refused the intruder's certificate in the TLS handshake (not a name, not the cookie)
        log1 = cluster.root / "log" / cluster.short(cluster.nodes[0]) / f"{cluster.nodes[0].name}.log"
        alerts = [ln for ln in log1.read_text(errors="replace").splitlines()[since:] if "ALERT" in ln]
        print("node 1's TLS alerts during the join:", *alerts[:4], sep="\n  ")
        assert any("generated SERVER ALERT: Fatal - Unknown CA" in ln for ln in alerts), alerts
    finally:
        intruder.stop()
        intruder.__exit__()
