"""The operations center on a real database (SQLite and PostgreSQL): grouping, routing, review
workflow with its audit trail, every role boundary of the API, exports, health, public version."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import cv2
import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.engine import Engine

from central import evidence as evidence_files
from central.config import CentralConfig
from central.db import AlertRow, ReportHistoryRow, ReportRow, UserRow, make_engine, make_session_factory
from central.web import create_app
from contract.events import ViolationEvent
from contract.topics import camera_health_topic, event_topic, evidence_topic, node_status_topic
from tests.services import fake_jpeg, make_event
from tests.support.central import ingest_processor

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

T0 = datetime(2026, 11, 21, 7, 3, 5, tzinfo=UTC)


class Center:
    def __init__(self, cfg: CentralConfig, engine: Engine) -> None:
        self.cfg = cfg
        self.engine = engine
        self.processor = ingest_processor(cfg, engine)
        self.app = create_app(cfg, engine=engine)

    def event(self, event: ViolationEvent) -> int:
        out = self.processor.process(
            event_topic("ioc", event.node, event.camera, event.type.value), event.to_json().encode()
        )
        assert out.kind == "stored", out
        return out.report_id or 0

    def evidence(self, data: bytes) -> str:
        sha = evidence_files.sha256_hex(data)
        assert self.processor.process(evidence_topic("ioc", "n", "c", sha), data).kind == "evidence_stored"
        return sha

    def client(self) -> TestClient:
        return TestClient(self.app)

    def reports(self) -> list[ReportRow]:
        with make_session_factory(self.engine)() as s:
            return list(s.scalars(select(ReportRow).order_by(ReportRow.id)))

    def history(self, report_id: int) -> list[tuple[str, str, str | None]]:
        with make_session_factory(self.engine)() as s:
            rows = s.scalars(
                select(ReportHistoryRow).where(ReportHistoryRow.report_id == report_id).order_by(ReportHistoryRow.id)
            )
            return [(h.actor, h.action, h.to_status) for h in rows]


def _center(url: str, tmp_path: Path, **extra: Any) -> Center:
    cfg = CentralConfig.model_validate(
        {
            "database_url": url,
            "evidence_dir": str(tmp_path / "ev"),
            "web": {"public_url": "http://c.test"},
            "review": {"undo_seconds": 0},  # confirm forwards at once (the window: test_review_undo)
            **extra,
        }
    )
    return Center(cfg, make_engine(cfg.database_url))


@pytest.fixture
def center(central_database_url: str, central_users: Any, tmp_path: Path) -> Any:
    c = _center(central_database_url, tmp_path)
    yield c
    c.engine.dispose()


def _at(seconds: float, **kw: Any) -> ViolationEvent:
    start = T0 + timedelta(seconds=seconds)
    return make_event(started_at=start, ended_at=start + timedelta(seconds=20), **kw)


# --------------------------------------------------------------------------------------- grouping


def test_events_grow_one_report_per_camera_zone_type_within_the_window(center: Center) -> None:
    snap_hi = {"kind": "snapshot", "media_type": "image/jpeg", "sha256": "c" * 64, "size": 10}
    first = center.event(_at(0, confidence=0.6))
    assert center.event(_at(60, confidence=0.95, evidence=[snap_hi])) == first
    assert center.event(_at(200, confidence=0.7, objects=[])) == first
    # Another zone, another type, another camera, or later than the window: new reports.
    other_zone = center.event(_at(30, zone={"id": "no-stop-2", "kind": "no_stopping"}))
    other_type = center.event(_at(30, type="littering"))
    other_cam = center.event(_at(30, camera="cam-2"))
    late = center.event(_at(220 + 20 + 301))
    assert len({first, other_zone, other_type, other_cam, late}) == 5
    report = center.reports()[0]
    assert report.id == first and report.event_count == 3
    assert report.first_seen == T0 and report.last_seen == T0 + timedelta(seconds=220)
    assert report.confidence == pytest.approx(0.95) and report.plate == "75A-123.45"
    assert "Số lần ghi nhận: 3" in report.description_vi and "Times recorded: 3" in report.description_en
    c = center.client()
    # JSON: the best event's evidence first, then the other events' (deduplicated).
    from tests.conftest import CONSOLE_PASSWORD  # noqa: F401 - documents where the password comes from

    _login(c, "op")
    body = c.get(f"/reports/{first}.json").json()
    assert [e["sha256"][:1] for e in body["evidence"]] == ["c", "a", "b"]
    assert {"kind", "sha256", "size"} <= set(body["evidence"][0])
    assert body["event_count"] == 3 and body["agency"]["code"] == "csgt-hue"


def test_rejected_report_does_not_grow(center: Center) -> None:
    rid = center.event(_at(0))
    c = center.client()
    csrf = _login(c, "op")
    assert (
        c.post(f"/api/reports/{rid}/reject", json={"reason": "bóng cây"}, headers={"X-CSRF-Token": csrf}).status_code
        == 200
    )
    assert center.event(_at(30)) != rid


def test_incident_phases_form_one_report(center: Center) -> None:
    inc = "0190a000-0000-7000-8000-000000000001"
    ids = {center.event(_at(s, phase=p, incident=inc)) for s, p in ((0, "start"), (600, "update"), (1800, "end"))}
    assert len(ids) == 1  # 30 minutes apart: the incident id groups them, not the window
    report = center.reports()[0]
    assert report.incident == inc and report.event_count == 3
    assert center.event(_at(10, phase="start", incident="0190a000-0000-7000-8000-000000000002")) != report.id


def test_routing_priority_deadline_and_overdue(center: Center) -> None:
    long_ago = datetime.now(UTC) - timedelta(days=3)
    red = center.event(make_event(type="red_light", started_at=long_ago))
    litter = center.event(make_event(type="littering"))
    order = center.event(
        make_event(type="sidewalk_encroachment", location={"ward": "Phường Hàng Bài", "district": "Quận Hoàn Kiếm"})
    )
    nowhere = center.event(make_event(location={"district": "Quận Ba Đình"}))
    rows = {r.id: r for r in center.reports()}
    assert (rows[red].agency_code, rows[red].priority) == ("csgt-hue", "urgent")
    assert rows[red].deadline_at == long_ago + timedelta(minutes=30)
    assert rows[litter].agency_code == "urenco-hue" and rows[litter].deadline_at == T0 + timedelta(days=2)
    # The old ward's name goes to the committee of the ward that took it over (2025-07-01).
    assert rows[order].agency_code == "ubnd-cua-nam" and rows[order].agency_name_vi == "UBND phường Cửa Nam"
    assert rows[nowhere].agency_code == "ioc-dispatch"
    c = center.client()
    _login(c, "op")
    overdue = c.get("/api/reports", params={"overdue": "true"}).json()["reports"]
    assert {r["id"] for r in overdue} >= {red}
    page = c.get("/reports").text
    assert re.search(rf'<tr id="report-{red}" class="overdue"', page)  # overdue stands out


# --------------------------------------------------------------------------------- workflow + audit


def _login(client: TestClient, username: str, password: str | None = None) -> str:
    from tests.conftest import CONSOLE_PASSWORD

    form = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text).group(1)
    r = client.post(
        "/login",
        data={"username": username, "password": password or CONSOLE_PASSWORD, "csrf_token": token},
        follow_redirects=False,
    )
    assert r.status_code == 303
    me = client.get("/api/me")
    return me.json()["csrf"] if me.status_code == 200 else ""


def test_review_workflow_records_who_and_when(center: Center) -> None:
    rid = center.event(make_event())
    op = center.client()
    csrf = _login(op, "op")
    h = {"X-CSRF-Token": csrf}
    assert op.post(f"/api/reports/{rid}/reject", json={}, headers=h).status_code == 422  # a reason is required
    r = op.post(f"/api/reports/{rid}/confirm", headers=h)
    assert r.status_code == 200 and r.json()["status"] == "forwarded"  # forward_on_confirm
    assert op.post(f"/api/reports/{rid}/confirm", headers=h).status_code == 409
    police = center.client()
    pcsrf = _login(police, "police-hue")
    assert police.post(f"/api/reports/{rid}/resolve", headers={"X-CSRF-Token": pcsrf}).json()["status"] == "resolved"
    assert center.history(rid) == [
        ("system", "created", "new"),
        ("op", "confirm", "confirmed"),
        ("system", "forward", "forwarded"),
        ("op", "alert_queued", None),
        ("police-hue", "resolve", "resolved"),
    ]
    body = op.get(f"/api/reports/{rid}").json()
    assert [h["actor"] for h in body["history"]][-1] == "police-hue" and body["history"][-1]["at"]
    admin = center.client()
    acsrf = _login(admin, "admin")
    assert (
        admin.post(
            f"/api/reports/{rid}/reopen", json={"reason": "sai biển số"}, headers={"X-CSRF-Token": acsrf}
        ).status_code
        == 200
    )
    assert center.history(rid)[-1] == ("admin", "reopen", "new")


def test_html_actions_and_queue_order(center: Center) -> None:
    old = center.event(make_event(camera="cam-old", started_at=T0 - timedelta(hours=2)))
    new = center.event(make_event(camera="cam-new", started_at=T0))
    urgent = center.event(make_event(camera="cam-red", type="red_light", started_at=T0 + timedelta(hours=1)))
    c = center.client()
    csrf = _login(c, "op")
    queue = c.get("/api/queue").json()["reports"]
    assert [r["id"] for r in queue] == [urgent, old, new]  # urgent first, then the oldest
    page = c.get("/queue").text
    assert page.index(f'id="q-{urgent}"') < page.index(f'id="q-{old}"') < page.index(f'id="q-{new}"')
    assert "keydown" in page and "<kbd>c</kbd>" in page
    r = c.post(
        f"/reports/{old}/actions/reject",
        data={"csrf_token": csrf, "reason": "xe cứu thương", "next": "/queue"},
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"] == "/queue"
    assert [r["id"] for r in c.get("/api/queue").json()["reports"]] == [urgent, new]
    assert c.get("/api/queue", params={"camera": "cam-new"}).json()["reports"][0]["id"] == new
    detail = c.get(f"/reports/{old}").text
    assert "xe cứu thương" in detail and 'id="history"' in detail


def test_queue_shows_clip_inline_and_snapshot_beside(center: Center) -> None:
    snap = fake_jpeg("snap")
    clip = b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 100
    s_sha, c_sha = center.evidence(snap), center.evidence(clip)
    ev = make_event(
        evidence=[
            {"kind": "snapshot", "media_type": "image/jpeg", "sha256": s_sha, "size": len(snap)},
            {"kind": "clip", "media_type": "video/mp4", "sha256": c_sha, "size": len(clip)},
        ]
    )
    rid = center.event(ev)
    c = center.client()
    _login(c, "op")
    page = c.get("/queue").text
    item = page[page.index(f'id="q-{rid}"') :]
    assert f'<video class="clip" controls muted preload="metadata" src="/evidence/{c_sha}?t=' in item
    assert f'<img src="/evidence/{s_sha}?t=' in item


# ---------------------------------------------------------------------------------- role boundaries


@pytest.fixture
def seeded(center: Center) -> dict[str, int]:
    hue_new = center.event(make_event(camera="c1"))
    hue_ok = center.event(make_event(camera="c2"))
    hk_ok = center.event(make_event(camera="c3", location={"ward": "Phường Hàng Bài", "district": "Quận Hoàn Kiếm"}))
    litter = center.event(make_event(camera="c4", type="littering"))
    c = center.client()
    csrf = _login(c, "op")
    for rid in (hue_ok, hk_ok, litter):
        assert c.post(f"/api/reports/{rid}/confirm", headers={"X-CSRF-Token": csrf}).status_code == 200
    return {"hue_new": hue_new, "hue_ok": hue_ok, "hk_ok": hk_ok, "litter": litter}


def test_police_see_only_confirmed_traffic_of_their_districts(center: Center, seeded: dict[str, int]) -> None:
    expect = {"police-hue": {seeded["hue_ok"]}, "police-hk": {seeded["hk_ok"]}, "op": set(seeded.values())}
    for user, ids in expect.items():
        c = center.client()
        _login(c, user)
        assert {r["id"] for r in c.get("/api/reports").json()["reports"]} == ids, user
        for rid in seeded.values():
            want = 200 if rid in ids else 404  # another district's report does not exist for them
            assert c.get(f"/api/reports/{rid}").status_code == want, (user, rid)
            assert c.get(f"/reports/{rid}.json").status_code == want, (user, rid)
            assert c.get(f"/reports/{rid}.pdf").status_code == want, (user, rid)
        rows = list(csv.DictReader(io.StringIO(c.get("/reports.csv").content.decode("utf-8-sig"))))
        assert {int(r["id"]) for r in rows} == ids, user


ENDPOINTS: list[tuple[str, str, dict[str, int]]] = [
    # method, path, expected status per role (anonymous = "-")
    ("GET", "/api/reports", {"-": 401, "op": 200, "admin": 200, "police-hue": 200}),
    ("GET", "/api/queue", {"-": 401, "op": 200, "admin": 200, "police-hue": 403}),
    ("GET", "/api/health", {"-": 401, "op": 200, "admin": 200, "police-hue": 403}),
    ("GET", "/api/alerts", {"-": 401, "op": 200, "admin": 200, "police-hue": 200}),
    ("GET", "/api/me", {"-": 401, "op": 200, "admin": 200, "police-hue": 200}),
    ("GET", "/reports.csv", {"-": 401, "op": 200, "admin": 200, "police-hue": 200}),
    ("GET", "/reports/{hue_new}.json", {"-": 401, "op": 200, "admin": 200, "police-hue": 404}),
    ("GET", "/reports/{hue_ok}.json", {"-": 401, "op": 200, "admin": 200, "police-hue": 200}),
    ("GET", "/reports/{hk_ok}.json", {"-": 401, "op": 200, "admin": 200, "police-hue": 404}),
    # In order per row: op acts first, so the next roles see the changed report.
    (
        "POST",
        "/api/reports/{hue_new}/confirm",
        {"-": 401, "police-hk": 404, "op": 200, "admin": 409, "police-hue": 403},
    ),
    ("POST", "/api/reports/{hue_ok}/resolve", {"-": 401, "op": 200, "admin": 409, "police-hue": 409}),
    ("POST", "/api/reports/{hk_ok}/resolve", {"-": 401, "op": 200, "admin": 409, "police-hk": 409, "police-hue": 404}),
    ("POST", "/api/reports/{litter}/resolve", {"-": 401, "police-hue": 404, "admin": 200}),
    ("GET", "/queue", {"op": 200, "police-hue": 403}),
    ("GET", "/health", {"op": 200, "police-hue": 403}),
    ("GET", "/police", {"op": 200, "police-hue": 200}),
]


def test_every_role_boundary_of_the_api(center: Center, seeded: dict[str, int]) -> None:
    clients: dict[str, tuple[TestClient, str]] = {}
    for user in ("op", "admin", "police-hue", "police-hk"):
        c = center.client()
        clients[user] = (c, _login(c, user))
    clients["-"] = (center.client(), "")
    for method, path, expected in ENDPOINTS:
        url = path.format(**seeded)
        for user, want in expected.items():
            c, csrf = clients[user]
            r = c.request(method, url, headers={"X-CSRF-Token": csrf} if csrf else {}, follow_redirects=False)
            assert r.status_code == want, (method, url, user, r.status_code, r.text[:200])


def test_csrf_and_session_rules(center: Center, seeded: dict[str, int]) -> None:
    c = center.client()
    csrf = _login(c, "op")
    rid = seeded["hue_new"]
    assert c.post(f"/api/reports/{rid}/confirm").status_code == 403  # no token
    assert c.post(f"/api/reports/{rid}/confirm", headers={"X-CSRF-Token": "x" + csrf}).status_code == 403
    assert c.post(f"/reports/{rid}/actions/confirm", data={"csrf_token": "nope"}).status_code == 403
    assert center.reports()[0].status == "new"
    # Log-in itself needs its double-submit token; `next` never leaves the site.
    fresh = center.client()
    assert fresh.post("/login", data={"username": "op", "password": "x"}).status_code == 403
    form = fresh.get("/login?next=//evil.example/x")
    assert 'value="/queue"' in form.text
    # Passwords are argon2id hashes; a wrong one does not log in.
    with make_session_factory(center.engine)() as s:
        assert s.scalars(select(UserRow.password_hash)).first().startswith("$argon2id$")
    assert _login(center.client(), "op", password="wrong-password") == ""
    # Log-out ends the session on the server: the old cookie is dead.
    cookie = c.cookies.get("ioc_session")
    assert c.post("/logout", data={"csrf_token": csrf}, follow_redirects=False).status_code == 303
    stale = center.client()
    stale.cookies.set("ioc_session", cookie)
    assert stale.get("/api/me").status_code == 401


# ------------------------------------------------------------------------------- exports + health


def test_csv_and_pdf_exports(center: Center, tmp_path: Path) -> None:
    from edge.data import data_dir

    jpg = (data_dir() / "images" / "vn_intersection_redlight_day_1113.jpg").read_bytes()
    sha = center.evidence(jpg)
    snap = [{"kind": "snapshot", "media_type": "image/jpeg", "sha256": sha, "size": len(jpg)}]
    a = center.event(make_event(camera="cam-a", evidence=snap))
    center.event(make_event(camera="cam-b", type="littering", location={"address": '=HYPERLINK("http://x")'}))
    c = center.client()
    _login(c, "op")
    r = c.get("/reports.csv", params={"camera": "cam-a"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert [int(x["id"]) for x in rows] == [a]
    assert rows[0]["title_vi"] == "Dừng, đỗ xe sai quy định" and rows[0]["agency"] == "csgt-hue"
    # Times in the console's zone to the second (T0 is 07:03:05 UTC), words beside the codes, and a
    # file named for the local time it was made.
    assert rows[0]["first_seen"] == "2026-11-21T14:03:05+07:00", rows[0]
    assert (rows[0]["trang_thai"], rows[0]["status"], rows[0]["uu_tien"]) == ("Mới", "new", "Thường")
    name = re.search(r'filename="phan-anh-(\d{8}-\d{6})\.csv"', r.headers["content-disposition"]).group(1)
    made = datetime.strptime(name, "%Y%m%d-%H%M%S").replace(tzinfo=ZoneInfo("Asia/Ho_Chi_Minh"))
    assert abs((made - datetime.now(UTC)).total_seconds()) < 120
    # A time typed in the filter (no zone) is local time: 14:00 local is 07:00 UTC, before T0.
    assert [int(x["id"]) for x in csv.DictReader(io.StringIO(
        c.get("/reports.csv", params={"camera": "cam-a", "since": "2026-11-21T14:00"}).content.decode("utf-8-sig")
    ))] == [a]
    assert not list(csv.DictReader(io.StringIO(
        c.get("/reports.csv", params={"camera": "cam-a", "since": "2026-11-21T14:04"}).content.decode("utf-8-sig")
    )))
    # The audit trail in local time and in words.
    history = c.get(f"/reports/{a}.json").json()["history"]
    assert history[0]["action"] == "created" and history[0]["action_text"]["vi"] == "Tạo phản ánh"
    assert history[0]["at_text"]["vi"].endswith("(UTC+07:00)")
    page = c.get(f"/reports/{a}").text
    trail = re.search(r'<table id="history">.*?</table>', page, re.S).group(0)
    assert "Tạo phản ánh" in trail and "(UTC+07:00)" in trail and "+00:00" not in trail
    all_rows = list(csv.DictReader(io.StringIO(c.get("/reports.csv").content.decode("utf-8-sig"))))
    assert len(all_rows) == 2 and all(not x["address"].startswith("=") for x in all_rows)  # no formula injection
    pdf = c.get(f"/reports/{a}.pdf")
    assert (
        pdf.status_code == 200 and pdf.content.startswith(b"%PDF-") and pdf.headers["content-type"] == "application/pdf"
    )
    assert b"/Image" in pdf.content and len(pdf.content) > len(jpg) // 2  # the snapshot is embedded
    from pypdf import PdfReader

    text = PdfReader(io.BytesIO(pdf.content)).pages[0].extract_text()
    assert "Dừng, đỗ xe sai quy định" in text and "75A-123.45" in text


def test_health_page_from_status_topics(center: Center) -> None:
    p = center.processor
    p.process(node_status_topic("ioc", "node-a"), b'{"state": "online", "outbox_backlog": 7, "uptime_s": 12}')
    p.process(node_status_topic("ioc", "node-b"), b'{"node": "node-b", "state": "offline"}')
    p.process(camera_health_topic("ioc", "node-a", "cam-1"), b'{"state": "streaming", "fps": 5.0}')
    center.event(make_event(node="node-a", camera="cam-1"))
    c = center.client()
    _login(c, "op")
    h = c.get("/api/health").json()
    nodes = {n["node"]: n for n in h["nodes"]}
    assert nodes["node-a"]["online"] and nodes["node-a"]["outbox_backlog"] == 7
    assert not nodes["node-b"]["online"]
    (cam,) = h["cameras"]
    assert cam["state"] == "streaming" and cam["last_event_at"] == T0.isoformat()
    page = c.get("/health").text
    assert "node-a" in page and "online" in page and "offline" in page


def test_share_link_opens_one_report_read_only(center: Center) -> None:
    import io as _io

    from central.ingester import Ingester  # noqa: F401 - the REPORT line builder lives there

    rid = center.event(make_event())
    other = center.event(make_event(camera="x"))
    out = center.processor.process(
        event_topic("ioc", "node-hue-01", "y", "illegal_stopping"), make_event(camera="y").to_json().encode()
    )
    ref = out.share_ref
    assert ref and ref.startswith(f"{out.report_id}-")
    anon = center.client()
    assert anon.get(f"/reports/{ref}.json").json()["id"] == out.report_id
    assert anon.get(f"/reports/{ref}").status_code == 200
    bad = f"{rid}-" + ref.split("-", 1)[1]
    assert anon.get(f"/reports/{bad}.json").status_code == 404
    assert anon.get(f"/reports/{other}.json").status_code == 401
    _ = _io


# ---------------------------------------------------------------------------------------- public


def test_public_version_blurs_heads_and_plates(center: Center) -> None:
    from central.public import PublicBlurrer
    from edge.data import data_dir

    jpg = (data_dir() / "images" / "ultralytics_bus.jpg").read_bytes()
    sha = center.evidence(jpg)
    rid = center.event(
        make_event(evidence=[{"kind": "snapshot", "media_type": "image/jpeg", "sha256": sha, "size": len(jpg)}])
    )
    c = center.client()
    csrf = _login(c, "op")
    h = {"X-CSRF-Token": csrf}
    assert c.post(f"/api/reports/{rid}/publish", headers=h).status_code == 409  # not confirmed yet
    c.post(f"/api/reports/{rid}/confirm", headers=h)
    r = c.post(f"/api/reports/{rid}/publish", headers=h)
    assert r.status_code == 200, r.text
    (img,) = r.json()["evidence"]
    assert img["source"] == sha and img["sha256"] != sha and img["heads_blurred"] >= 1
    anon = center.client()
    pub = anon.get(f"/public/reports/{rid}.json").json()
    text = str(pub)
    assert "75A-123.45" not in text and sha not in text  # no plate, no original image
    blurred = anon.get(pub["images"][0]["url"]).content
    assert evidence_files.sha256_hex(blurred) == img["sha256"]
    # The heads found in the original are gone from the public image.
    blurrer = PublicBlurrer.shared(center.cfg)
    before = cv2.imdecode(np.frombuffer(jpg, np.uint8), cv2.IMREAD_COLOR)
    after = cv2.imdecode(np.frombuffer(blurred, np.uint8), cv2.IMREAD_COLOR)
    heads = blurrer.boxes(before)["heads"]
    assert len(blurrer.boxes(after)["heads"]) < len(heads)
    for x1, y1, x2, y2 in heads:
        a, b = before[y1:y2, x1:x2].astype(float), after[y1:y2, x1:x2].astype(float)
        assert np.abs(cv2.Laplacian(b, cv2.CV_64F)).mean() < 0.5 * np.abs(cv2.Laplacian(a, cv2.CV_64F)).mean()
    assert "Phản ánh công khai" in anon.get("/public/reports/").text and f"#{rid}" in anon.get("/public/reports/").text
    assert c.get(f"/reports/{rid}.json").json()["plate"] == "75A-123.45"  # staff still see it
    other = center.event(make_event(camera="z"))
    assert anon.get(f"/public/reports/{other}.json").status_code == 404  # not published


def test_unpublish_takes_a_report_off_the_public_pages_and_the_list_is_compact(center: Center) -> None:
    from edge.data import data_dir

    jpg = (data_dir() / "images" / "vn_intersection_day_2039.jpg").read_bytes()
    sha = center.evidence(jpg)
    rid = center.event(
        make_event(evidence=[{"kind": "snapshot", "media_type": "image/jpeg", "sha256": sha, "size": len(jpg)}])
    )
    c = center.client()
    h = {"X-CSRF-Token": _login(c, "op")}
    c.post(f"/api/reports/{rid}/confirm", headers=h)
    assert c.post(f"/api/reports/{rid}/unpublish", headers=h).status_code == 409  # not published yet
    (img,) = c.post(f"/api/reports/{rid}/publish", headers=h).json()["evidence"]
    # A real camera snapshot: its three riders and the parked car's plate are counted as blurred.
    assert img["persons_blurred"] >= 3 and img["plates_blurred"] >= 1, img
    page = c.get(f"/reports/{rid}").text
    assert 'id="action-unpublish"' in page and 'id="action-publish"' not in page  # the button follows the state
    anon = center.client()
    listing = anon.get("/public/reports/").text
    # The list is compact: one fitted thumbnail per report, the full image only on its own page.
    assert f'id="public-{rid}"' in listing and listing.count('class="thumb"') == 1 and 'class="snapshot"' not in listing
    assert 'class="snapshot"' in anon.get(f"/public/reports/{rid}").text

    r = c.post(f"/api/reports/{rid}/unpublish", headers=h)
    assert r.status_code == 200 and r.json()["published"] is False
    assert anon.get(f"/public/reports/{rid}.json").status_code == 404
    assert f'id="public-{rid}"' not in anon.get("/public/reports/").text
    assert 'id="action-publish"' in c.get(f"/reports/{rid}").text
    actions = [a["action"] for a in c.get(f"/reports/{rid}.json").json()["history"]]
    assert actions[-2:] == ["publish", "unpublish"], actions


def test_skip_review_for_high_confidence_classes_queues_an_alert(
    central_database_url: str, central_users: Any, tmp_path: Path
) -> None:
    center = _center(
        central_database_url, tmp_path, review={"skip_review": [{"type": "red_light", "min_confidence": 0.9}]}
    )
    try:
        sure = center.event(make_event(type="red_light", confidence=0.95))
        unsure = center.event(make_event(type="red_light", camera="c2", confidence=0.5))
        rows = {r.id: r for r in center.reports()}
        assert rows[sure].status == "forwarded" and rows[unsure].status == "new"
        assert [a for _, a, _ in center.history(sure)] == ["created", "confirm", "forward", "alert_queued"]
        with make_session_factory(center.engine)() as s:
            (alert,) = s.scalars(select(AlertRow))
        assert alert.report_id == sure and alert.topic_district == "thanh-pho-hue"
        assert alert.payload["plate"] == "75A-123.45" and alert.payload["place"]["district"] == "Thành phố Huế"
    finally:
        center.engine.dispose()
