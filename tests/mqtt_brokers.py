"""Private Mosquittos for the MQTT client's tests: passwords + ACL + TLS (central.broker_security),
or the dynamic-security plugin (which refuses SUBSCRIBEs), and a listener on central's user.

A test module takes the fixtures as module attributes: `secured = mqtt_brokers.secured`."""

from __future__ import annotations

import glob
import json
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from central.broker_security import CENTRAL_USER, BrokerSecurity, secure_broker_files
from contract.mqtt import MqttClient, MqttSettings
from edge.local_broker import LocalMosquitto
from tests.services import unique_name, wait_until

NODE_PASSWORD = secrets.token_urlsafe(16)
CENTRAL_PASSWORD = secrets.token_urlsafe(16)
EVENT_TOPIC = "ioc/node-a/cam-1/events/illegal_stopping"


@pytest.fixture
def secured(tmp_path: Path) -> Iterator[tuple[LocalMosquitto, BrokerSecurity]]:
    """Passwords, the ACL and a TLS listener; its own broker per test: tests rewrite the ACL and restart it."""
    security = secure_broker_files(tmp_path / "security", {"node-a": NODE_PASSWORD}, CENTRAL_PASSWORD, prefix="ioc")
    with LocalMosquitto(state_dir=tmp_path / "state", security=security) as broker:
        yield broker, security


class Listener:
    """Central's user reading `ioc/#` through the wrapper (it subscribes again after a reconnect)."""

    def __init__(self, url: str, ca_file: Path | None = None) -> None:
        self.topics: list[str] = []
        self.subacks: list = []
        self.mqtt = MqttClient(
            MqttSettings(url, unique_name("listen-"), username=CENTRAL_USER, password=CENTRAL_PASSWORD, ca_file=ca_file),
            on_connect=lambda *_a: self.mqtt.subscribe(["ioc/#"]),
            on_subscribed=self.subacks.append,
            on_message=lambda _c, _u, m: self.topics.append(m.topic),
        ).start()
        wait_until(lambda: self.subacks, 10, what="listener subscribed")

    def close(self) -> None:
        self.mqtt.stop()


class DynamicSecurity:
    """What LocalMosquitto needs of a `security`: here the dynamic-security plugin, whose one
    client (made by `mosquitto_ctrl dynsec init`) may subscribe to the plugin's and $SYS topics
    only, so the broker refuses its SUBSCRIBEs to anything else with SUBACK "Not authorized"."""

    tls = False

    def __init__(self, folder: Path, user: str, password: str) -> None:
        plugins = glob.glob("/usr/lib/*/mosquitto_dynamic_security.so") + glob.glob("/usr/lib/mosquitto_dynamic_security.so")
        if not plugins:
            pytest.fail("mosquitto's dynamic-security plugin is missing (Debian package mosquitto)", pytrace=False)
        self.plugin = plugins[0]
        folder.mkdir(parents=True, exist_ok=True)
        self.config_file = folder / "dynamic-security.json"
        subprocess.run(
            ["mosquitto_ctrl", "dynsec", "init", str(self.config_file), user, password],
            check=True, capture_output=True,
        )
        # `init` lets its admin subscribe to "#": take that away, leaving the default (no subscribe).
        config = json.loads(self.config_file.read_text(encoding="utf-8"))
        assert config["defaultACLAccess"]["subscribe"] is False
        for role in config["roles"]:
            role["acls"] = [a for a in role["acls"] if not (a["acltype"] == "subscribePattern" and a["topic"] == "#")]
        self.config_file.write_text(json.dumps(config), encoding="utf-8")

    def mosquitto_lines(self, tls_port: int | None, host: str) -> list[str]:  # no TLS listener here
        return ["allow_anonymous false", f"plugin {self.plugin}", f"plugin_opt_config_file {self.config_file}"]


@pytest.fixture
def refusing(tmp_path: Path) -> Iterator[LocalMosquitto]:
    """A broker that refuses user node-a's SUBSCRIBEs (SUBACK "Not authorized")."""
    security = DynamicSecurity(tmp_path / "dynsec", "node-a", NODE_PASSWORD)
    with LocalMosquitto(state_dir=tmp_path / "state", security=security) as broker:
        yield broker
