"""Routing table, deadlines, the review state machine, share links, webhook signatures (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from central.alerts import sign, verify
from central.auth import check_share_ref, share_ref
from central.db import ReportRow
from central.workflow import TRANSITIONS, WorkflowError, district_slug, is_overdue, load_routing
from contract.configfile import ConfigError
from contract.events import Category

T0 = datetime(2026, 11, 21, 7, 0, tzinfo=UTC)


def test_routing_traffic_goes_to_the_district_police_and_order_to_the_ward():
    rt = load_routing()
    assert rt.route(Category.TRAFFIC, "Phường Hàng Bài", "Quận Hoàn Kiếm")[0] == "csgt-hoan-kiem"
    # The old ward's name routes to the committee of the ward that took it over (2025-07-01).
    assert rt.route(Category.URBAN_ORDER, "Phường Hàng Bài", "Quận Hoàn Kiếm")[0] == "ubnd-cua-nam"
    assert rt.route(Category.SANITATION, "Phường Vĩnh Ninh", "Thành phố Huế")[0] == "urenco-hue"
    # No police agency for this district: the catch-all desk gets it instead of nobody.
    assert rt.route(Category.TRAFFIC, None, "Quận Ba Đình")[0] == "ioc-dispatch"
    assert rt.route(Category.URBAN_ORDER, None, None)[0] == "ioc-dispatch"


def test_deadlines_urgent_much_shorter():
    rt = load_routing()
    assert rt.priority("red_light") == "urgent"
    assert rt.priority("illegal_stopping") == "normal"
    urgent = rt.deadline(Category.TRAFFIC, "urgent", T0) - T0
    normal = rt.deadline(Category.TRAFFIC, "normal", T0) - T0
    assert urgent == timedelta(minutes=30) and normal == timedelta(days=1)


def test_bad_routing_file_names_file_and_key(tmp_path):
    bad = tmp_path / "routing.yaml"
    bad.write_text(
        "agencies: {a: {name: {vi: A, en: A}, kind: ioc}}\n"
        "routes: [{category: traffic, agency: nobody}]\n"
        "deadlines_minutes: {traffic: {urgent: 60, normal: 30}, urban_order: {urgent: 1, normal: 2},"
        " sanitation: {urgent: 1, normal: 2}}\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as e:
        load_routing(bad)
    msg = str(e.value)
    assert str(bad) in msg and "deadlines_minutes.traffic" in msg and "urgent must be shorter" in msg


def _report(status: str, deadline: datetime | None = None) -> ReportRow:
    return ReportRow(id=1, status=status, deadline_at=deadline)


def test_state_machine():
    assert TRANSITIONS["confirm"].source == ("new",) and TRANSITIONS["confirm"].target == "confirmed"
    assert TRANSITIONS["reject"].needs_reason
    assert "police" not in TRANSITIONS["confirm"].roles and "police" in TRANSITIONS["resolve"].roles


def test_overdue():
    past = datetime.now(UTC) - timedelta(minutes=1)
    assert is_overdue(_report("new", past))
    assert is_overdue(_report("forwarded", past))
    assert not is_overdue(_report("resolved", past))
    assert not is_overdue(_report("new", datetime.now(UTC) + timedelta(hours=1)))


def test_workflow_error_statuses():
    assert WorkflowError(409, "x").status == 409


def test_district_slug():
    assert district_slug("Quận Hoàn Kiếm") == "quan-hoan-kiem"
    assert district_slug("Thành phố Đà Nẵng") == "thanh-pho-da-nang"
    assert district_slug(None) == "unknown"
    assert district_slug("a/b#+") == "a-b"


def test_share_links_are_signed_per_report():
    secret = b"k" * 32
    ref = share_ref(secret, 12)
    assert ref.startswith("12-") and check_share_ref(secret, ref) == 12
    assert check_share_ref(secret, "13-" + ref.split("-", 1)[1]) is None  # another id
    assert check_share_ref(b"other" * 8, ref) is None
    assert check_share_ref(secret, "12") is None and check_share_ref(secret, "x-y") is None


def test_webhook_signature_roundtrip_and_replay_window():
    body = b'{"report_id": 1}'
    now = 1_800_000_000
    sig = sign("s" * 16, str(now), body)
    assert sig.startswith("sha256=")
    import time

    ts = str(int(time.time()))
    assert verify("s" * 16, ts, body, sign("s" * 16, ts, body))
    assert not verify("s" * 16, ts, body + b" ", sign("s" * 16, ts, body))
    assert not verify("t" * 16, ts, body, sign("s" * 16, ts, body))
    assert not verify("s" * 16, str(now - 10_000_000), body, sign("s" * 16, str(now - 10_000_000), body))
