"""Exports: a filtered report list as CSV (UTF-8 with BOM, so Excel shows Vietnamese right) and one
report as a one-page PDF record (central/record_pdf.py)."""

from __future__ import annotations

import csv
import io
import unicodedata
from typing import Any

from central.record_pdf import report_pdf as report_pdf  # one report as a one-page A4 record

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
    ("plate", lambda v: v["plate"] or ("unreadable" if v.get("plate_read") else "")),
    ("plate_confidence", lambda v: v["plate_read"]["confidence"] if (v.get("plate_read") or {}).get("confidence") is not None else ""),
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
