"""The accounts `central.broker_security` makes, attacked on a private Mosquitto (issue 18), in
both forms it writes (dynamic-security plugin, password file + ACL):

- central's real alert dispatcher publishes police alerts under the generated ACL, and a police
  client with its own credentials receives them: its district's only, or all without a district;
- a police account can neither publish (events, alerts, signals) nor read events;
- a signal controller publishes its node's signal heads and nothing else; a node cannot publish
  police alerts;
- reserved and unsafe names (`central`, `alerts`, a name another account uses, `$SYS`, `+`, `#`,
  `a/b`) are refused with exit 2 and a message, no traceback, before any file is written.
"""

from __future__ import annotations

import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from central.alerts import AlertDispatcher
from central.broker_security import CENTRAL_USER, broker_files, main
from central.config import CentralConfig
from central.db import AlertRow, make_engine, make_session_factory, migrate
from contract.mqtt import Ack, MqttClient, MqttSettings
from contract.topics import event_topic
from edge.local_broker import LocalMosquitto
from tests.services import make_event, unique_name, wait_until
from tests.support.central import ingest_processor

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

PW = {name: secrets.token_urlsafe(16) for name in ("central", "node-a", "node-b", "police-hue", "police-all", "ctl-a")}
HUE, HOAN_KIEM = "Thành phố Huế", "Quận Hoàn Kiếm"


@pytest.fixture(scope="module", params=["dynsec", "acl-file"])
def broker(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalMosquitto]:
    """Both forms `broker_files` writes: the dynamic-security plugin (the default) and `--acl-file`."""
    folder = tmp_path_factory.mktemp("accounts")
    security = broker_files(
        folder / "security",
        {"node-a": PW["node-a"], "node-b": PW["node-b"]},
        PW["central"],
        prefix="ioc",
        tls=False,
        dynsec=request.param == "dynsec",
        police={"police-hue": (HUE, PW["police-hue"]), "police-all": (None, PW["police-all"])},
        controllers={"ctl-a": ("node-a", PW["ctl-a"])},
    )
    with LocalMosquitto(state_dir=folder / "state", security=security) as b:
        yield b


class Account:
    """One user's connection (contract.mqtt), subscribed to `topics`, recording what it receives.
    Each account but central's connects with its name as client id (the one its dynamic-security
    account allows)."""

    def __init__(self, url: str, user: str, topics: list[str] | None = None) -> None:
        self.received: list[str] = []
        self.subacks: list = []
        self.topics = topics or []
        self.mqtt = MqttClient(
            MqttSettings(url, unique_name("central-") if user == CENTRAL_USER else user, username=user,
                         password=PW[user]),
            on_connect=lambda *_a: self.mqtt.subscribe(self.topics) if self.topics else None,
            on_subscribed=self.subacks.append,
            on_message=lambda _c, _u, m: self.received.append(m.topic),
        )
        self.mqtt.start()
        wait_until(self.mqtt.connected.is_set, 10, what=f"{user} connected")
        if self.topics:
            wait_until(lambda: self.subacks, 10, what=f"{user} subscribed")

    def publish(self, topic: str) -> Ack:
        ack = self.mqtt.publish_wait(topic, b'{"state": "red"}', qos=1, timeout=10)
        assert ack is not None, f"no PUBACK for {topic}"
        return ack

    def close(self) -> None:
        self.mqtt.stop()


def test_alerts_reach_police_with_their_own_accounts_and_police_can_do_nothing_else(
    broker: LocalMosquitto, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'central.db'}"
    migrate(url)
    cfg = CentralConfig.model_validate(
        {
            "database_url": url,
            "evidence_dir": str(tmp_path / "ev"),
            "mqtt": {"url": broker.url, "topic_prefix": "ioc", "username": CENTRAL_USER, "password": PW["central"]},
            "web": {"public_url": "http://c.test"},
            "alerts": {"poll_interval_s": 0.1, "immediate_types": ["wrong_way"]},
        }
    )
    engine = make_engine(url)
    processor = ingest_processor(cfg, engine)
    # The police clients try to read everything as well; the broker delivers only what their
    # account allows (the dynamic-security form refuses those subscriptions at once).
    hue = Account(broker.url, "police-hue", ["ioc/alerts/thanh-pho-hue/#", "ioc/#", "#"])
    everyone = Account(broker.url, "police-all", ["ioc/alerts/#"])
    central_reader = Account(broker.url, "central", ["ioc/+/+/events/+"])
    node_a = Account(broker.url, "node-a")
    dispatcher = AlertDispatcher(cfg, engine).start()
    try:
        for district, camera in ((HUE, "cam-hue"), (HOAN_KIEM, "cam-hk")):
            ev = make_event(type="wrong_way", node="node-a", camera=camera,
                            location={"district": district, "ward": "P", "address": "1", "lat": 16.0, "lon": 107.0})
            processor.process(event_topic("ioc", "node-a", camera, "wrong_way"), ev.to_json().encode())
        want_hue, want_hk = "ioc/alerts/thanh-pho-hue/wrong_way", "ioc/alerts/quan-hoan-kiem/wrong_way"
        wait_until(lambda: want_hue in hue.received, 15, what="the Huế police client receives the alert")
        wait_until(lambda: {want_hue, want_hk} <= set(everyone.received), 15, what="the all-districts client")

        def alert_rows() -> list:
            with make_session_factory(engine)() as s:
                return list(s.scalars(select(AlertRow)))

        # The police may hold the message a moment before the dispatcher has recorded the PUBACK.
        wait_until(lambda: all(r.mqtt_sent_at is not None for r in alert_rows()), 10, what="alerts recorded as sent")
        rows = alert_rows()
        assert len(rows) == 2 and all(r.mqtt_sent_at is not None and r.last_error is None for r in rows)
        assert dispatcher.mqtt_refused == 0 and dispatcher.sent == 2

        # A node's event reaches central, not the police (subscribed to "#", it still gets nothing of it).
        event = "ioc/node-a/cam-1/events/illegal_stopping"
        assert node_a.publish(event).ok
        wait_until(lambda: event in central_reader.received, 10, what="central reads the node's event")
        # Police may publish nothing: no events (as any node), no alerts, no signals.
        for topic in (event, "ioc/police-hue/cam-1/events/illegal_stopping", want_hue, "ioc/node-a/cam-1/signal/h1"):
            ack = hue.publish(topic)
            assert not ack.ok and "Not authorized" in ack.reason, (topic, ack)
        # A node cannot publish police alerts either.
        assert not node_a.publish("ioc/alerts/thanh-pho-hue/red_light").ok
        assert set(hue.received) == {want_hue}, hue.received  # its district's alert only: no event, no other district
        assert sorted(everyone.received) == sorted([want_hue, want_hk])
    finally:
        dispatcher.stop()
        for c in (hue, everyone, central_reader, node_a):
            c.close()
        engine.dispose()


