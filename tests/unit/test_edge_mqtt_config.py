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
