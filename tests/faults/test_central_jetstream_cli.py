"""`ioc-central ingest` on a real three-server NATS cluster, as a deployment runs it: events from
the replicated JetStream stream (jetstream: in central.yaml), node status over the cluster's MQTT
listener (mqtt.protocol 3.1.1, no shared group); an edge node publishes through its own outbox
and publisher to another server of the cluster."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select

from central.db import EventRow, NodeStatusRow
from contract.mqtt import MqttSettings
from contract.topics import event_topic, node_status_topic
from edge.outbox import Outbox, OutboxMessage
from edge.publisher import MqttPublisher
from tests.integration.test_central_cli import _env
from tests.nats_cluster import NatsCluster
from tests.services import make_event, wait_until
from tests.support import REPO_ROOT

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


def test_central_ingest_takes_events_from_the_stream_and_status_over_mqtt(tmp_path: Path) -> None:
    cluster = NatsCluster(tmp_path / "nats")
    cluster.start()
    db = tmp_path / "central.db"
    cfg = tmp_path / "central.yaml"
    servers = ", ".join(cluster.servers)
    cfg.write_text(
        f"database_url: sqlite:///{db}\n"
        f"mqtt: {{url: '{cluster.mqtt_urls[0]}', protocol: '3.1.1', share_group: null, client_id: central-1}}\n"
        f"jetstream: {{servers: [{servers}]}}\n"
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
        outbox, MqttSettings(cluster.mqtt_urls[1], "node-7", failover_urls=(cluster.mqtt_urls[2],), protocol="3.1.1")
    )
    started = False
    try:
        wait_until(
            lambda: any("jetstream_ready" in x for x in err) and any("mqtt_subscribed" in x for x in err)
            or proc.poll() is not None,
            timeout=40, what="central ingesting",
        )  # fmt: skip
        assert proc.poll() is None, "".join(err[-30:])
        events = [make_event(node="node-7", camera="cam-1") for _ in range(20)]
        outbox.put(
            [OutboxMessage(event_topic("ioc", e.node, e.camera, e.type.value), e.to_json().encode()) for e in events]
        )
        publisher.start()
        started = True
        assert publisher.connected.wait(20)
        publisher.publish_state(node_status_topic("ioc", "node-7"), b'{"node": "node-7", "state": "online"}')
        engine = create_engine(f"sqlite:///{db}")

        def stored() -> set[str]:
            with engine.connect() as c:
                return set(c.execute(select(EventRow.id)).scalars())

        wait_until(lambda: stored() >= {e.id for e in events}, timeout=40, what="20 events stored")
        assert len(stored()) == 20
        with engine.connect() as c:
            wait_until(lambda: c.execute(select(NodeStatusRow.node)).scalars().all() == ["node-7"], timeout=20,
                       what="node status stored")  # fmt: skip
        engine.dispose()
    finally:
        if started:
            publisher.stop()
        outbox.close()
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
        cluster.stop()
    assert proc.returncode == 0, "".join(err[-30:])