def test_a_signal_controller_publishes_its_nodes_signal_heads_and_nothing_else(broker: LocalMosquitto) -> None:
    node_a = Account(broker.url, "node-a", ["ioc/node-a/+/signal/+"])
    node_b = Account(broker.url, "node-b", ["ioc/node-b/+/signal/+"])
    central = Account(broker.url, "central", ["ioc/#"])
    controller = Account(broker.url, "ctl-a", ["#"])
    try:
        own = "ioc/node-a/cam-1/signal/head-1"
        assert controller.publish(own).ok
        wait_until(lambda: own in node_a.received, 10, what="node-a receives its controller's signal")
        for topic in (
            "ioc/node-b/cam-1/signal/head-1",  # another node's signal
            "ioc/node-a/cam-1/events/red_light",  # an event as its node
            "ioc/node-a/status",
            "ioc/node-a/cam-1/signal/head-1/x",  # deeper than a signal head
            "ioc/alerts/thanh-pho-hue/red_light",
            "ioc/ctl-a/cam-1/events/red_light",  # an event as a node named like itself
        ):
            ack = controller.publish(topic)
            assert not ack.ok and "Not authorized" in ack.reason, (topic, ack)
        assert node_a.publish("ioc/node-a/cam-1/health").ok
        wait_until(lambda: "ioc/node-a/cam-1/health" in central.received, 10, what="marker")
        assert node_b.received == [] and node_a.received == [own]
        assert [t for t in central.received if "/signal/" not in t] == ["ioc/node-a/cam-1/health"]
        assert controller.received == [], controller.received  # it reads nothing, not even its own
    finally:
        for c in (node_a, node_b, central, controller):
            c.close()


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--node", "central"], "reserved"),
        (["--node", "alerts"], "reserved"),
        (["--node", "central-ingest-1"], "reserved"),  # could be central's client id
        (["--node", "$SYS"], "not a valid id"),
        (["--node", "+"], "not a valid id"),
        (["--node", "#"], "not a valid id"),
        (["--node", "a/b"], "not a valid id"),
        (["--node", "Node-A"], "not a valid id"),
        (["--node", "node-a", "--node", "node-a"], "twice"),
        (["--node", "node-a", "--police", "node-a"], "two accounts"),
        (["--node", "node-a", "--controller", "node-a:node-a"], "two accounts"),
        (["--police", "central:Thành phố Huế"], "reserved"),
        (["--police", "alerts"], "reserved"),
        (["--node", "node-a", "--controller", "ctl:node-b"], "not one of the nodes"),
        (["--node", "node-a", "--controller", "ctl"], "NAME:NODE"),
        (["--node", "node-a", "--controller", "ctl/x:node-a"], "not a valid id"),
    ],
)
def test_reserved_and_unsafe_names_are_refused(
    args: list[str], says: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "broker"
    assert main(["--out", str(out), "--no-tls", *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and says in err and "Traceback" not in err, err
    assert not out.exists(), "files were written for a refused account"


def test_the_cli_exits_2_without_a_traceback(tmp_path: Path) -> None:
    for name in ("alerts", "a/b"):
        r = subprocess.run(
            [sys.executable, "-m", "central.broker_security", "--out", str(tmp_path / "b"), "--no-tls", "--node", name],
            capture_output=True, text=True, timeout=60,
        )
        assert r.returncode == 2 and "Traceback" not in r.stderr and r.stderr.startswith("error: "), r.stderr
    assert not (tmp_path / "b").exists()
