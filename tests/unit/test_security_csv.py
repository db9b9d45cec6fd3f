"""Issue 18, defect 10: CSV formula neutralisation also catches what spreadsheets trim or fold
(leading TAB/CR/LF/space, full-width ＝＋－＠), and leaves ordinary text alone."""

from __future__ import annotations

import csv
import io

import pytest

from central.export import _cell, reports_csv

ATTACKS = [
    '=HYPERLINK("http://x")',
    "+1+1",
    "-1+1",
    "@SUM(A1)",
    "\t=1+1",
    "\r=1+1",
    "\n=1+1",
    " =1+1",
    "   @SUM(A1)",
    "\u3000=1+1",
    "\u00a0=1+1",
    "＝1+1",
    "＋1",
    "－1",
    "＠SUM(A1)",
    " ＝1+1",
    "\tplain",
    "\rplain",
]
SAFE = ["12 Lê Lợi", "75A-123.45", "a=b", "Phường Vĩnh Ninh", "", "1.5", "x-y"]


@pytest.mark.parametrize("value", ATTACKS)
def test_formula_cells_get_a_leading_quote(value):
    assert _cell(value) == "'" + value


@pytest.mark.parametrize("value", SAFE)
def test_ordinary_text_is_left_alone(value):
    assert _cell(value) == value


def test_non_text_cells_are_left_alone():
    assert _cell(16.4637) == 16.4637 and _cell(7) == 7 and _cell(None) is None


def test_the_exported_file_carries_the_quote():
    view = {
        "id": 1,
        "status": {"code": "new", "vi": "=Mới"},
        "priority": "normal",
        "overdue": False,
        "category": {"code": "c"},
        "type": {"code": "t"},
        "title": {"vi": "＝1+1"},
        "place": {"camera": "\t=cmd", "ward": " =1", "district": None, "address": "－2", "lat": None, "lon": None},
        "first_seen": None,
        "last_seen": None,
        "event_count": 1,
        "plate": "@x",
        "agency": {"code": None},
        "deadline": None,
        "links": {"html": "/reports/1"},
    }
    rows = list(csv.reader(io.StringIO(reports_csv([view]).decode("utf-8-sig"))))
    row = dict(zip(rows[0], rows[1], strict=True))
    for key in ("title_vi", "trang_thai", "camera", "ward", "address", "plate"):
        assert row[key].startswith("'"), (key, row[key])
