"""Free-text search on PostgreSQL over 1,000,000 reports (issue 17, item 3): the console's query
(`central.queries.list_reports` with `q=`: the newest 50 matching, as the list page and /api/reports
run it, plus the capped count the list page shows) with the trigram index of migration 0008, and
without it (dropped), in the same run.

    .venv/bin/python benchmarks/report_search.py [--reports 1000000] [--runs 7]

A throwaway database is created (and dropped) on TEST_POSTGRES_URL (default the local server). The
reports are generated in SQL (generate_series): 120 wards, 400 streets, 200 cameras, a plate on
nine in ten; their search text is what central.search writes (folded words). Prints each query's
plan (EXPLAIN ANALYZE) and the median of several runs, with and without the index.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import select, text  # noqa: E402

from central.auth import User  # noqa: E402
from central.db import ReportRow, make_engine, make_session_factory, migrate  # noqa: E402
from central.queries import ReportFilter, apply_filter, count_reports, list_reports  # noqa: E402
from central.search import fold  # noqa: E402
from tests.services import DEFAULT_POSTGRES_ADMIN_URL, create_database, drop_database  # noqa: E402

# Real ward and street names, folded as central.search folds them; the rest are numbered.
_WARDS = ["Cầu Giấy", "Cửa Nam", "Hoàn Kiếm", "Ba Đình", "Thuận Hóa", "Phú Xuân", "Kim Long", "Vỹ Dạ",
          "Hương An", "An Cựu", "Thủy Xuân", "Dương Nỗ", "Nghĩa Đô", "Yên Hòa", "Láng", "Đống Đa"]
_STREETS = ["Lê Lợi", "Hùng Vương", "Trần Hưng Đạo", "Lý Thường Kiệt", "Hàng Bài", "Trần Thái Tông",
            "Xuân Thủy", "Nguyễn Huệ", "Điện Biên Phủ", "Bà Triệu"]


def _sql_array(names: list[str], n: int, prefix: str) -> str:
    folded = [fold(x) for x in names] + [f"{prefix} {i}" for i in range(len(names), n)]
    return "ARRAY[" + ",".join(f"'{x}'" for x in folded) + "]"


def _generate(conn: Any, n: int) -> None:
    wards, streets = _sql_array(_WARDS, 120, "phuong"), _sql_array(_STREETS, 400, "duong")
    conn.execute(
        text(
            "INSERT INTO events (id, node, camera, type, category, phase, started_at, ended_at, confidence, "
            "payload, received_at, clock_suspect) "
            "SELECT lpad(g::text, 36, '0'), 'node-1', 'cam-' || (g % 200), 'red_light', 'traffic', 'point', "
            "now() - g * interval '1 minute', now() - g * interval '1 minute', 0.9, '{}'::jsonb, now(), false "
            "FROM generate_series(1, :n) AS g"
        ),
        {"n": n},
    )
    # Plates like '29-B1 123.45': the read parts and the normalised plate, as central.search writes them.
    plate = (
        "lpad(((g * 7919) % 89 + 11)::text, 2, '0') || ' ' || lower(chr((65 + (g * 31) % 26)::int)) || "
        "((g * 13) % 10)::text || ' ' || lpad(((g * 104729) % 1000)::text, 3, '0') || ' ' || lpad(((g * 7) % 100)::text, 2, '0')"
    )
    conn.execute(
        text(
            "INSERT INTO reports (event_id, category, type, node, camera, title_vi, title_en, description_vi, "
            "description_en, status, created_at, first_seen, last_seen, best_event_id, ward, address, zone_id, "
            "plate, search_text) "
            "SELECT id, 'traffic', 'red_light', 'node-1', cam, 't', 't', 'd', 'd', 'new', now(), now(), now(), id, "
            "ward, addr, 'zone-' || (g % 7), p, "
            "addr || ' phuong ' || ward || ' ' || replace(cam, '-', ' ') || ' camera nga tu so ' || (g % 200) || "
            "' zone ' || (g % 7) || coalesce(' ' || p || ' ' || replace(p, ' ', ''), '') "
            "FROM (SELECT g, lpad(g::text, 36, '0') AS id, 'cam-' || (g % 200) AS cam, "
            f"({wards})[1 + (g * 37) % 120] AS ward, "
            f"((g * 53) % 300 + 1)::text || ' ' || ({streets})[1 + (g * 11) % 400] AS addr, "
            f"CASE WHEN g % 10 = 0 THEN NULL ELSE {plate} END AS p "
            "FROM generate_series(1::bigint, :n) AS g) AS s"
        ),
        {"n": n},
    )
    conn.execute(text("ANALYZE reports"))


SEARCHES = {
    "one ward (1 in 120)": "cau giay",
    "ward + street (rare)": "cua nam le loi",
    "street, no accents (1 in 400)": "hung vuong",
    "partial plate, 5 digits": None,  # filled from a stored plate
    "camera name words (everything)": "nga tu",
    "no such place": "khong co dau",
}


def _time(sessions: Any, q: str, runs: int) -> tuple[float, float, int, int]:
    admin = User(id=0, username="bench", role="admin", districts=())
    page_ms, count_ms, found, total = [], [], 0, 0
    for _ in range(runs):
        with sessions() as s:
            t = time.perf_counter()
            found = len(list_reports(s, admin, ReportFilter(q=q), 51))  # the page asks one more than it shows
            page_ms.append((time.perf_counter() - t) * 1000)
            t = time.perf_counter()
            total = count_reports(s, admin, ReportFilter(q=q))
            count_ms.append((time.perf_counter() - t) * 1000)
    return statistics.median(page_ms), statistics.median(count_ms), found, total


def _plan(engine: Any, q: str) -> str:
    stmt = apply_filter(select(ReportRow.id), ReportFilter(q=q)).order_by(ReportRow.id.desc()).limit(51)
    compiled = stmt.compile(engine)
    with engine.connect() as c:
        sql = "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) " + str(compiled)
        return "\n".join("      " + r for r in c.exec_driver_sql(sql, compiled.params).scalars())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reports", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=7)
    args = ap.parse_args()
    admin_url = os.environ.get("TEST_POSTGRES_URL", DEFAULT_POSTGRES_ADMIN_URL)
    name = f"bench_search_{uuid.uuid4().hex[:8]}"
    url = create_database(admin_url, name)
    try:
        migrate(url)
        engine = make_engine(url)
        with engine.begin() as c:
            t = time.perf_counter()
            _generate(c, args.reports)
            print(f"{args.reports} reports generated in {time.perf_counter() - t:.1f} s")
            trgm = c.execute(text("SELECT count(*) FROM pg_indexes WHERE indexname = 'ix_reports_search_text_trgm'")).scalar()
            sample = str(c.execute(text("SELECT plate FROM reports WHERE plate IS NOT NULL ORDER BY id LIMIT 1 OFFSET 777")).scalar())
        print(f"trigram index present after migrate: {bool(trgm)}")
        searches = dict(SEARCHES)
        searches["partial plate, 5 digits"] = sample.replace(" ", "")[-5:]
        sessions = make_session_factory(engine)
        results: dict[str, dict[str, tuple[float, float, int, int]]] = {}
        for phase in ("with trigram index", "without"):
            if phase == "without":
                with engine.begin() as c:
                    c.execute(text("DROP INDEX ix_reports_search_text_trgm"))
            print(f"\n== {phase}")
            for label, q in searches.items():
                assert q is not None
                _time(sessions, q, 1)  # warm the cache
                results.setdefault(label, {})[phase] = t4 = _time(sessions, q, args.runs)
                print(f"  {label}: {q!r}: page {t4[2]} found in {t4[0]:.1f} ms, count {t4[3]} in {t4[1]:.1f} ms")
                print(_plan(engine, q))
        print("\n| search | page rows / count | with index: page, count ms | without: page, count ms | ratio (page+count) |")
        print("|---|---|---|---|---|")
        for label, both in results.items():
            a, b = both["with trigram index"], both["without"]
            ratio = (b[0] + b[1]) / (a[0] + a[1])
            print(f"| {label}: `{searches[label]}` | {a[2]} / {a[3]} | {a[0]:.1f}, {a[1]:.1f} | {b[0]:.1f}, {b[1]:.1f} | {ratio:.1f}× |")
        engine.dispose()
    finally:
        drop_database(admin_url, name)


if __name__ == "__main__":
    main()
