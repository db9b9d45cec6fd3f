"""The ingester against a real Mosquitto and both databases (SQLite, PostgreSQL)."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from central.config import CentralConfig
from central.db import (
    DeadLetterRow,
    EventRow,
    EvidenceRow,
    NodeStatusRow,
    ReportEventRow,
    ReportRow,
    make_engine,
)
from central.evidence import sha256_hex
from central.ingester import Ingester
from central.web import create_app
from contract.topics import camera_health_topic, event_topic, evidence_topic, node_status_topic
from edge.local_broker import LocalMosquitto
from tests.services import Publisher, fake_jpeg, make_event, signed_evidence_path, unique_name, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


@pytest.fixture
def cfg(central_database_url: str, mqtt_broker: Any, tmp_path: Path) -> CentralConfig:
    # Own topic prefix and share group per test: tests share one broker session.
    return CentralConfig.model_validate(
        {
            "database_url": central_database_url,
            "mqtt": {"url": mqtt_broker.url, "topic_prefix": unique_name("t"), "share_group": unique_name("g")},
            "evidence_dir": str(tmp_path / "evidence"),
            "web": {"public_url": "http://central.test"},
        }
    )


@pytest.fixture
def publisher(mqtt_broker: Any) -> Iterator[Publisher]:
    with Publisher(mqtt_broker.url) as pub:
        yield pub


def _ingester(cfg: CentralConfig, **kwargs: Any) -> Ingester:
    kwargs.setdefault("console", io.StringIO())
    ing = Ingester(cfg, **kwargs).start()
    assert ing.wait_subscribed(10), "ingester did not subscribe"
    return ing


def _count(cfg: CentralConfig, model: Any) -> int:
    engine = make_engine(cfg.database_url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(model)).scalar_one())
    finally:
        engine.dispose()


def _rows(cfg: CentralConfig, stmt: Any) -> list[Any]:
    engine = make_engine(cfg.database_url)
    try:
        with engine.connect() as conn:
            return list(conn.execute(stmt))
    finally:
        engine.dispose()


def _publish_event(pub: Publisher, cfg: CentralConfig, event: Any) -> None:
    pub.publish(event_topic(cfg.mqtt.topic_prefix, event.node, event.camera, event.type.value), event.to_json())


def test_valid_event_is_stored_with_its_report(cfg: CentralConfig, publisher: Publisher) -> None:
    console = io.StringIO()
    event = make_event()
    ing = _ingester(cfg, console=console)
    try:
        _publish_event(publisher, cfg, event)
        wait_until(lambda: ing.counters.stored == 1, what="event stored")
        wait_until(lambda: ing.counters.acked == 1, what="ack after commit")
    finally:
        ing.stop()
    (row,) = _rows(cfg, select(EventRow))
    assert row.id == event.id and row.camera == event.camera and row.type == "illegal_stopping"
    assert row.started_at == event.started_at and row.started_at.tzinfo is not None
    assert row.payload["location"]["ward"] == "Phường Vĩnh Ninh"
    assert row.payload["schema"] == "ioc.event/1"
    (report,) = _rows(cfg, select(ReportRow))
    assert report.event_id == event.id and report.status == "new"
    assert report.title_vi == "Dừng, đỗ xe sai quy định"
    assert "3 phút 25 giây" in report.description_vi
    line = console.getvalue().strip()
    # The link is signed (`<id>-<token>`): it opens this one report without a login.
    assert re.fullmatch(
        rf"REPORT {report.id} illegal_stopping camera=cam-le-loi-01 at 2026-11-21 14:03:05\+0700 "
        rf"http://central\.test/reports/{report.id}-[0-9a-f]{{8}}-[0-9a-f]{{24}}",
        line,
    ), line
    assert report.agency_code == "csgt-hue" and report.district == "Thành phố Huế"
    assert report.deadline_at is not None and report.first_seen == event.started_at


def test_same_event_twice_is_stored_once(cfg: CentralConfig, publisher: Publisher) -> None:
    event = make_event()
    ing = _ingester(cfg)
    try:
        _publish_event(publisher, cfg, event)
        _publish_event(publisher, cfg, event)
        wait_until(lambda: ing.counters.stored + ing.counters.duplicates == 2, what="both processed")
        assert ing.counters.snapshot()["stored"] == 1
        assert ing.counters.duplicates == 1
        assert ing.counters.dead_letters == 0
    finally:
        ing.stop()
    assert _count(cfg, EventRow) == 1
    assert _count(cfg, ReportRow) == 1


def test_malformed_payloads_are_dead_lettered_and_valid_ones_still_stored(
    cfg: CentralConfig, publisher: Publisher
) -> None:
    p = cfg.mqtt.topic_prefix
    good = [make_event() for _ in range(3)]
    base = json.loads(make_event().to_json())
    wrong_schema = {**base, "schema": "ioc.event/2"}
    missing = {k: v for k, v in json.loads(make_event().to_json()).items() if k != "started_at"}
    mismatch = json.loads(make_event().to_json())
    topic = event_topic(p, "node-hue-01", "cam-le-loi-01", "illegal_stopping")
    bad: list[tuple[str, bytes, str]] = [
        (topic, b"{not json", "not UTF-8/JSON"),
        (topic, b"\xc3\x28\xa0\xa1 invalid utf-8", "not UTF-8"),
        (topic, json.dumps(wrong_schema).encode(), "schema"),
        (topic, json.dumps(missing).encode(), "started_at: Field required"),
        (
            event_topic(p, "node-evil", "cam-le-loi-01", "illegal_stopping"),
            json.dumps(mismatch).encode(),
            "topic/payload node mismatch",
        ),
    ]
    ing = _ingester(cfg)
    try:
        # Interleave: good, bad, good, bad, ...
        for i, (t, payload, _) in enumerate(bad):
            if i < len(good):
                _publish_event(publisher, cfg, good[i])
            publisher.publish(t, payload)
        wait_until(
            lambda: ing.counters.stored == 3 and ing.counters.dead_letters == 5, what="3 stored + 5 dead letters"
        )
    finally:
        ing.stop()
    assert {r.id for r in _rows(cfg, select(EventRow.id))} == {e.id for e in good}
    letters = _rows(cfg, select(DeadLetterRow).order_by(DeadLetterRow.id))
    assert len(letters) == 5
    for letter, (t, payload, reason) in zip(letters, bad, strict=True):
        assert letter.topic == t
        assert bytes(letter.payload) == payload
        assert reason in letter.reason, letter.reason
        assert letter.received_at.tzinfo is not None


def test_evidence_checked_stored_and_served(
    cfg: CentralConfig, publisher: Publisher, central_users: Any, console_login: Any
) -> None:
    p = cfg.mqtt.topic_prefix
    image = fake_jpeg("snapshot-1")
    sha = sha256_hex(image)
    event = make_event(evidence=[{"kind": "snapshot", "media_type": "image/jpeg", "sha256": sha, "size": len(image)}])
    wrong = fake_jpeg("tampered")
    ing = _ingester(cfg)
    try:
        publisher.publish(evidence_topic(p, event.node, event.camera, sha), wrong)  # bytes don't match the name
        publisher.publish(evidence_topic(p, event.node, event.camera, sha), image)
        publisher.publish(evidence_topic(p, event.node, event.camera, sha), image)  # redelivery: idempotent
        _publish_event(publisher, cfg, event)
        wait_until(
            lambda: (
                ing.counters.stored == 1 and ing.counters.evidence_duplicates == 1 and ing.counters.dead_letters == 1
            ),
            what="evidence + event processed",
        )
    finally:
        ing.stop()
    (letter,) = _rows(cfg, select(DeadLetterRow))
    assert "sha256 mismatch" in letter.reason
    (ev_row,) = _rows(cfg, select(EvidenceRow))
    assert (ev_row.sha256, ev_row.media_type, ev_row.size, ev_row.path) == (
        sha,
        "image/jpeg",
        len(image),
        f"{sha[:2]}/{sha}",
    )
    assert (cfg.evidence_dir / sha[:2] / sha).read_bytes() == image
    assert not list(cfg.evidence_dir.rglob("*.tmp"))

    engine = make_engine(cfg.database_url)
    try:
        client = TestClient(create_app(cfg, engine=engine))
        assert client.get(f"/evidence/{sha}").status_code == 404  # the hash alone opens nothing
        r = client.get(signed_evidence_path(cfg.database_url, sha))
        assert r.status_code == 200 and r.content == image
        assert r.headers["content-type"] == "image/jpeg"
        assert client.get(signed_evidence_path(cfg.database_url, sha256_hex(wrong))).status_code == 404  # not stored
        # The report page shows the snapshot as its thumbnail and in the detail.
        (report_id,) = [r.id for r in _rows(cfg, select(ReportRow.id))]
        console_login(client, "op")
        listing = client.get("/reports")
        assert listing.status_code == 200 and f'src="/evidence/{sha}?t=' in listing.text
        detail = client.get(f"/reports/{report_id}")
        assert detail.status_code == 200 and "Dừng, đỗ xe sai quy định" in detail.text
        assert f'src="/evidence/{sha}?t=' in detail.text
        body = client.get(f"/reports/{report_id}.json").json()
        assert body["snapshot_url"] == "http://central.test" + signed_evidence_path(cfg.database_url, sha)
        assert body["evidence"][0]["available"] is True
    finally:
        engine.dispose()


def test_status_and_health_are_upserted(cfg: CentralConfig, publisher: Publisher) -> None:
    p = cfg.mqtt.topic_prefix
    ing = _ingester(cfg)
    try:
        publisher.publish(node_status_topic(p, "node-hue-01"), json.dumps({"state": "online", "cameras": 2}))
        publisher.publish(camera_health_topic(p, "node-hue-01", "cam-1"), json.dumps({"state": "streaming"}))
        publisher.publish(node_status_topic(p, "node-hue-01"), "offline")  # a last will, not JSON
        wait_until(lambda: ing.counters.status_updates == 3, what="status updates")
    finally:
        ing.stop()
    (status,) = _rows(cfg, select(NodeStatusRow))
    assert status.node == "node-hue-01" and status.payload == "offline"


def test_restarted_ingester_gets_what_was_published_while_it_was_down(cfg: CentralConfig, publisher: Publisher) -> None:
    client_id = unique_name("central-stable-")  # a stable id: the session outlives the process
    events = [make_event() for _ in range(30)]
    ing = _ingester(cfg, client_id=client_id)
    for e in events[:10]:
        _publish_event(publisher, cfg, e)
    wait_until(lambda: ing.counters.stored == 10, what="first 10")
    ing.stop()
    for e in events[10:25]:  # nobody is connected: the broker queues them for the session
        _publish_event(publisher, cfg, e)
    ing2 = _ingester(cfg, client_id=client_id)
    try:
        for e in events[25:]:
            _publish_event(publisher, cfg, e)
        wait_until(lambda: ing2.counters.stored == 20, what="the 20 published while down and after")
    finally:
        ing2.stop()
    assert {r.id for r in _rows(cfg, select(EventRow.id))} == {e.id for e in events}


def test_two_ingesters_on_the_shared_subscription_store_each_event_once(
    cfg: CentralConfig, publisher: Publisher
) -> None:
    # Two cameras, 20 events each within the grouping window: two growing reports, whichever
    # ingester gets which event (PostgreSQL: an advisory lock per group; SQLite: its write lock).
    events = [make_event(camera="cam-a" if i % 2 else "cam-b") for i in range(40)]
    a = _ingester(cfg, client_id=unique_name("central-a-"))
    b = _ingester(cfg, client_id=unique_name("central-b-"))
    try:
        for e in events:
            _publish_event(publisher, cfg, e)
        # Redeliver a few on purpose: the unique key must catch them whichever ingester gets them.
        for e in events[:6]:
            _publish_event(publisher, cfg, e)
        wait_until(
            lambda: a.counters.stored + b.counters.stored == 40 and a.counters.duplicates + b.counters.duplicates == 6,
            what="46 messages processed",
        )
        assert a.counters.stored > 0 and b.counters.stored > 0, "the shared group did not split the load"
    finally:
        a.stop()
        b.stop()
    assert _count(cfg, EventRow) == 40
    assert _count(cfg, ReportEventRow) == 40
    reports = _rows(cfg, select(ReportRow).order_by(ReportRow.camera))
    assert [(r.camera, r.event_count) for r in reports] == [("cam-a", 20), ("cam-b", 20)]


def test_database_error_is_retried_not_acked_and_not_lost(
    cfg: CentralConfig, publisher: Publisher, monkeypatch: pytest.MonkeyPatch
) -> None:
    ing = _ingester(cfg)
    real = ing.processor.process_events
    failures = {"left": 2}

    def flaky(*args: Any, **kwargs: Any) -> Any:
        if failures["left"]:
            failures["left"] -= 1
            raise OperationalError("INSERT", {}, Exception("server closed the connection unexpectedly"))
        return real(*args, **kwargs)

    monkeypatch.setattr(ing.processor, "process_events", flaky)
    try:
        _publish_event(publisher, cfg, make_event())
        wait_until(lambda: ing.counters.stored == 1, what="stored after retries")
        assert ing.counters.db_errors == 2
        assert ing.counters.acked == 1
    finally:
        ing.stop()
    assert _count(cfg, EventRow) == 1


@pytest.mark.parametrize("central_database_url", ["sqlite"], indirect=True)
def test_ingester_reconnects_after_a_broker_restart(central_database_url: str, tmp_path: Path) -> None:
    with LocalMosquitto(state_dir=tmp_path / "broker") as broker:
        cfg = CentralConfig.model_validate(
            {
                "database_url": central_database_url,
                "mqtt": {"url": broker.url, "client_id": "central-reconnect"},
                "evidence_dir": str(tmp_path / "evidence"),
            }
        )
        ing = Ingester(cfg, console=io.StringIO(), reconnect_max_s=1).start()
        try:
            assert ing.wait_subscribed(10)
            with Publisher(broker.url) as pub:
                _publish_event(pub, cfg, make_event())
            wait_until(lambda: ing.counters.stored == 1, what="first event")
            broker.restart(kill=True)  # a crash: the session comes back from the autosave
            wait_until(lambda: ing.connection_count == 2 and ing.subscribed.is_set(), timeout=15, what="reconnected")
            with Publisher(broker.url) as pub:
                _publish_event(pub, cfg, make_event())
            wait_until(lambda: ing.counters.stored == 2, what="event after the restart")
        finally:
            ing.stop()


def test_a_stopped_per_process_ingester_leaves_no_session_taking_a_share(
    cfg: CentralConfig, publisher: Publisher
) -> None:
    # Mosquitto hands shared-subscription messages to offline sessions too: a per-process session
    # left behind would swallow a share of the events until it expires.
    ephemeral = _ingester(cfg)  # client id central-<host>-<pid>, not resumable
    stable = _ingester(cfg, client_id=unique_name("central-s-"))
    ephemeral.stop()
    events = [make_event() for _ in range(20)]
    try:
        for e in events:
            _publish_event(publisher, cfg, e)
        wait_until(lambda: stable.counters.stored == 20, what="all 20 on the remaining ingester")
    finally:
        stable.stop()
