"""Central config: defaults, env overrides, errors that name the file and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from central.config import load_central_config
from contract.configfile import ConfigError
from contract.paths import packaged_config
from contract.topics import parse_mqtt_url
from tests.support import REPO_ROOT


@pytest.fixture(autouse=True)
def _no_env(monkeypatch):
    monkeypatch.delenv("CENTRAL_DATABASE_URL", raising=False)
    monkeypatch.delenv("CENTRAL_MQTT_URL", raising=False)
    monkeypatch.delenv("CENTRAL_STATE_DIR", raising=False)


def test_empty_file_gives_defaults(tmp_path: Path):
    f = tmp_path / "c.yaml"
    f.write_text("", encoding="utf-8")
    cfg = load_central_config(f)
    assert cfg.database_url == f"sqlite:///{REPO_ROOT}/var/central/central.db"
    assert cfg.evidence_dir == REPO_ROOT / "var/central/evidence"
    assert cfg.mqtt.topic_prefix == "ioc" and cfg.mqtt.share_group == "central"
    assert cfg.mqtt.session_expiry_s == 3600
    assert cfg.mqtt.effective_client_id.startswith("central-")
    assert cfg.web.base_url == "http://127.0.0.1:8080"


def test_state_paths_follow_central_state_dir(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("CENTRAL_STATE_DIR", str(tmp_path / "state"))
    cfg = load_central_config(None)
    assert cfg.database_url == f"sqlite:///{tmp_path}/state/central.db"
    assert cfg.evidence_dir == tmp_path / "state" / "evidence"
    # The shipped config and routing table are package data, not files of the working directory.
    assert cfg.reports.routing_file == packaged_config("routing.yaml")
    assert load_central_config(packaged_config("central.yaml")).evidence_dir == tmp_path / "state" / "evidence"


def test_shipped_config_is_valid():
    cfg = load_central_config(REPO_ROOT / "configs" / "central.yaml")
    assert cfg.mqtt.url == "mqtt://127.0.0.1:1883"


def test_env_overrides(tmp_path: Path, monkeypatch):
    f = tmp_path / "c.yaml"
    f.write_text("database_url: sqlite:////tmp/x.db\n", encoding="utf-8")
    monkeypatch.setenv("CENTRAL_DATABASE_URL", "postgresql://u:p%40ss@db:5432/central")
    monkeypatch.setenv("CENTRAL_MQTT_URL", "mqtts://broker.example")
    cfg = load_central_config(f)
    assert cfg.database_url == "postgresql+psycopg://u:p%40ss@db:5432/central"
    assert parse_mqtt_url(cfg.mqtt.url) == ("broker.example", 8883, True)


def test_bad_values_name_file_and_key(tmp_path: Path):
    f = tmp_path / "c.yaml"
    f.write_text("mqtt:\n  url: http://x\n  session_expiry_s: -1\nweb:\n  prot: 1\n", encoding="utf-8")
    with pytest.raises(ConfigError) as e:
        load_central_config(f)
    msg = str(e.value)
    assert str(f) in msg
    assert "mqtt.url" in msg and "mqtt://" in msg
    assert "mqtt.session_expiry_s" in msg
    assert "web.prot" in msg


def test_bad_env_value_is_named(tmp_path: Path, monkeypatch):
    f = tmp_path / "c.yaml"
    f.write_text("{}\n", encoding="utf-8")
    monkeypatch.setenv("CENTRAL_DATABASE_URL", "mysql://x/y")
    with pytest.raises(ConfigError, match="CENTRAL_DATABASE_URL"):
        load_central_config(f)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("mqtt://127.0.0.1:1884", ("127.0.0.1", 1884, False)),
        ("mqtt://h", ("h", 1883, False)),
        ("mqtts://h:9000", ("h", 9000, True)),
    ],
)
def test_parse_mqtt_url(url, expected):
    assert parse_mqtt_url(url) == expected


@pytest.mark.parametrize("url", ["http://h", "mqtt://", "mqtt://h:notaport", "h:1883", "mqtt://h/path"])
def test_parse_mqtt_url_rejects(url):
    with pytest.raises(ValueError):
        parse_mqtt_url(url)


def test_files_named_in_a_config_are_relative_to_that_config(tmp_path):
    """A deployer's /etc/ioc/central.yaml names `routing.yaml` beside it; a config written before
    0.2 with `configs/routing.yaml` (relative to the checkout) still loads, with a deprecation
    warning naming the key."""
    from contract.paths import packaged_config as shipped

    (tmp_path / "routing.yaml").write_text(shipped("routing.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    (tmp_path / "ca.crt").write_text("x", encoding="utf-8")
    here = tmp_path / "central.yaml"
    here.write_text("reports: {routing_file: routing.yaml}\nmqtt: {ca_file: ca.crt}\n", encoding="utf-8")
    cfg = load_central_config(here)
    assert cfg.reports.routing_file == tmp_path / "routing.yaml" and cfg.mqtt.ca_file == tmp_path / "ca.crt"
    old = tmp_path / "old.yaml"
    old.write_text("reports: {routing_file: configs/routing.yaml}\n", encoding="utf-8")
    with pytest.warns(DeprecationWarning, match=r"old\.yaml: reports\.routing_file: 'configs/routing\.yaml'"):
        legacy = load_central_config(old)
    assert legacy.reports.routing_file == shipped("routing.yaml")
