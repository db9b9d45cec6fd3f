"""Central's users of the shared MQTT client (contract.mqtt) on private Mosquittos:

- a police alert whose PUBACK an ACL refuses is not marked sent, the failure is logged, and it
  is sent on a later try once the ACL allows it (over mqtts:// with central's `mqtt.ca_file` and
  `mqtt.password_file`);
- the ingester's refused subscriptions (SUBACK >= 0x80, from a broker running the
  dynamic-security plugin) are errors in the log and in `mqtt_status()`, and it is not subscribed.
"""

from __future__ import annotations

import io
import logging
import time

import pytest
from sqlalchemy import select

from central.alerts import AlertDispatcher
from central.config import CentralConfig
from central.db import AlertRow, make_engine, make_session_factory, migrate
from central.ingester import Ingester
from contract.topics import event_topic
from tests import mqtt_brokers
from tests.mqtt_brokers import (
    CENTRAL_PASSWORD,
    CENTRAL_USER,
    NODE_PASSWORD,
    Listener,
)
from tests.services import make_event, wait_until
from tests.support.central import ingest_processor

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


secured, refusing = mqtt_brokers.secured, mqtt_brokers.refusing  # fixtures


def _alert_rows(engine) -> list[AlertRow]:
    with make_session_factory(engine)() as s:
        return list(s.scalars(select(AlertRow)))


def test_alert_refused_by_the_acl_is_not_marked_sent_and_is_retried(secured, tmp_path, caplog):
    broker, security = secured
    generated = security.acl_file.read_text(encoding="utf-8")
    # An ACL that lets central read only (as the project's did before issue 18): alerts are refused.
    security.acl_file.write_text(generated.replace("topic write ioc/alerts/#\n", ""), encoding="utf-8")
    broker.restart()
    assert broker.tls_url
    url = f"sqlite:///{tmp_path / 'central.db'}"
    migrate(url)
    password_file = tmp_path / "central.password"
    password_file.write_text(CENTRAL_PASSWORD + "\n", encoding="utf-8")
    cfg = CentralConfig.model_validate(
        {
            "database_url": url,
            "evidence_dir": str(tmp_path / "ev"),
            # Over TLS with central's own CA file and its password from a file.
            "mqtt": {"url": broker.tls_url, "topic_prefix": "ioc", "username": CENTRAL_USER,
                     "password_file": str(password_file), "ca_file": str(security.ca_file)},
            "web": {"public_url": "http://c.test"},
            "alerts": {"poll_interval_s": 0.2, "max_attempts": 1000, "immediate_types": ["wrong_way"]},
        }
    )
    engine = make_engine(url)
    processor = ingest_processor(cfg, engine)
    ev = make_event(type="wrong_way", node="node-a")
    processor.process(event_topic("ioc", ev.node, ev.camera, "wrong_way"), ev.to_json().encode())
    assert len(_alert_rows(engine)) == 1
    listener = Listener(broker.tls_url, security.ca_file)
    caplog.set_level(logging.INFO, logger="central.alerts")
    dispatcher = AlertDispatcher(cfg, engine).start()
    try:
        wait_until(lambda: _alert_rows(engine)[0].attempts >= 1, 15, what="refused alert")
        first = time.monotonic()
        wait_until(lambda: _alert_rows(engine)[0].attempts >= 2, 15, what="refused alert tried again")
        # Tried again after a backoff (1 s, doubling), not on every 0.2 s poll.
        assert time.monotonic() - first >= 0.8
        (row,) = _alert_rows(engine)
        assert row.mqtt_sent_at is None, "a refused PUBACK was recorded as sent"
        assert "refused" in (row.last_error or "") and "Not authorized" in (row.last_error or "")
        assert dispatcher.mqtt_refused >= 2 and dispatcher.sent == 0
        assert not [t for t in listener.topics if t.startswith("ioc/alerts/")]
        logged = [r.getMessage() for r in caplog.records]
        assert any("alert_not_sent" in m and "Not" in m for m in logged), logged
        assert not any("alert_sent" in m for m in logged)
        # Central is allowed to write police alerts: the pending alert goes out on a later try.
        security.acl_file.write_text(generated, encoding="utf-8")  # the generated ACL allows it
        broker.restart()
        wait_until(lambda: _alert_rows(engine)[0].mqtt_sent_at is not None, 40, what="alert sent once allowed")
        wait_until(lambda: [t for t in listener.topics if t.startswith("ioc/alerts/")], 10, what="alert received")
        alerts = [t for t in listener.topics if t.startswith("ioc/alerts/")]
        assert alerts and alerts[0].endswith("/wrong_way")
        assert _alert_rows(engine)[0].last_error is None and dispatcher.sent == 1
    finally:
        dispatcher.stop()
        listener.close()
        engine.dispose()


def test_ingester_refused_subscriptions_are_errors_in_log_and_status(refusing, tmp_path, caplog):
    caplog.set_level(logging.ERROR, logger="central.ingester")
    url = f"sqlite:///{tmp_path / 'central.db'}"
    migrate(url)
    cfg = CentralConfig.model_validate(
        {"database_url": url, "evidence_dir": str(tmp_path / "ev"),
         "mqtt": {"url": refusing.url, "topic_prefix": "ioc", "username": "node-a", "password": NODE_PASSWORD}}
    )
    ingester = Ingester(cfg, console=io.StringIO()).start()
    try:
        wait_until(lambda: ingester.mqtt_status()["subscriptions_refused"], 10, what="ingester's refused SUBACK")
        refused = ingester.mqtt_status()["subscriptions_refused"]
        assert set(refused) == set(ingester.topics) and set(refused.values()) == {"Not authorized"}
        assert ingester.mqtt_status()["connected"] and not ingester.subscribed.is_set()
        errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
        assert any("mqtt_subscribe_failed" in m and "Not authorized" in m for m in errors), errors
    finally:
        ingester.stop()
