"""The edge's `mqtt` config section builds the shared client's MqttSettings with the same keys and
env name as before (EDGE_MQTT_PASSWORD, password_file, ca_file; the node id as default user)."""

from __future__ import annotations

from pathlib import Path

import pytest

from contract.mqtt import Will
from edge.config import MqttConfig as EdgeMqtt


@pytest.fixture(autouse=True)
def _no_password_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EDGE_MQTT_PASSWORD", raising=False)


def test_edge_node_logs_in_as_its_node_id_when_it_has_a_password(tmp_path: Path):
    pw = tmp_path / "node.password"
    pw.write_text("from-file\n", encoding="utf-8")
    cfg = EdgeMqtt(url="mqtts://broker.example:8883", password_file=pw, ca_file=tmp_path / "ca.crt", keepalive_s=15)
    will = Will("ioc/node-a/status", b"offline")
    s = cfg.client_settings("edge-node-a-1", "node-a", will=will)
    assert (s.username, s.password, s.client_id) == ("node-a", "from-file", "edge-node-a-1")
    assert s.tls and s.ca_file == tmp_path / "ca.crt" and s.keepalive_s == 15 and s.will == will
    assert EdgeMqtt(username="other", password="p").client_settings("c", "node-a").username == "other"
    anonymous = EdgeMqtt().client_settings("c", "node-a")
    assert anonymous.username is None and anonymous.password is None and not anonymous.tls


def test_edge_password_env_still_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("EDGE_MQTT_PASSWORD", "from-env")
    assert EdgeMqtt(password="from-value").client_settings("c", "node-a").password == "from-env"


def test_a_node_with_credentials_connects_as_its_node_id(tmp_path, monkeypatch):
    """The generated broker config binds an account to its name as client id: a node with a password
    and no client_id uses its node id; without credentials the id stays unique per process."""
    from edge.config import NodeConfig, mqtt_client_id

    monkeypatch.delenv("EDGE_MQTT_PASSWORD", raising=False)
    base = {"node": {"id": "node-hue-01"}, "cameras": [{"config": "cam.yaml"}]}
    assert mqtt_client_id(NodeConfig.model_validate(base)).startswith("edge-node-hue-01-")
    secured = NodeConfig.model_validate({**base, "mqtt": {"password": "s3cret-password"}})
    assert mqtt_client_id(secured) == "node-hue-01"
    chosen = NodeConfig.model_validate({**base, "mqtt": {"password": "x", "client_id": "node-hue-01-a"}})
    assert mqtt_client_id(chosen) == "node-hue-01-a"
