"""Exports: a filtered report list as CSV (UTF-8 with BOM, so Excel shows Vietnamese right) and one
report as a PDF (fpdf2 with a Unicode TTF font; the core PDF fonts have no Vietnamese letters)."""

from __future__ import annotations

import csv
import io
import logging
import unicodedata
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fpdf import FPDF

from central.logs import kv

log = logging.getLogger("central.export")

FONT_CANDIDATES = (
    Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"),
    Path("/usr/share/fonts/truetype/noto/NotoSans-Regular.ttf"),
    Path("/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf"),
)

CSV_COLUMNS = (
    ("id", lambda v: v["id"]),
    ("status", lambda v: v["status"]["code"]),
    ("priority", lambda v: v["priority"]),
    ("overdue", lambda v: "yes" if v["overdue"] else "no"),
    ("category", lambda v: v["category"]["code"]),
    ("type", lambda v: v["type"]["code"]),
    ("title_vi", lambda v: v["title"]["vi"]),
    ("camera", lambda v: v["place"]["camera"]),
    ("ward", lambda v: v["place"]["ward"] or ""),
    ("district", lambda v: v["place"]["district"] or ""),
    ("address", lambda v: v["place"]["address"] or ""),
    ("lat", lambda v: "" if v["place"]["lat"] is None else v["place"]["lat"]),
    ("lon", lambda v: "" if v["place"]["lon"] is None else v["place"]["lon"]),
    ("first_seen", lambda v: v["first_seen"]["at"] if v["first_seen"] else ""),
    ("last_seen", lambda v: v["last_seen"]["at"] if v["last_seen"] else ""),
    ("events", lambda v: v["event_count"]),
    ("plate", lambda v: v["plate"] or ""),
    ("agency", lambda v: v["agency"]["code"] or ""),
    ("deadline", lambda v: v["deadline"]["at"] if v["deadline"] else ""),
    ("url", lambda v: v["links"]["html"]),
)


_FORMULA_START = ("=", "+", "-", "@")
_CONTROL_START = ("\t", "\r", "\n")


def _cell(value: Any) -> Any:
    """Spreadsheet formula injection: a text cell starting with = + - @ would be run by Excel, and
    so would one starting with TAB/CR/LF or blanks before them (spreadsheets trim them), or with the
    full-width ＝ ＋ － ＠ (spreadsheets fold them to ASCII). Such a cell gets a leading quote."""
    if not isinstance(value, str) or not value:
        return value
    first = unicodedata.normalize("NFKC", value.lstrip()[:1])
    if value[0] in _CONTROL_START or first[:1] in _FORMULA_START:
        return "'" + value
    return value


def reports_csv(views: list[dict[str, Any]]) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow([name for name, _ in CSV_COLUMNS])
    for v in views:
        w.writerow([_cell(get(v)) for _, get in CSV_COLUMNS])
    return ("\ufeff" + buf.getvalue()).encode("utf-8")


def _font() -> Path:
    for path in FONT_CANDIDATES:
        if path.is_file():
            return path
    raise RuntimeError("no Unicode TTF font found (install Debian fonts-dejavu-core)")


def report_pdf(view: dict[str, Any], *, evidence_path: Callable[[str], Path | None]) -> bytes:
    """One report: title, status, place, time, agency, deadline, description (vi + en), snapshot."""
    pdf = FPDF(format="A4")
    pdf.set_auto_page_break(True, margin=15)
    pdf.add_font("body", "", str(_font()))
    pdf.add_page()
    pdf.set_title(f"#{view['id']} {view['title']['vi']}")
    pdf.set_font("body", size=16)
    pdf.multi_cell(0, 8, f"#{view['id']} {view['title']['vi']}", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("body", size=11)
    pdf.multi_cell(0, 6, view["title"]["en"], new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)
    rows = [
        ("Trạng thái / Status", f"{view['status']['vi']} / {view['status']['en']}"),
        ("Lĩnh vực / Category", f"{view['category']['vi']} / {view['category']['en']}"),
        ("Mức độ / Priority", view["priority"]),
        ("Địa điểm / Place", view["place"]["text"]["vi"]),
        ("Camera", f"{view['place']['camera']} (node {view['place']['node']})"),
        ("Thời gian / Time", view["first_seen"]["vi"] if view["first_seen"] else view["time"]["text"]["vi"]),
        ("Số lần / Events", str(view["event_count"])),
        ("Biển số / Plate", view["plate"] or "—"),
        ("Đơn vị xử lý / Agency", view["agency"]["vi"] or "—"),
        (
            "Hạn xử lý / Deadline",
            (view["deadline"]["vi"] if view["deadline"] else "—") + (" (QUÁ HẠN / OVERDUE)" if view["overdue"] else ""),
        ),
    ]
    for label, value in rows:
        pdf.set_font("body", size=9)
        pdf.cell(50, 6, label)
        pdf.set_font("body", size=10)
        pdf.multi_cell(0, 6, str(value), new_x="LMARGIN", new_y="NEXT")
    snap = next((e for e in view["evidence"] if e["kind"] == "snapshot" and e["available"]), None)
    path = evidence_path(snap["sha256"]) if snap else None
    if path is not None:
        pdf.ln(2)
        try:
            pdf.image(str(path), w=170)
        except Exception as e:  # noqa: BLE001  (PIL/fpdf raise many kinds for bytes that are not a picture)
            # Stored bytes that are not a decodable picture must not make this report's PDF fail for
            # ever: the PDF says so where the picture would be, and the fault is logged.
            log.warning(kv("evidence_unreadable", report=view["id"], sha256=snap["sha256"], error=type(e).__name__))
            pdf.set_font("body", size=10)
            pdf.multi_cell(
                0, 8, "[Ảnh không đọc được / picture unreadable]", border=1, align="C", new_x="LMARGIN", new_y="NEXT"
            )
        pdf.set_font("body", size=7)
        pdf.multi_cell(0, 4, f"sha256 {snap['sha256']}", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)
    pdf.set_font("body", size=10)
    pdf.multi_cell(0, 5, view["description"]["vi"], new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)
    pdf.set_font("body", size=9)
    pdf.multi_cell(0, 5, view["description"]["en"], new_x="LMARGIN", new_y="NEXT")
    if view.get("history"):
        pdf.ln(2)
        pdf.set_font("body", size=11)
        pdf.cell(0, 6, "Lịch sử xử lý / Audit trail", new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("body", size=8)
        for h in view["history"]:
            line = f"{h['at']}  {h['actor']}  {h['action']}  {h['from_status'] or ''} → {h['to_status'] or ''}  {h['note'] or ''}"
            pdf.multi_cell(0, 4, line, new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())
