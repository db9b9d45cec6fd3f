"""The RabbitMQ cluster's generated accounts and central's `rabbitmq:` config, without a broker
(the broker itself: tests/integration/test_rabbitmq_access.py, tests/faults/test_rabbitmq_cluster.py)."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from central.config import CentralConfig
from central.ingester import Ingester
from central.rabbitmq_cluster import (
    RabbitUsers,
    definitions,
    event_binding_keys,
    main,
    password_hash,
    routing_key_to_topic,
    topic_to_routing_key,
)
from contract.topics import (
    camera_health_topic,
    event_topic,
    evidence_topic,
    ingest_subscriptions,
    node_status_topic,
    parse_topic,
)


def _expand(pattern: str, **variables: str) -> str:
    # RabbitMQ's rabbit_auth_backend_internal:expand_topic_permission: plain text replacement.
    for k, v in variables.items():
        pattern = pattern.replace("{" + k + "}", v)
    return pattern


def _topic_perm(doc: dict, user: str) -> dict:  # type: ignore[type-arg]
    return next(p for p in doc["topic_permissions"] if p["user"] == user)


def test_topics_and_routing_keys_map_as_the_mqtt_plugin_does() -> None:
    topic = event_topic("ioc", "node-1", "cam-2", "red_light")
    assert topic_to_routing_key(topic) == "ioc.node-1.cam-2.events.red_light"
    assert routing_key_to_topic(topic_to_routing_key(topic)) == topic
    # the queue carries everything central ingests: events, evidence, node status, camera health
    assert event_binding_keys("ioc") == ["ioc.*.*.events.*", "ioc.*.*.evidence.*", "ioc.*.status", "ioc.*.*.health"]
    for t in (evidence_topic("ioc", "node-1", "cam-2", "ab" * 32), node_status_topic("ioc", "node-1"),
              camera_health_topic("ioc", "node-1", "cam-2")):  # fmt: skip
        assert routing_key_to_topic(topic_to_routing_key(t)) == t
        assert parse_topic("ioc", routing_key_to_topic(topic_to_routing_key(t))) is not None


def test_a_node_may_publish_only_its_own_topics_with_its_own_client_id() -> None:
    doc = definitions(RabbitUsers({"node-a": "x", "node-b": "y"}, central_password="z"))
    perm = _topic_perm(doc, "node-a")
    assert perm["exchange"] == "amq.topic" and perm["write"] == perm["read"]
    mqtt = _expand(perm["write"], username="node-a", client_id="node-a", vhost="/")
    assert re.search(mqtt, "ioc.node-a.cam-1.events.red_light")
    assert re.search(mqtt, "ioc.node-a.cam-1.signal.#")  # its signal heads (SUBSCRIBE is checked with the filter)
    for key in ("ioc.node-b.cam-1.events.red_light", "ioc.node-ab.cam-1.events.x", "ioc.#", "#", "ioc.*.*.events.*",
                "other.node-a.cam-1.events.x"):
        assert not re.search(mqtt, key), key
    # another client id (node B's, central's): nothing at all
    assert not re.search(_expand(perm["write"], username="node-a", client_id="node-b"), "ioc.node-a.cam.events.x")
    # AMQP connections have no {client_id}: the pattern keeps it literally and matches nothing
    assert not re.search(_expand(perm["write"], username="node-a", vhost="/"), "ioc.node-a.cam-1.events.red_light")
    # resources: amq.topic and its own MQTT session queues only (not the events queue)
    res = next(p for p in doc["permissions"] if p["user"] == "node-a")
    for kind in ("configure", "write", "read"):
        assert not re.search(res[kind], "ioc.events")
        assert not re.search(res[kind], "mqtt-subscription-central-1qos1")
        assert not re.search(res[kind], "mqtt-subscription-node-bqos1")
    assert re.search(res["configure"], "mqtt-subscription-node-aqos1")


def test_every_node_has_topic_permissions_and_central_consumes() -> None:
    # Without a topic permission RabbitMQ allows every routing key: none may be missing.
    nodes = {f"node-{i}": "p" for i in range(5)}
    doc = definitions(RabbitUsers(nodes, central_password="c"), queue="ioc.events", replicas=3)
    assert {p["user"] for p in doc["topic_permissions"]} == {*nodes, "central"}
    central = next(p for p in doc["permissions"] if p["user"] == "central")
    assert all(re.search(central[k], "ioc.events") for k in ("configure", "write", "read"))
    ct = _topic_perm(doc, "central")
    assert re.search(ct["read"], "ioc.*.*.events.*") and not re.search(ct["write"], "ioc.node-1.cam.events.x")
    assert re.search(ct["write"], "ioc.alerts.hue.red_light") and re.search(ct["write"], "ioc.node-1.cam-1.debug.record")
    assert doc["queues"] == [{"name": "ioc.events", "vhost": "/", "durable": True, "auto_delete": False,
                              "arguments": {"x-queue-type": "quorum", "x-quorum-initial-group-size": 3}}]  # fmt: skip
    assert [b["routing_key"] for b in doc["bindings"]] == event_binding_keys("ioc")
    assert {b["destination"] for b in doc["bindings"]} == {"ioc.events"}
    with pytest.raises(ValueError, match="central"):
        definitions(RabbitUsers({"central-2": "x"}))


def test_password_hash_is_rabbitmqs_salted_sha256() -> None:
    raw = base64.b64decode(password_hash("s3cret", salt=b"\x01\x02\x03\x04"))
    assert raw[:4] == b"\x01\x02\x03\x04" and raw[4:] == hashlib.sha256(b"\x01\x02\x03\x04s3cret").digest()


def test_the_generator_writes_configs_definitions_and_secrets(tmp_path: Path) -> None:
    main([str(tmp_path), "--node", "node-1", "--node", "node-2"])
    doc = json.loads((tmp_path / "definitions.json").read_text())
    assert {u["name"] for u in doc["users"]} == {"central", "node-1", "node-2"}
    assert (tmp_path / "secrets" / "node-1.password").stat().st_mode & 0o077 == 0
    conf = (tmp_path / "rabbit-1.rabbitmq.conf").read_text()
    assert "mqtt.allow_anonymous = false" in conf and "cluster_partition_handling = pause_minority" in conf


def _cfg(**rabbit_mqtt: object) -> dict:  # type: ignore[type-arg]
    return {
        "mqtt": {"protocol": "3.1.1", "share_group": None, **rabbit_mqtt},
        "rabbitmq": {"servers": ["amqp://r1:5672", "amqp://r2:5672"]},
    }


def test_central_config_rabbitmq() -> None:
    cfg = CentralConfig.model_validate(_cfg(failover_urls=["mqtt://r2:1883"]))
    assert cfg.events_engine == "rabbitmq"
    assert cfg.rabbitmq is not None and cfg.rabbitmq.queue == "ioc.events" and cfg.rabbitmq.replicas == 3
    assert cfg.mqtt.client_settings("c").failover_urls == ("mqtt://r2:1883",)
    assert CentralConfig().events_engine == "mqtt"
    # everything comes from the queue: central's MQTT session subscribes to nothing, and is a
    # clean one (which deletes a session queue an earlier version left bound to status & co.)
    ingester = Ingester(cfg.model_copy(update={"database_url": "sqlite://"}), client_id="central-1")
    assert ingester.topics == [] and ingester._mqtt.settings.clean_start is True
    assert set(event_binding_keys("ioc")) == {topic_to_routing_key(t) for t in ingest_subscriptions("ioc", None)}
    # without rabbitmq: (JetStream) the MQTT session still takes evidence, status and health
    js = CentralConfig.model_validate({"mqtt": {"share_group": None}, "jetstream": {"servers": ["nats://n1:4222"]},
                                       "database_url": "sqlite://"})  # fmt: skip
    assert Ingester(js, client_id="central-1").topics == ["ioc/+/+/evidence/+", "ioc/+/status", "ioc/+/+/health"]
    with pytest.raises(ValidationError, match="3.1.1"):
        CentralConfig.model_validate(_cfg(protocol="5"))
    with pytest.raises(ValidationError, match="shared subscriptions"):
        CentralConfig.model_validate(_cfg(share_group="central"))
    with pytest.raises(ValidationError, match="only one"):
        CentralConfig.model_validate({**_cfg(), "jetstream": {"servers": ["nats://n1:4222"]}})
    with pytest.raises(ValidationError, match="servers"):
        CentralConfig.model_validate({**_cfg(), "rabbitmq": {"servers": ["http://r1"]}})
    with pytest.raises(ValidationError, match="scheme"):
        CentralConfig.model_validate(_cfg(failover_urls=["mqtts://r2:8883"]))
