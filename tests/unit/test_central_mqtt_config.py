"""Central's `mqtt` config section builds the shared client's MqttSettings: `password` as before,
now also `password_file`, env CENTRAL_MQTT_PASSWORD and `ca_file` (for mqtts:// with a private CA)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from central.config import REPO_ROOT, CentralConfig
from central.config import MqttConfig as CentralMqtt
from contract.mqtt import build_client


@pytest.fixture(autouse=True)
def _no_password_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CENTRAL_MQTT_PASSWORD", raising=False)


def test_central_mqtt_password_file_env_and_ca_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    pw = tmp_path / "central.password"
    pw.write_text("from-file\n", encoding="utf-8")
    cfg = CentralConfig.model_validate(
        {"mqtt": {"url": "mqtts://broker.example", "username": "central", "password_file": str(pw),
                  "ca_file": "deploy/ca.crt"}}
    ).mqtt
    assert cfg.ca_file == REPO_ROOT / "deploy/ca.crt"  # relative: like the routing table
    s = cfg.client_settings("central-1", clean_start=False, session_expiry_s=60, manual_ack=True)
    assert (s.username, s.password, s.ca_file) == ("central", "from-file", REPO_ROOT / "deploy/ca.crt")
    assert (s.clean_start, s.session_expiry_s, s.manual_ack, s.keepalive_s) == (False, 60, True, 30)
    monkeypatch.setenv("CENTRAL_MQTT_PASSWORD", "from-env")
    assert cfg.secret() == "from-env"


def test_central_plain_password_works_as_before():
    s = CentralMqtt(username="central", password="pw").client_settings("central-2")
    c = build_client(s)
    assert c._username == b"central" and c._password == b"pw" and c._ssl_context is None


def test_central_mqtt_rejects_unknown_keys_still():
    with pytest.raises(ValidationError):
        CentralConfig.model_validate({"mqtt": {"cafile": "x"}})
