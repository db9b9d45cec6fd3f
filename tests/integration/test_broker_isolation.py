"""A stolen node credential against the broker configuration `central.broker_security` generates
(the dynamic-security plugin), on a private Mosquitto with central's real ingester (issue 18,
defects 1 and 2). Node B publishes; node A's credential is the attacker's.

- Client-id takeover: with central stopped, node A connecting as central's client id (clean start,
  or resuming) is refused, so central's queued session survives: 100 of 100 stored after central
  restarts. The same attack on the password-file + ACL form loses them (shown, to prove the test).
- Shared-subscription hijack: node A's `$share/<central's group>/...` subscription is refused
  (SUBACK "Not authorized"), also with a long session expiry: 40 of 40 stored. On the
  password-file + ACL form it is granted and events are lost (shown, to prove the test).
- Every account but central's (node, police client, signal controller) connects with its own
  name as client id only: never as central's, another node's or a made-up one.
- Legitimate use is unchanged: the node publishes with its own client id, central ingests over its
  shared subscription.
- A stolen box's node is revoked and a node's password rotated in the generated config (the CLI's
  `--revoke` / `--rotate`): after a broker restart the old password and the revoked node are
  refused, the new password and every other account work.
"""

from __future__ import annotations

import contextlib
import io
import secrets
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from sqlalchemy import func, select

from central.broker_security import CENTRAL_USER, dynsec_broker_files, main, secure_broker_files
from central.config import CentralConfig
from central.db import EventRow, make_engine, migrate
from central.ingester import Ingester
from contract.mqtt import Will
from contract.topics import event_topic
from edge.config import MqttConfig as EdgeMqttConfig
from edge.local_broker import LocalMosquitto
from edge.outbox import Outbox, OutboxMessage
from edge.publisher import MqttPublisher
from tests.services import make_event, unique_name, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

PW = {name: secrets.token_urlsafe(16) for name in ("central", "node-a", "node-b", "police-hue", "ctl-a")}
CENTRAL_ID = "central-ingest-1"  # a stable `mqtt.client_id`, as production sets it
GROUP = "central"


def _broker(tmp_path: Path, form: str) -> LocalMosquitto:
    make = dynsec_broker_files if form == "dynsec" else secure_broker_files
    security = make(tmp_path / "security", {"node-a": PW["node-a"], "node-b": PW["node-b"]}, PW["central"],
                    prefix="ioc", tls=False)
    return LocalMosquitto(state_dir=tmp_path / "state", security=security)


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[LocalMosquitto]:
    with _broker(tmp_path, "dynsec") as b:
        yield b


class Conn:
    """One paho connection as `user` with `client_id`; records CONNACK, SUBACK codes and messages."""

    def __init__(
        self, port: int, user: str, client_id: str, *, clean_start: bool = True, expiry: int = 0,
        password: str | None = None,
    ) -> None:
        self.connack = threading.Event()
        self.reason: Any = None
        self.suback: list[Any] = []
        self.subscribed = threading.Event()
        self.c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
        self.c.username_pw_set(user, password or PW[user])
        self.c.on_connect = self._on_connect
        self.c.on_subscribe = self._on_subscribe
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = expiry
        self.c.connect("127.0.0.1", port, clean_start=clean_start, properties=props)
        self.c.loop_start()
        assert self.connack.wait(10), f"no CONNACK for {user} as {client_id}"

    def _on_connect(self, _c: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        self.reason = reason
        self.connack.set()

    def _on_subscribe(self, _c: Any, _u: Any, _mid: int, codes: list[Any], _p: Any) -> None:
        self.suback.extend(codes)
        self.subscribed.set()

    def publish_events(self, node: str, n: int) -> None:
        for i in range(n):
            ev = make_event(node=node, camera=f"cam-{i % 7}", started_at=make_event().started_at)
            info = self.c.publish(event_topic("ioc", node, ev.camera, ev.type.value), ev.to_json().encode(), qos=1)
            info.wait_for_publish(10)
            assert info.is_published()

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()


def _config(broker: LocalMosquitto, tmp_path: Path) -> CentralConfig:
    url = f"sqlite:///{tmp_path / 'central.db'}"
    migrate(url)
    return CentralConfig.model_validate(
        {
            "database_url": url,
            "evidence_dir": str(tmp_path / "ev"),
            "mqtt": {"url": broker.url, "topic_prefix": "ioc", "share_group": GROUP, "client_id": CENTRAL_ID,
                     "username": CENTRAL_USER, "password": PW["central"], "session_expiry_s": 600},
            "web": {"public_url": "http://c.test"},
        }
    )


def _ingester(cfg: CentralConfig) -> Ingester:
    ing = Ingester(cfg, console=io.StringIO(), reconnect_max_s=1).start()
    assert ing.wait_subscribed(10), f"central did not subscribe: {ing.mqtt_status()}"
    return ing


def _stored(cfg: CentralConfig) -> int:
    engine = make_engine(cfg.database_url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(EventRow)).scalar_one())
    finally:
        engine.dispose()


