"""The PDF record's history lines: a status change reads "from → to"; an entry that keeps the
status (the creation entry, an alert) names the status once instead of "Mới → Mới"."""

from zoneinfo import ZoneInfo

from central.record_pdf import _history_line

ZONE = ZoneInfo("Asia/Ho_Chi_Minh")


def _entry(action: str, frm: str | None, to: str | None) -> dict[str, object]:
    return {"action": action, "from_status": frm, "to_status": to, "actor": "op", "at": "2026-12-02T01:00:00+00:00"}


def test_a_change_reads_from_and_to() -> None:
    line = _history_line(_entry("confirm", "new", "confirmed"), ZONE, "vi")
    assert "op: xác nhận  Mới → Đã xác nhận" in line, line


def test_the_creation_entry_names_its_status_once() -> None:
    line = _history_line(_entry("created", "new", "new"), ZONE, "vi")
    assert "→" not in line and line.endswith("tạo phản ánh  (Mới)"), line
    assert _history_line(_entry("created", None, "new"), ZONE, "en").endswith("created  → New")


def test_an_entry_without_a_status_has_no_change() -> None:
    line = _history_line(_entry("alert_queued", None, None), ZONE, "en")
    assert line.endswith("op: police alert queued"), line
