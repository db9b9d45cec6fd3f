"""Field report texts and views, Vietnamese and English (pure: event in, text out)."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace

import pytest

from central.reports import (
    build_report_texts,
    default_templates,
    format_duration,
    load_templates,
    report_view,
)
from contract.configfile import ConfigError
from contract.events import known_violation_types
from edge.rules.registry import violation_kinds
from tests.services import make_event


def _row(event, texts, report_id=7, status="new"):
    return SimpleNamespace(
        id=report_id,
        status=status,
        created_at=datetime(2026, 11, 21, 7, 5, tzinfo=UTC),
        title_vi=texts.title_vi,
        title_en=texts.title_en,
        description_vi=texts.description_vi,
        description_en=texts.description_en,
    )


def test_illegal_stopping_texts_vi_en():
    texts = build_report_texts(make_event())
    assert texts.title_vi == "Dừng, đỗ xe sai quy định"
    assert texts.title_en == "Illegal stopping or parking"
    vi, en = texts.description_vi, texts.description_en
    # place, vehicle and plate, duration
    assert "12 Lê Lợi, Phường Vĩnh Ninh, Thành phố Huế" in vi
    assert "xe ô tô biển số 75A-123.45" in vi
    assert "trong 3 phút 25 giây" in vi
    assert "a car with plate 75A-123.45" in en and "for 3 min 25 s" in en
    # local time (UTC+7) and UTC
    assert "14:03:05 ngày 21/11/2026 (UTC+07:00)" in vi
    assert "2026-11-21 14:03:05 (UTC+07:00)" in en
    assert "2026-11-21 07:03:05 UTC" in vi and "2026-11-21 07:03:05 UTC" in en
    assert "16.463700, 107.590900" in vi
    assert "Độ tin cậy: 91%" in vi and "Confidence: 91%" in en
    assert "sha256:aaaaaaaaaaaa" in vi and "Video clip" in en


def test_every_violation_type_has_texts_with_diacritics():
    templates = default_templates()
    known = set(violation_kinds())
    assert known >= set(known_violation_types()) and set(templates.types) == known
    for vtype in known:
        texts = build_report_texts(make_event(type=vtype, details={}))
        assert texts.title_vi and texts.title_en and texts.title_vi != texts.title_en
        assert "{" not in texts.description_vi and "{" not in texts.description_en, vtype
    assert build_report_texts(make_event(type="littering")).title_vi == "Đổ rác thải trái nơi quy định"
    assert build_report_texts(make_event(type="sidewalk_encroachment")).title_vi == "Buôn bán, lấn chiếm vỉa hè"


def test_report_without_location_objects_or_duration():
    event = make_event(location={}, objects=[], evidence=[], details={}, zone=None)
    texts = build_report_texts(event)
    assert "vị trí camera cam-le-loi-01" in texts.description_vi
    assert "phương tiện dừng, đỗ" in texts.description_vi
    assert "Thời gian dừng" not in texts.description_vi
    assert "the location of camera cam-le-loi-01" in texts.description_en


@pytest.mark.parametrize(
    ("seconds", "vi", "en"),
    [(205, "3 phút 25 giây", "3 min 25 s"), (3600, "1 giờ", "1 h"), (0.4, "0 giây", "0 s"), (None, "", "")],
)
def test_format_duration(seconds, vi, en):
    assert format_duration(seconds, "vi") == vi
    assert format_duration(seconds, "en") == en


def test_view_json_and_html():
    event = make_event()
    texts = build_report_texts(event)
    view = report_view(_row(event, texts), event, available_evidence={"a" * 64}, base_url="http://c.example/")
    assert view["id"] == 7
    assert view["category"] == {"code": "traffic", "vi": "Trật tự an toàn giao thông", "en": "Traffic"}
    assert view["place"]["ward"] == "Phường Vĩnh Ninh"
    assert view["time"]["started_local"] == "2026-11-21T14:03:05+07:00"
    assert view["stopped_seconds"] == 205.0
    assert view["snapshot_url"] == "http://c.example/evidence/" + "a" * 64
    assert [e["available"] for e in view["evidence"]] == [True, False]
    assert view["links"]["json"] == "http://c.example/reports/7.json"


def test_templates_file_overrides_one_type_in_part(tmp_path):
    """The deployer's file changes the wording of the types it names; the rest keep the rules' texts."""
    path = tmp_path / "t.yaml"
    path.write_text("illegal_stopping:\n  title: {vi: Đỗ xe sai chỗ, en: Bad parking}\n", encoding="utf-8")
    templates = load_templates(path)
    texts = build_report_texts(make_event(), templates=templates)
    assert texts.title_vi == "Đỗ xe sai chỗ" and texts.title_en == "Bad parking"
    assert "dừng, đỗ trong khu vực cấm dừng" in texts.description_vi  # the rule's lead is kept
    assert build_report_texts(make_event(type="littering"), templates=templates).title_en == "Littering or illegal dumping"


def test_templates_file_with_a_bad_key_is_a_config_error(tmp_path):
    bad = tmp_path / "t.yaml"
    bad.write_text("illegal_stopping:\n  titel: {vi: a, en: b}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="illegal_stopping.titel"):
        load_templates(bad)


def test_a_type_central_has_no_texts_for_gets_a_generic_bilingual_text():
    """An edge newer than central raises a type central never heard of: the report is written, in
    both languages, with the type named, not refused."""
    event = make_event(type="seat_belt", category="traffic", details={})
    texts = build_report_texts(event)
    assert texts.title_vi == "Vi phạm (seat belt)" and texts.title_en == "Violation (seat belt)"
    assert "seat belt" in texts.description_vi and "seat belt" in texts.description_en
    assert "{" not in texts.description_vi + texts.description_en