def _stored_within(cfg: CentralConfig, want: int, timeout_s: float) -> int:
    """Events stored once `want` are, or when `timeout_s` ran out (the test then says how many)."""
    with contextlib.suppress(AssertionError):
        wait_until(lambda: _stored(cfg) >= want, timeout_s, what=f"{want} events stored")
    return _stored(cfg)


def _takeover(broker: LocalMosquitto, cfg: CentralConfig, wait_s: float) -> tuple[int, list[Any]]:
    """Central stops (its session stays), node B publishes 100 events, node A connects as central's
    client id (clean start, then resuming); central restarts. -> (stored, node A's CONNACKs)."""
    _ingester(cfg).stop()
    node_b = Conn(broker.port, "node-b", "node-b")
    assert not node_b.reason.is_failure, node_b.reason
    node_b.publish_events("node-b", 100)
    reasons = []
    for clean in (True, False):
        attacker = Conn(broker.port, "node-a", CENTRAL_ID, clean_start=clean, expiry=0)
        reasons.append(attacker.reason)
        attacker.close()
    node_b.close()
    ing = _ingester(cfg)
    try:
        return _stored_within(cfg, 100, wait_s), reasons
    finally:
        ing.stop()


def test_a_node_cannot_take_over_centrals_session(broker: LocalMosquitto, tmp_path: Path) -> None:
    stored, reasons = _takeover(broker, _config(broker, tmp_path), 15)
    assert all(r.is_failure for r in reasons), f"node A was let in as central's client id: {reasons}"
    assert stored == 100, f"{stored} of 100 stored"


def test_the_takeover_loses_events_on_the_acl_file_form(tmp_path: Path) -> None:
    """The attack is real: on the password-file + ACL broker node A gets in and events are lost."""
    with _broker(tmp_path, "acl") as acl_broker:
        stored, reasons = _takeover(acl_broker, _config(acl_broker, tmp_path), 5)
    assert not reasons[0].is_failure and stored < 100, (reasons, stored)


def _share_hijack(broker: LocalMosquitto, cfg: CentralConfig, wait_s: float) -> tuple[list[Any], int]:
    """Central runs; node A subscribes to central's shared group (its own client id, a long session
    expiry) and leaves; node B publishes 40 events. -> (node A's SUBACK codes, events stored)."""
    ing = _ingester(cfg)
    attacker = Conn(broker.port, "node-a", "node-a", clean_start=False, expiry=3600)  # its own id: let in
    node_b = Conn(broker.port, "node-b", "node-b")
    try:
        assert not attacker.reason.is_failure, attacker.reason
        attacker.c.subscribe([(f"$share/{GROUP}/{t}", 1) for t in ("ioc/+/+/events/+", "ioc/#", "#")])
        assert attacker.subscribed.wait(10)
        attacker.close()  # gone, its session kept for the hour the attacker chose
        node_b.publish_events("node-b", 40)
        return attacker.suback, _stored_within(cfg, 40, wait_s)
    finally:
        node_b.close()
        ing.stop()


