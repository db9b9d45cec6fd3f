"""Exports: a filtered report list as CSV (UTF-8 with BOM, so Excel shows Vietnamese right) and one
report as a one-page PDF record (central/record_pdf.py)."""

from __future__ import annotations

import csv
import io
import unicodedata
from collections.abc import Callable
from datetime import datetime
from typing import Any

from central.record_pdf import report_pdf as report_pdf
from central.reports import DEFAULT_TZ, PRIORITY_TEXT, local_iso  # one report as a one-page A4 record

Column = tuple[str, Callable[[dict[str, Any], str], Any]]


def _local(value: dict[str, Any] | None, tz: str) -> str:
    return local_iso(datetime.fromisoformat(value["at"]), tz) if value else ""


# (header, value of a report view in time zone tz). Codes for machines beside the words a person
# reads (status, priority, type); every time in the console's zone with its offset, to the second.
CSV_COLUMNS: tuple[Column, ...] = (
    ("id", lambda v, tz: v["id"]),
    ("trang_thai", lambda v, tz: v["status"]["vi"]),
    ("status", lambda v, tz: v["status"]["code"]),
    ("uu_tien", lambda v, tz: PRIORITY_TEXT.get(v["priority"], {}).get("vi", v["priority"])),
    ("priority", lambda v, tz: v["priority"]),
    ("overdue", lambda v, tz: "yes" if v["overdue"] else "no"),
    ("category", lambda v, tz: v["category"]["code"]),
    ("type", lambda v, tz: v["type"]["code"]),
    ("title_vi", lambda v, tz: v["title"]["vi"]),
    ("camera", lambda v, tz: v["place"]["camera"]),
    ("ward", lambda v, tz: v["place"]["ward"] or ""),
    ("district", lambda v, tz: v["place"]["district"] or ""),
    ("address", lambda v, tz: v["place"]["address"] or ""),
    ("lat", lambda v, tz: "" if v["place"]["lat"] is None else v["place"]["lat"]),
    ("lon", lambda v, tz: "" if v["place"]["lon"] is None else v["place"]["lon"]),
    ("first_seen", lambda v, tz: _local(v["first_seen"], tz)),
    ("last_seen", lambda v, tz: _local(v["last_seen"], tz)),
    ("events", lambda v, tz: v["event_count"]),
    ("plate", lambda v, tz: v["plate"] or ("unreadable" if v.get("plate_read") else "")),
    ("plate_confidence", lambda v, tz: v["plate_read"]["confidence"] if (v.get("plate_read") or {}).get("confidence") is not None else ""),
    ("agency", lambda v, tz: v["agency"]["code"] or ""),
    ("deadline", lambda v, tz: _local(v["deadline"], tz)),
    ("url", lambda v, tz: v["links"]["html"]),
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


def reports_csv(views: list[dict[str, Any]], tz: str = DEFAULT_TZ) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow([name for name, _ in CSV_COLUMNS])
    for v in views:
        w.writerow([_cell(get(v, tz)) for _, get in CSV_COLUMNS])
    return ("\ufeff" + buf.getvalue()).encode("utf-8")
