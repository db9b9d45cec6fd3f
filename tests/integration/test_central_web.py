"""The web console on a real database: pages, JSON, evidence serving and its path safety."""

from __future__ import annotations

import http.client
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from central import evidence as evidence_files
from central.config import CentralConfig
from central.db import make_engine
from central.ingester import MessageProcessor
from central.web import create_app
from contract.topics import event_topic, evidence_topic
from tests.services import fake_jpeg, make_event, signed_evidence_path
from tests.support.central import ingest_processor, live_server  # noqa: F401 (live_server: imported from here too)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


@pytest.fixture
def setup(central_database_url: str, tmp_path: Path) -> Iterator[tuple[CentralConfig, Engine, MessageProcessor]]:
    cfg = CentralConfig.model_validate({"database_url": central_database_url, "evidence_dir": str(tmp_path / "ev")})
    engine = make_engine(cfg.database_url)
    # The processor is the ingester minus MQTT: it fills the database the way the ingester does.
    processor = ingest_processor(cfg, engine)
    yield cfg, engine, processor
    engine.dispose()


def test_pages_newest_first_and_json(
    setup: tuple[CentralConfig, Engine, MessageProcessor], central_users: Any, console_login: Any
) -> None:
    cfg, engine, processor = setup
    events = [make_event(type=t) for t in ("illegal_stopping", "littering", "sidewalk_encroachment")]
    ids = []
    for e in events:
        out = processor.process(event_topic("ioc", e.node, e.camera, e.type.value), e.to_json().encode())
        assert out.kind == "stored"
        ids.append(out.report_id)
    client = TestClient(create_app(cfg, engine=engine))
    r = client.get("/", follow_redirects=False)
    assert r.status_code in (302, 307) and r.headers["location"] == "/reports"
    r = client.get("/reports", follow_redirects=False)  # no session: the log-in page
    assert r.status_code == 303 and r.headers["location"].startswith("/login?next=")
    assert client.get(f"/reports/{ids[0]}.json").status_code == 401
    console_login(client, "op")
    page = client.get("/reports").text
    positions = [page.index(f"#{i} ") for i in ids]
    assert positions == sorted(positions, reverse=True), "newest report first"
    assert "Đổ rác thải trái nơi quy định" in page and "Buôn bán, lấn chiếm vỉa hè" in page
    assert "chưa có ảnh" in page  # evidence not uploaded yet
    body = client.get(f"/reports/{ids[0]}.json").json()
    assert body["id"] == ids[0] and body["event"]["id"] == events[0].id
    assert body["title"] == {"vi": "Dừng, đỗ xe sai quy định", "en": "Illegal stopping or parking"}
    assert body["time"]["time_zone"] == "Asia/Ho_Chi_Minh"
    assert body["place"]["lat"] == pytest.approx(16.4637)
    assert client.get("/reports/999999").status_code == 404
    assert client.get("/reports/999999.json").status_code == 404
    assert client.get("/reports/abc").status_code == 404
    health = client.get("/healthz")
    assert health.status_code == 200 and health.json()["database"] == "ok"


def test_evidence_is_served_only_by_a_known_sha256(setup: tuple[CentralConfig, Engine, MessageProcessor]) -> None:
    cfg, engine, processor = setup
    data = fake_jpeg("served")
    sha = evidence_files.sha256_hex(data)
    assert processor.process(evidence_topic("ioc", "n1", "c1", sha), data).kind == "evidence_stored"
    # A file that exists on disk (and a secret next to the evidence dir) but not in the table.
    stray = fake_jpeg("stray")
    stray_sha = evidence_files.sha256_hex(stray)
    evidence_files.store(cfg.evidence_dir, stray_sha, stray)
    (cfg.evidence_dir.parent / "secret.txt").write_text("secret", encoding="utf-8")

    client = TestClient(create_app(cfg, engine=engine))
    assert client.get(f"/evidence/{sha}").status_code == 404  # the hash alone (it is in events) opens nothing
    assert client.get(f"/evidence/{sha}?t=" + "0" * 32).status_code == 404  # nor a forged token
    ok = client.get(signed_evidence_path(cfg.database_url, sha))
    assert ok.status_code == 200 and ok.content == data and ok.headers["content-type"] == "image/jpeg"
    assert ok.headers["x-content-type-options"] == "nosniff"
    assert client.get(signed_evidence_path(cfg.database_url, stray_sha)).status_code == 404
    attempts = [
        "/evidence/../secret.txt",
        "/evidence/..%2Fsecret.txt",
        "/evidence/%2e%2e%2fsecret.txt",
        "/evidence/..%5csecret.txt",
        f"/evidence/{sha[:2]}%2F{sha}",
        f"/evidence/{sha[:2]}/{sha}",
        "/evidence/" + sha.upper(),
        "/evidence/" + sha + "%00",
        "/evidence/" + sha + "/../../secret.txt",
        "/evidence/%2Fetc%2Fpasswd",
        "/evidence/..",
    ]
    # A real server and raw request lines: an HTTP client would normalise "../" away before sending.
    with live_server(create_app(cfg, engine=engine)) as port:
        assert raw_get(port, signed_evidence_path(cfg.database_url, sha))[0] == 200
        for url in attempts:
            status, body = raw_get(port, url)
            assert status in (400, 404, 422), (url, status)
            assert b"secret" not in body


def raw_get(port: int, path: str) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.putrequest("GET", path, skip_accept_encoding=True)
        conn.endheaders()
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()
