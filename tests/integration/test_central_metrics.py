"""GET /metrics on the real web server (uvicorn) beside a real ingester on Mosquitto: the values move
with the events, dead letters, reviews, alerts and node status that really went through; the
endpoint is closed to all but loopback clients, or to all but the bearer of `metrics.token`."""

from __future__ import annotations

import contextlib
import io
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from central.alerts import AlertDispatcher
from central.auth import User
from central.config import CentralConfig
from central.db import make_engine, make_session_factory, migrate
from central.ingester import Ingester
from central.services import review
from central.web import create_app
from contract.status import CameraHealth, NodeStatus
from contract.topics import event_topic, node_status_topic
from tests.integration.test_central_web import live_server
from tests.services import Publisher, make_event, unique_name, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

TOKEN = "metrics-scrape-token-0123456789"


@contextlib.contextmanager
def serve(app: Any) -> Iterator[str]:
    with live_server(app) as port:
        yield f"http://127.0.0.1:{port}"


def scrape(base: str, token: str | None = None) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    req = urllib.request.Request(f"{base}/metrics", headers={"Authorization": f"Bearer {token}"} if token else {})
    with urllib.request.urlopen(req, timeout=10) as r:
        assert r.headers["content-type"].startswith("text/plain")
        text = r.read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def status(code_of: Any) -> int:
    try:
        code_of()
    except urllib.error.HTTPError as e:
        return e.code
    return 200


@pytest.fixture
def cfg(sqlite_url: str, mqtt_broker: Any, tmp_path: Path) -> CentralConfig:
    migrate(sqlite_url)
    return CentralConfig.model_validate(
        {
            "database_url": sqlite_url,
            "mqtt": {"url": mqtt_broker.url, "topic_prefix": unique_name("m"), "share_group": unique_name("g")},
            "evidence_dir": str(tmp_path / "ev"),
            "review": {"undo_seconds": 0},  # the confirmation forwards and alerts at once
        }
    )


def test_metrics_follow_what_was_ingested(cfg: CentralConfig, mqtt_broker: Any) -> None:
    engine = make_engine(cfg.database_url)
    prefix = cfg.mqtt.topic_prefix
    ingester = Ingester(cfg, engine=engine, console=io.StringIO()).start()
    dispatcher = None
    try:
        assert ingester.wait_subscribed(10)
        with serve(create_app(cfg, engine=engine, ingester=ingester)) as base, Publisher(mqtt_broker.url) as pub:
            before = scrape(base)
            assert before[("ioc_central_ingest_stored_total", ())] == 0
            assert before[("ioc_central_ingest_dead_letters_total", (("reason", "not_json"),))] == 0
            assert before[("ioc_central_events", ())] == 0

            first, second = make_event(camera="cam-a"), make_event(camera="cam-b")
            for ev in (first, second, first):  # the third is a redelivery: a duplicate
                pub.publish(event_topic(prefix, ev.node, ev.camera, ev.type.value), ev.to_json())
            pub.publish(event_topic(prefix, "node-hue-01", "cam-a", "illegal_stopping"), b"{not json")
            now = datetime.now(UTC)
            cam = CameraHealth(
                node="node-hue-01", camera="cam-a", state="streaming", at=now, analysis_fps=4.5,
                analysis_fps_target=5.0, lag_ms_p50=250.0, lag_ms_max=900.0, overloaded=True, reconnects=3,
            )
            node = NodeStatus(
                node="node-hue-01", state="online", at=now, uptime_s=61.0, outbox_backlog=7, outbox_oldest_s=1.5,
                published=12, held_no_subscriber=0, cameras={"cam-a": cam},
            )
            pub.publish(node_status_topic(prefix, "node-hue-01"), node.to_json(), retain=True)
            wait_until(lambda: ingester.counters.status_updates == 1 and ingester.counters.dead_letters == 1
                       and ingester.counters.stored + ingester.counters.duplicates == 3, timeout=15,
                       what="all messages processed")

            after = scrape(base)
            assert after[("ioc_central_ingest_stored_total", ())] == 2
            assert after[("ioc_central_ingest_duplicates_total", ())] == 1
            assert after[("ioc_central_ingest_dead_letters_total", (("reason", "not_json"),))] == 1
            assert after[("ioc_central_ingest_batches_total", ())] >= 1
            assert after[("ioc_central_ingest_mqtt_connected", ())] == 1
            assert after[("ioc_central_dead_letters", (("reason", "not_json"),))] == 1
            assert after[("ioc_central_events", ())] == 2
            assert after[("ioc_central_reports", (("status", "new"), ("type", "illegal_stopping")))] == 2
            labels = (("node", "node-hue-01"),)
            assert after[("ioc_node_up", labels)] == 1 and after[("ioc_node_outbox_backlog", labels)] == 7
            assert after[("ioc_node_uptime_seconds", labels)] == 61.0
            cam_labels = (("camera", "cam-a"), ("node", "node-hue-01"))
            assert after[("ioc_camera_analysis_fps", cam_labels)] == 4.5
            assert after[("ioc_camera_analysis_fps_target", cam_labels)] == 5.0
            assert after[("ioc_camera_lag_p50_seconds", cam_labels)] == 0.25
            assert after[("ioc_camera_overloaded", cam_labels)] == 1
            assert after[("ioc_camera_reconnects", cam_labels)] == 3

            # A review in the console: the action, the forward and the alert are counted; then sent.
            review.act(make_session_factory(engine), cfg, 1, "confirm", User(1, "op", "operator", ()), None)
            reviewed = scrape(base)
            assert reviewed[("ioc_central_review_actions_total", (("action", "confirm"), ("by", "user")))] == 1
            assert reviewed[("ioc_central_review_actions_total", (("action", "forward"), ("by", "system")))] == 1
            assert reviewed[("ioc_central_alerts_queued_total", ())] == 1
            assert reviewed[("ioc_central_alerts", (("state", "pending"),))] == 1
            assert reviewed[("ioc_central_reports", (("status", "forwarded"), ("type", "illegal_stopping")))] == 1
            dispatcher = AlertDispatcher(cfg, engine).start()
            wait_until(lambda: dispatcher.sent == 1, timeout=15, what="the alert sent over MQTT")
            sent = scrape(base)
            assert sent[("ioc_central_alerts", (("state", "sent"),))] == 1
            assert sent[("ioc_central_alerts", (("state", "pending"),))] == 0
    finally:
        if dispatcher is not None:
            dispatcher.stop()
        ingester.stop()
        engine.dispose()


def test_metrics_need_the_token_when_one_is_set(cfg: CentralConfig) -> None:
    cfg = cfg.model_copy(update={"metrics": cfg.metrics.model_copy(update={"token": TOKEN})})
    engine = make_engine(cfg.database_url)
    try:
        with serve(create_app(cfg, engine=engine)) as base:
            assert status(lambda: scrape(base)) == 401  # loopback is not enough once a token is configured
            assert status(lambda: scrape(base, "wrong-token-wrong-token")) == 401
            values = scrape(base, TOKEN)
            assert ("ioc_central_events", ()) in values
            assert ("ioc_central_ingest_stored_total", ()) not in values  # no ingester in this process
    finally:
        engine.dispose()


def test_metrics_are_closed_to_other_hosts_without_a_token(cfg: CentralConfig) -> None:
    engine = make_engine(cfg.database_url)
    try:
        # TestClient's peer is "testclient", not a loopback address: like a scraper on another host.
        r = TestClient(create_app(cfg, engine=engine)).get("/metrics")
        assert r.status_code == 403 and "metrics.token" in r.json()["detail"]
    finally:
        engine.dispose()
