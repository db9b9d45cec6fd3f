"""Two-tier administration (issue 17, item 1): since 1 July 2025 Vietnam has province -> commune/
ward/special zone and no districts. Routing is category x ward (x optional area) -> agency; police
see, and get alerts for, their wards or their named areas (a set of wards); alert topics name the
area (or the ward); districts survive as a legacy label: an old routing table, an old camera config
and an old district-scoped user keep working, and migration 0008 carries users and alerts over.
The shipped routing table and real DBs (SQLite and PostgreSQL)."""

from __future__ import annotations

import uuid
import warnings
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, text

from central.alerts import queue_alert
from central.auth import create_user
from central.config import CentralConfig
from central.db import AlertRow, ReportRow, make_engine, make_session_factory, migrate, session_scope
from central.ingester import MessageProcessor
from central.web import create_app
from central.workflow import RoutingTable, load_routing
from contract.events import Category
from contract.topics import event_topic, police_alert_topic
from tests.conftest import CONSOLE_PASSWORD
from tests.services import create_database, drop_database, make_event

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

_NAMES = {"vi": "x", "en": "x"}


def _code(found: tuple[str, Any] | None) -> str | None:
    return found[0] if found else None


_DEADLINES = {c.value: {"urgent": 30, "normal": 60} for c in Category}


def test_routing_by_ward_and_area_with_the_shipped_table() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)  # a migrated table (its legacy fallback too) is quiet
        rt = load_routing()
    assert rt.area_of("Phường Thuận Hóa") == "hue-trung-tam" and rt.area_of("Phường Cửa Nam") == "hn-hoan-kiem"
    assert rt.area_of("Phường Hàng Bài") is None  # an old ward name is in no area
    # Traffic: the police of the ward's area; no district needed.
    assert _code(rt.route(Category.TRAFFIC, "Phường Thuận Hóa")) == "csgt-hue"
    assert _code(rt.route(Category.TRAFFIC, "Phường Cầu Giấy")) == "csgt-cau-giay"
    assert _code(rt.route(Category.TRAFFIC, "Phường Cửa Nam", "Quận Hoàn Kiếm")) == "csgt-hoan-kiem"
    # An old camera config (old ward, district label): the legacy district route still finds its police.
    assert _code(rt.route(Category.TRAFFIC, "Phường Vĩnh Ninh", "Thành phố Huế")) == "csgt-hue"
    # Ward x category: the ward's committee; sanitation in the Huế area to the city's company.
    assert _code(rt.route(Category.URBAN_ORDER, "Phường Cửa Nam")) == "ubnd-cua-nam"
    assert _code(rt.route(Category.SANITATION, "Phường Thuận Hóa")) == "urenco-hue"
    assert _code(rt.route(Category.URBAN_ORDER, "Phường Vĩnh Ninh", "Thành phố Huế")) == "ubnd-thuan-hoa"
    # Nowhere known: the IOC desk, never nobody.
    assert _code(rt.route(Category.TRAFFIC, "Xã Khác")) == "ioc-dispatch"


