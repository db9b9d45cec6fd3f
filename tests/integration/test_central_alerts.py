"""Police alerts end to end on a real Mosquitto: confirmed (or immediate) traffic violations reach
the district's MQTT topic and its signed webhook within seconds, and the police view's feed."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from central.alerts import SIGNATURE_HEADER, TIMESTAMP_HEADER, AlertDispatcher, verify
from central.config import CentralConfig
from central.db import AlertRow, make_engine, make_session_factory
from central.ingester import MessageProcessor
from central.web import create_app
from contract.topics import event_topic, parse_mqtt_url
from tests.services import make_event, unique_name, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

SECRET = "webhook-secret-0123456789"


class Hook:
    def __init__(self) -> None:
        self.calls: list[tuple[dict[str, str], bytes]] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                hook.calls.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *_a: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Subscriber:
    def __init__(self, url: str, topic: str) -> None:
        host, port, _ = parse_mqtt_url(url)
        self.messages: list[tuple[str, bytes, float]] = []
        self.ready = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=unique_name("sub-"), protocol=mqtt.MQTTv5)
        self.client.on_connect = lambda c, *_a: c.subscribe(topic, qos=1)
        self.client.on_subscribe = lambda *_a: self.ready.set()
        self.client.on_message = lambda _c, _u, m: self.messages.append((m.topic, bytes(m.payload), time.monotonic()))
        self.client.connect(host, port)
        self.client.loop_start()
        assert self.ready.wait(10), "subscriber did not subscribe"

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def hook() -> Iterator[Hook]:
    h = Hook()
    yield h
    h.close()


def _cfg(url: str, broker: Any, tmp_path: Path, hook: Hook, **extra: Any) -> CentralConfig:
    return CentralConfig.model_validate(
        {
            "database_url": url,
            "evidence_dir": str(tmp_path / "ev"),
            "mqtt": {"url": broker.url, "topic_prefix": unique_name("t")},
            "web": {"public_url": "http://c.test"},
            "review": {"undo_seconds": 0},  # the latency measured is the dispatcher's, not the undo window
            "alerts": {
                "poll_interval_s": 0.1,
                "webhooks": [
                    {"url": hook.url, "secret": SECRET, "districts": ["Thành phố Huế"]},
                    {"url": hook.url + "-hk", "secret": SECRET, "districts": ["Quận Hoàn Kiếm"]},
                ],
                **extra,
            },
        }
    )


def _login(client: TestClient, user: str) -> str:
    import re

    from tests.conftest import CONSOLE_PASSWORD

    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text).group(1)
    client.post("/login", data={"username": user, "password": CONSOLE_PASSWORD, "csrf_token": token})
    return client.get("/api/me").json()["csrf"]


def test_confirmed_traffic_violation_reaches_district_police_within_seconds(
    central_database_url: str, central_users: Any, mqtt_broker: Any, tmp_path: Path, hook: Hook
) -> None:
    cfg = _cfg(central_database_url, mqtt_broker, tmp_path, hook)
    engine = make_engine(cfg.database_url)
    processor = MessageProcessor(
        make_session_factory(engine),
        dialect_name=engine.dialect.name,
        evidence_dir=cfg.evidence_dir,
        topic_prefix=cfg.mqtt.topic_prefix,
        config=cfg,
    )
    event = make_event(
        type="red_light",
        evidence=[
            {"kind": "snapshot", "media_type": "image/jpeg", "sha256": "a" * 64, "size": 100},
            {"kind": "plate", "media_type": "image/jpeg", "sha256": "d" * 64, "size": 50},
        ],
    )
    out = processor.process(
        event_topic(cfg.mqtt.topic_prefix, event.node, event.camera, "red_light"), event.to_json().encode()
    )
    rid = out.report_id
    sub = Subscriber(mqtt_broker.url, f"{cfg.mqtt.topic_prefix}/alerts/#")
    dispatcher = AlertDispatcher(cfg, engine).start()
    try:
        time.sleep(0.5)
        assert not sub.messages and not hook.calls  # nothing before an operator confirms
        op = TestClient(create_app(cfg, engine=engine))
        csrf = _login(op, "op")
        confirmed_at = time.monotonic()
        assert op.post(f"/api/reports/{rid}/confirm", headers={"X-CSRF-Token": csrf}).status_code == 200
        wait_until(lambda: sub.messages and hook.calls, timeout=10, what="MQTT alert and webhook")
        topic, payload, got_at = sub.messages[0]
        latency = got_at - confirmed_at
        assert latency < 5, f"alert after {latency:.1f} s"
        print(f"alert latency: confirm -> MQTT message {latency * 1000:.0f} ms")  # shown with -s
        assert topic == f"{cfg.mqtt.topic_prefix}/alerts/thanh-pho-hue/red_light"
        body = json.loads(payload)
        assert body["report_id"] == rid and body["plate"] == "75A-123.45"
        assert body["snapshot_url"].startswith("http://c.test/evidence/" + "a" * 64 + "?t=")
        assert body["plate_url"].startswith("http://c.test/evidence/" + "d" * 64 + "?t=")
        assert body["place"]["district"] == "Thành phố Huế" and body["place"]["lat"] == pytest.approx(16.4637)
        assert body["first_seen"] == event.started_at.isoformat()
        (headers, raw) = hook.calls[0]
        assert json.loads(raw) == body
        ts, sig = headers[TIMESTAMP_HEADER.lower()], headers[SIGNATURE_HEADER.lower()]
        assert verify(SECRET, ts, raw, sig)
        assert not verify(SECRET + "x", ts, raw, sig)
        assert len(hook.calls) == 1  # the Hoàn Kiếm webhook is not told about Huế
        # The police view's feed: Huế police see it, Hoàn Kiếm police do not.
        for user, want in (("police-hue", [rid]), ("police-hk", [])):
            c = TestClient(create_app(cfg, engine=engine))
            _login(c, user)
            assert [a["report_id"] for a in c.get("/api/alerts").json()["alerts"]] == want, user
        with make_session_factory(engine)() as s:
            (row,) = s.scalars(select(AlertRow))
        assert row.mqtt_sent_at is not None and row.webhooks_done_at is not None and row.last_error is None
    finally:
        dispatcher.stop()
        sub.close()
        engine.dispose()


def test_immediate_types_alert_before_review_and_a_dead_webhook_is_retried(
    central_database_url: str, central_users: Any, mqtt_broker: Any, tmp_path: Path, hook: Hook
) -> None:
    cfg = _cfg(central_database_url, mqtt_broker, tmp_path, hook, immediate_types=["wrong_way"])
    engine = make_engine(cfg.database_url)
    processor = MessageProcessor(
        make_session_factory(engine),
        dialect_name=engine.dialect.name,
        evidence_dir=cfg.evidence_dir,
        topic_prefix=cfg.mqtt.topic_prefix,
        config=cfg,
    )
    hook.server.shutdown()  # the webhook is down when the alert is made
    hook.server.server_close()
    sub = Subscriber(mqtt_broker.url, f"{cfg.mqtt.topic_prefix}/alerts/thanh-pho-hue/#")
    dispatcher = AlertDispatcher(cfg, engine).start()
    try:
        ev = make_event(type="wrong_way")
        processor.process(event_topic(cfg.mqtt.topic_prefix, ev.node, ev.camera, "wrong_way"), ev.to_json().encode())
        stop = make_event(type="illegal_stopping", camera="c9")
        processor.process(
            event_topic(cfg.mqtt.topic_prefix, stop.node, stop.camera, "illegal_stopping"), stop.to_json().encode()
        )
        wait_until(lambda: sub.messages, timeout=10, what="immediate MQTT alert")
        time.sleep(0.5)
        assert [t.rsplit("/", 1)[1] for t, _, _ in sub.messages] == ["wrong_way"]  # not the unconfirmed stop

        def row() -> AlertRow:
            with make_session_factory(engine)() as s:
                return s.scalars(select(AlertRow)).one()

        wait_until(lambda: row().attempts >= 2, timeout=10, what="webhook retries")
        assert row().webhooks_done_at is None and "webhook" in (row().last_error or "")
        assert len(sub.messages) == 1  # MQTT went out once; only the webhook is retried
        revived = Hook()  # the receiver comes back on a new port: point the config at it
        try:
            cfg.alerts.webhooks[0].url = revived.url
            wait_until(lambda: revived.calls, timeout=10, what="webhook delivered after retry")
            wait_until(lambda: row().webhooks_done_at is not None, timeout=5, what="alert marked done")
        finally:
            revived.close()
    finally:
        dispatcher.stop()
        sub.close()
        engine.dispose()