def test_a_nodes_share_subscription_is_refused_and_loses_nothing(broker: LocalMosquitto, tmp_path: Path) -> None:
    suback, stored = _share_hijack(broker, _config(broker, tmp_path), 20)
    assert len(suback) == 3 and all(c.is_failure and "Not authorized" in str(c) for c in suback), suback
    assert stored == 40, f"{stored} of 40 stored"


def test_the_share_hijack_loses_events_on_the_acl_file_form(tmp_path: Path) -> None:
    with _broker(tmp_path, "acl") as acl_broker:
        suback, stored = _share_hijack(acl_broker, _config(acl_broker, tmp_path), 5)
    assert not any(c.is_failure for c in suback) and stored < 40, (suback, stored)


def test_every_account_but_centrals_connects_with_its_own_client_id_only(tmp_path: Path) -> None:
    """Also police clients and signal controllers (a controller stands in the street too)."""
    security = dynsec_broker_files(
        tmp_path / "security", {"node-a": PW["node-a"], "node-b": PW["node-b"]}, PW["central"], tls=False,
        police={"police-hue": ("Thành phố Huế", PW["police-hue"])}, controllers={"ctl-a": ("node-a", PW["ctl-a"])},
    )
    with LocalMosquitto(state_dir=tmp_path / "state", security=security) as broker:
        conns = {
            (user, client_id): Conn(broker.port, user, client_id)
            for user in ("node-a", "police-hue", "ctl-a")
            for client_id in (user, "node-b", CENTRAL_ID, unique_name(f"edge-{user}-"))
        }
        try:
            refused = sorted(k for k, c in conns.items() if c.reason.is_failure)
            assert refused == sorted(k for k in conns if k[0] != k[1]), refused
        finally:
            for c in conns.values():
                c.close()


def test_rotating_and_revoking_a_nodes_credentials(broker: LocalMosquitto, tmp_path: Path) -> None:
    """A stolen box: its node is revoked, another node's password rotated; the broker restarted."""
    folder = tmp_path / "security"
    assert main(["--out", str(folder), "--rotate", "node-a", "--revoke", "node-b"]) == 0
    new_password = (folder / "secrets" / "node-a.password").read_text(encoding="utf-8").strip()
    assert new_password != PW["node-a"] and oct((folder / "secrets" / "node-a.password").stat().st_mode)[-3:] == "600"
    broker.restart()
    old = Conn(broker.port, "node-a", "node-a")
    new = Conn(broker.port, "node-a", "node-a", password=new_password)
    revoked = Conn(broker.port, "node-b", "node-b")
    central = Conn(broker.port, "central", CENTRAL_ID)
    try:
        assert old.reason.is_failure and revoked.reason.is_failure
        assert not new.reason.is_failure and not central.reason.is_failure  # nothing else changed
    finally:
        for c in (old, new, revoked, central):
            c.close()
    assert main(["--out", str(folder), "--rotate", "node-z"]) == 2  # no such account: an error, no traceback


def test_the_edge_publisher_with_its_node_config_delivers_under_the_generated_config(
    broker: LocalMosquitto, tmp_path: Path
) -> None:
    """Legitimate use: a node configured as the docs say (`mqtt.client_id` = node id, its password)
    publishes through its outbox, with its last will, and central's ingester stores the events."""
    cfg = _config(broker, tmp_path)
    ing = _ingester(cfg)
    node_mqtt = EdgeMqttConfig(url=broker.url, client_id="node-b", password=PW["node-b"])
    outbox = Outbox(tmp_path / "outbox.sqlite3")
    will = Will("ioc/node-b/status", b'{"state": "offline"}')
    pub = MqttPublisher(outbox, node_mqtt.client_settings(node_mqtt.client_id or "", "node-b", will))
    try:
        pub.start()
        events = [make_event(node="node-b", camera=f"cam-{i}") for i in range(5)]
        outbox.put([OutboxMessage(event_topic("ioc", "node-b", e.camera, e.type.value), e.to_json().encode())
                    for e in events])
        pub.notify()
        wait_until(lambda: _stored(cfg) == 5 and outbox.backlog() == 0, 15, what="the node's events stored")
        assert pub.refused == 0
    finally:
        pub.stop()
        outbox.close()
        ing.stop()