def test_ward_police_area_routes_and_a_legacy_district_table() -> None:
    rt = RoutingTable.model_validate(
        {
            "areas": {"a1": {"name": "Khu vực 1", "wards": ["Phường A", "Phường B"]}},
            "agencies": {
                "ca-a": {"name": _NAMES, "kind": "police", "wards": ["Phường A"]},
                "csgt-1": {"name": _NAMES, "kind": "police", "areas": ["a1"]},
                "ubnd-b": {"name": _NAMES, "kind": "ward_committee"},
                "desk": {"name": _NAMES, "kind": "ioc"},
            },
            "routes": [
                {"category": "traffic", "agency": "ward_police"},
                {"category": "traffic", "agency": "area_police"},
                {"category": "urban_order", "area": "a1", "agency": "ubnd-b"},
                {"agency": "desk"},
            ],
            "deadlines_minutes": _DEADLINES,
        }
    )
    assert _code(rt.route(Category.TRAFFIC, "Phường A")) == "ca-a"  # its ward police come first here
    assert _code(rt.route(Category.TRAFFIC, "Phường B")) == "csgt-1"  # no ward police: the area's
    assert _code(rt.route(Category.TRAFFIC, "Phường C")) == "desk"
    assert _code(rt.route(Category.URBAN_ORDER, "Phường B")) == "ubnd-b"
    assert _code(rt.route(Category.URBAN_ORDER, "Phường C")) == "desk"
    with pytest.raises(ValueError, match="unknown area"):
        RoutingTable.model_validate(
            {
                "agencies": {"p": {"name": _NAMES, "kind": "police", "areas": ["nope"]}},
                "routes": [{"agency": "p"}],
                "deadlines_minutes": _DEADLINES,
            }
        )
    # A table from before 2025 (district police only) still routes, and says it is out of date.
    with pytest.warns(DeprecationWarning, match="two-tier"):
        old = RoutingTable.model_validate(
            {
                "agencies": {
                    "csgt-q1": {"name": _NAMES, "kind": "police", "districts": ["Quận 1"]},
                    "desk": {"name": _NAMES, "kind": "ioc"},
                },
                "routes": [
                    {"category": "traffic", "ward": "*", "district": "*", "agency": "district_police"},
                    {"agency": "desk"},
                ],
                "deadlines_minutes": _DEADLINES,
            }
        )
    assert _code(old.route(Category.TRAFFIC, "Phường Bến Nghé", "Quận 1")) == "csgt-q1"


PLACES = {
    # camera -> location: a Huế ward in an area, a Hanoi ward in an area, an old config (old ward + district).
    "cam-thuan-hoa": {"province": "Huế", "ward": "Phường Thuận Hóa", "address": "12 Lê Lợi"},
    "cam-cau-giay": {"province": "Hà Nội", "ward": "Phường Cầu Giấy", "address": "1 Xuân Thủy"},
    "cam-old-hk": {"ward": "Phường Hàng Bài", "district": "Quận Hoàn Kiếm", "address": "1 Hàng Bài"},
}


def test_police_scope_and_alert_topics_by_ward_area_and_legacy_district(
    central_database_url: str, tmp_path: Path
) -> None:
    cfg = CentralConfig.model_validate(
        {
            "database_url": central_database_url,
            "evidence_dir": str(tmp_path / "ev"),
            "web": {"public_url": "http://c.test"},
        }
    )
    engine = make_engine(central_database_url)
    sessions = make_session_factory(engine)
    with session_scope(sessions) as s:
        s.execute(text("DELETE FROM web_sessions"))
        s.execute(text("DELETE FROM users"))
        create_user(s, "op", CONSOLE_PASSWORD, "operator")
        create_user(s, "csgt-hue", CONSOLE_PASSWORD, "police", areas=["hue-trung-tam"])
        create_user(s, "ca-cau-giay", CONSOLE_PASSWORD, "police", wards=["Phường Cầu Giấy"])
        create_user(s, "old-hk", CONSOLE_PASSWORD, "police", ["Quận Hoàn Kiếm"])  # a user from before 2025
        with pytest.raises(ValueError, match="ward or area"):
            create_user(s, "nobody", CONSOLE_PASSWORD, "police")
    processor = MessageProcessor(
        sessions, dialect_name=engine.dialect.name, evidence_dir=cfg.evidence_dir, topic_prefix="ioc", config=cfg
    )
    ids = {}
    for camera, loc in PLACES.items():
        e = make_event(camera=camera, type="red_light", location=loc)
        out = processor.process(event_topic("ioc", e.node, e.camera, "red_light"), e.to_json().encode())
        assert out.report_id is not None
        ids[camera] = out.report_id
    with session_scope(sessions) as s:
        rows = {r.camera: r for r in s.scalars(select(ReportRow))}
        assert (rows["cam-thuan-hoa"].province, rows["cam-thuan-hoa"].area) == ("Huế", "hue-trung-tam")
        assert rows["cam-thuan-hoa"].agency_code == "csgt-hue"
        assert (rows["cam-cau-giay"].area, rows["cam-cau-giay"].agency_code) == ("hn-cau-giay", "csgt-cau-giay")
        assert (rows["cam-old-hk"].area, rows["cam-old-hk"].agency_code) == (None, "csgt-hoan-kiem")
        for r in rows.values():
            r.status = "confirmed"
            assert queue_alert(s, r, cfg)
    with session_scope(sessions) as s:
        topics = {a.report_id: police_alert_topic("ioc", a.topic_district, a.type) for a in s.scalars(select(AlertRow))}
    assert topics == {
        ids["cam-thuan-hoa"]: "ioc/alerts/hue-trung-tam/red_light",  # the area
        ids["cam-cau-giay"]: "ioc/alerts/hn-cau-giay/red_light",
        ids["cam-old-hk"]: "ioc/alerts/quan-hoan-kiem/red_light",  # the old topic its police account was granted
    }

    client = TestClient(create_app(cfg, engine=engine))

    def login(user: str) -> None:
        import re

        client.cookies.clear()
        form = client.get("/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', form.text).group(1)  # type: ignore[union-attr]
        r = client.post(
            "/login", data={"username": user, "password": CONSOLE_PASSWORD, "csrf_token": token}, follow_redirects=False
        )
        assert r.status_code == 303 and "error" not in r.headers["location"]

    def visible() -> tuple[set[int], set[int]]:
        reports = {v["id"] for v in client.get("/api/reports").json()["reports"]}
        alerts = {a["report_id"] for a in client.get("/api/alerts").json()["alerts"]}
        return reports, alerts

    try:
        for user, camera in (("csgt-hue", "cam-thuan-hoa"), ("ca-cau-giay", "cam-cau-giay"), ("old-hk", "cam-old-hk")):
            login(user)
            assert visible() == ({ids[camera]}, {ids[camera]}), user
            others = [rid for cam, rid in ids.items() if cam != camera]
            assert all(client.get(f"/api/reports/{rid}").status_code == 404 for rid in others)
            me = client.get("/api/me").json()
            assert me["role"] == "police"
            scope = {"csgt-hue": ([], [], ["hue-trung-tam"]), "ca-cau-giay": ([], ["Phường Cầu Giấy"], [])}
            want = scope.get(user, (["Quận Hoàn Kiếm"], [], []))
            assert (me["districts"], me["wards"], me["areas"]) == want, me  # the scope the console shows
        login("op")
        assert visible() == (set(ids.values()), set(ids.values()))
        by_area = client.get("/api/reports", params={"area": "hue-trung-tam"}).json()["reports"]
        assert [v["id"] for v in by_area] == [ids["cam-thuan-hoa"]]  # the list's area filter
    finally:
        engine.dispose()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_migration_carries_district_users_and_alerts_over(backend: str, tmp_path: Path, request: Any) -> None:
    if backend == "sqlite":
        url, cleanup = f"sqlite:///{tmp_path / 'old.db'}", None
    else:
        admin = request.getfixturevalue("postgres_admin_url")
        name = f"test_two_tier_{uuid.uuid4().hex[:8]}"
        url, cleanup = create_database(admin, name), (admin, name)
    try:
        migrate(url, "0007")
        engine = make_engine(url)
        eid = str(uuid.uuid4())
        with engine.begin() as c:
            c.execute(
                text(
                    "INSERT INTO users (username, password_hash, role, districts, active, created_at) VALUES "
                    "('old-hk', 'x', 'police', :d, true, CURRENT_TIMESTAMP)"
                ),
                {"d": '["Quận Hoàn Kiếm"]'},
            )
            c.execute(
                text(
                    "INSERT INTO events (id, node, camera, type, category, phase, started_at, ended_at, confidence, payload, "
                    "received_at, clock_suspect) VALUES (:id, 'n', 'c', 'red_light', 'traffic', 'point', CURRENT_TIMESTAMP, "
                    "CURRENT_TIMESTAMP, 0.9, '{}', CURRENT_TIMESTAMP, false)"
                ),
                {"id": eid},
            )
            rid = c.execute(
                text(
                    "INSERT INTO reports (event_id, category, type, node, camera, title_vi, title_en, description_vi, "
                    "description_en, status, created_at, ward, district) VALUES (:id, 'traffic', 'red_light', 'n', 'c', "
                    "'t', 't', 'd', 'd', 'confirmed', CURRENT_TIMESTAMP, 'Phường Hàng Bài', 'Quận Hoàn Kiếm') RETURNING id"
                ),
                {"id": eid},
            ).scalar()
            c.execute(
                text(
                    "INSERT INTO alerts (report_id, district, topic_district, type, payload, created_at, attempts) VALUES "
                    "(:r, 'Quận Hoàn Kiếm', 'quan-hoan-kiem', 'red_light', '{}', CURRENT_TIMESTAMP, 0)"
                ),
                {"r": rid},
            )
        engine.dispose()
        migrate(url)
        engine = make_engine(url)
        from central.auth import _user
        from central.db import UserRow
        from central.queries import ReportFilter, alerts_after, list_reports

        with session_scope(make_session_factory(engine)) as s:
            row = s.scalars(select(UserRow).where(UserRow.username == "old-hk")).one()
            assert row.scope == {"wards": [], "areas": [], "districts": ["Quận Hoàn Kiếm"]}
            user = _user(row)
            assert user.districts == ("Quận Hoàn Kiếm",) and user.wards == () and user.areas == ()
            # They see what they saw: the report and its alert (now with the report's ward).
            assert [r.id for r in list_reports(s, user, ReportFilter(), 10)] == [rid]
            alerts = alerts_after(s, 0, 10, user)
            assert [(a.report_id, a.ward, a.topic_district) for a in alerts] == [
                (rid, "Phường Hàng Bài", "quan-hoan-kiem")
            ]
        engine.dispose()
    finally:
        if cleanup:
            drop_database(*cleanup)


BROKER_PW = {name: uuid.uuid4().hex for name in ("central", "node-a", "csgt-hue", "ca-phu-bai", "old-hk")}


@pytest.fixture(scope="module", params=["dynsec", "acl-file"])
def scoped_broker(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A private Mosquitto with police accounts scoped to an area, a ward and a legacy district."""
    from central.broker_security import broker_files
    from edge.local_broker import LocalMosquitto

    folder = tmp_path_factory.mktemp("two-tier-broker")
    security = broker_files(
        folder / "security",
        {"node-a": BROKER_PW["node-a"]},
        BROKER_PW["central"],
        prefix="ioc",
        tls=False,
        dynsec=request.param == "dynsec",
        police={
            "csgt-hue": ("hue-trung-tam", BROKER_PW["csgt-hue"]),  # an area, by its code
            "ca-phu-bai": ("Phường Phú Bài", BROKER_PW["ca-phu-bai"]),  # a ward in no area, by its name
            "old-hk": ("Quận Hoàn Kiếm", BROKER_PW["old-hk"]),  # an account made before 2025
        },
    )
    with LocalMosquitto(state_dir=folder / "state", security=security) as b:
        yield b


def test_alerts_reach_area_ward_and_legacy_district_accounts_on_a_real_broker(
    scoped_broker: Any, tmp_path: Path
) -> None:
    from central.alerts import AlertDispatcher
    from central.broker_security import CENTRAL_USER
    from contract.mqtt import MqttClient, MqttSettings
    from tests.services import wait_until
    from tests.support.central import ingest_processor

    url = f"sqlite:///{tmp_path / 'central.db'}"
    migrate(url)
    cfg = CentralConfig.model_validate(
        {
            "database_url": url,
            "evidence_dir": str(tmp_path / "ev"),
            "web": {"public_url": "http://c.test"},
            "mqtt": {
                "url": scoped_broker.url,
                "topic_prefix": "ioc",
                "username": CENTRAL_USER,
                "password": BROKER_PW["central"],
            },
            "alerts": {"poll_interval_s": 0.1, "immediate_types": ["wrong_way"]},
        }
    )
    engine = make_engine(url)
    received: dict[str, list[str]] = {}
    clients = []
    own = {"csgt-hue": "hue-trung-tam", "ca-phu-bai": "phuong-phu-bai", "old-hk": "quan-hoan-kiem"}
    for user, slug in own.items():
        received[user] = []
        subacks: list[Any] = []
        c = MqttClient(
            MqttSettings(scoped_broker.url, user, username=user, password=BROKER_PW[user]),
            # Each also asks for every alert: the broker gives it only its own place's.
            on_connect=lambda *_a, c_user=user, c_slug=slug: clients_by_user[c_user].subscribe(
                [f"ioc/alerts/{c_slug}/#", "ioc/alerts/#"]
            ),
            on_subscribed=subacks.append,
            on_message=lambda _c, _u, m, c_user=user: received[c_user].append(m.topic),
        )
        clients.append((c, subacks))
    clients_by_user = {user: c for user, (c, _s) in zip(own, clients, strict=True)}
    for c, subacks in clients:
        c.start()
        wait_until(c.connected.is_set, 10, what="police client connected")
        wait_until(lambda s=subacks: bool(s), 10, what="police client subscribed")  # type: ignore[misc]
    processor = ingest_processor(cfg, engine)
    dispatcher = AlertDispatcher(cfg, engine).start()
    try:
        places = {
            "cam-thuan-hoa": {"province": "Huế", "ward": "Phường Thuận Hóa"},
            "cam-phu-bai": {"province": "Huế", "ward": "Phường Phú Bài"},
            "cam-old-hk": {"ward": "Phường Hàng Bài", "district": "Quận Hoàn Kiếm"},
        }
        for camera, loc in places.items():
            ev = make_event(type="wrong_way", node="node-a", camera=camera, location=loc)
            processor.process(event_topic("ioc", "node-a", camera, "wrong_way"), ev.to_json().encode())
        for user, slug in own.items():
            want = f"ioc/alerts/{slug}/wrong_way"
            wait_until(lambda u=user, w=want: w in received[u], 15, what=f"{user} receives {want}")  # type: ignore[misc]
        wait_until(lambda: dispatcher.sent == 3, 10, what="three alerts sent")
        for user, slug in own.items():
            assert set(received[user]) == {f"ioc/alerts/{slug}/wrong_way"}, (user, received[user])  # its own only
    finally:
        dispatcher.stop()
        for c, _s in clients:
            c.stop()
        engine.dispose()


def test_webhooks_scoped_by_area_ward_or_legacy_district() -> None:
    from central.alerts import _webhooks_for

    hooks = [
        {"url": "http://all.test/", "secret": "s" * 16},
        {"url": "http://hue.test/", "secret": "s" * 16, "areas": ["hue-trung-tam"]},
        {"url": "http://phu-bai.test/", "secret": "s" * 16, "wards": ["Phường Phú Bài"]},
        {"url": "http://old-hk.test/", "secret": "s" * 16, "districts": ["Quận Hoàn Kiếm"]},
    ]
    cfg = CentralConfig.model_validate({"alerts": {"webhooks": hooks}})

    def urls(**place: Any) -> set[str]:
        alert = AlertRow(report_id=1, topic_district="x", type="red_light", payload={}, **place)
        return {w.url for w in _webhooks_for(cfg, alert)}

    assert urls(ward="Phường Thuận Hóa", area="hue-trung-tam") == {"http://all.test/", "http://hue.test/"}
    assert urls(ward="Phường Phú Bài") == {"http://all.test/", "http://phu-bai.test/"}
    assert urls(ward="Phường Hàng Bài", district="Quận Hoàn Kiếm") == {"http://all.test/", "http://old-hk.test/"}
    assert urls(ward="Xã Khác") == {"http://all.test/"}
