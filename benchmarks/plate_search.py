"""Plate search on PostgreSQL over many reports (issue 16): the console's query (`central.queries.
list_reports` with a plate filter: newest 50 matching, as the list page and /api/reports run it)
with the trigram index of migration 0006, and without it (dropped: the B-tree on plate_norm only).

    EDGE_DATA_DIR=../shared/data .venv/bin/python benchmarks/plate_search.py [--reports 200000]

A throwaway database is created (and dropped) on TEST_POSTGRES_URL (default the local server);
the reports and their events are generated in SQL. Prints the plan of each query (EXPLAIN ANALYZE)
and the median of several runs, with and without the index, in the same run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import text  # noqa: E402

from central.auth import User  # noqa: E402
from central.db import make_engine, make_session_factory, migrate  # noqa: E402
from central.queries import ReportFilter, apply_filter, list_reports  # noqa: E402
from tests.services import DEFAULT_POSTGRES_ADMIN_URL, create_database, drop_database  # noqa: E402

# Plates spread over provinces, series and numbers like real ones ('29-B1 123.45', '30A-123.45').
_PLATE = (
    "lpad(((g * 7919) % 89 + 11)::text, 2, '0') || "
    "CASE WHEN g % 3 = 0 THEN chr((65 + (g * 31) % 26)::int) || '-' "
    "ELSE '-' || chr((65 + (g * 31) % 26)::int) || ((g * 13) % 10)::text || ' ' END || "
    "lpad(((g * 104729) % 1000)::text, 3, '0') || '.' || lpad(((g * 7) % 100)::text, 2, '0')"
)

SEARCHES = {
    "full plate, typed loosely ('29b1 12345'-style)": None,  # filled from a stored plate
    "partial: the 5 digits": None,
    "partial: 3 characters": "B1 1",
    "no such plate": "99Z9 99999",
}


def _generate(conn: object, n: int) -> None:
    c = conn  # a Connection
    c.execute(  # type: ignore[attr-defined]
        text(
            "INSERT INTO events (id, node, camera, type, category, phase, started_at, ended_at, confidence, "
            "payload, received_at, clock_suspect) "
            "SELECT lpad(g::text, 36, '0'), 'node-1', 'cam-' || (g % 50), 'red_light', 'traffic', 'point', "
            "now() - g * interval '1 minute', now() - g * interval '1 minute', 0.9, '{}'::jsonb, now(), false "
            "FROM generate_series(1, :n) AS g"
        ),
        {"n": n},
    )
    c.execute(  # type: ignore[attr-defined]
        text(
            "INSERT INTO reports (event_id, category, type, node, camera, title_vi, title_en, description_vi, "
            "description_en, status, created_at, first_seen, last_seen, best_event_id, plate, plate_confidence, "
            "plate_tried, plate_norm) "
            f"SELECT lpad(g::text, 36, '0'), 'traffic', 'red_light', 'node-1', 'cam-' || (g % 50), 't', 't', 'd', 'd', "
            f"'new', now(), now(), now(), lpad(g::text, 36, '0'), p, 0.95, true, "
            f"regexp_replace(upper(p), '[^0-9A-Z]', '', 'g') "
            f"FROM (SELECT g, CASE WHEN g % 10 = 0 THEN NULL ELSE {_PLATE} END AS p "
            f"FROM generate_series(1::bigint, :n) AS g) AS s"
        ),
        {"n": n},
    )
    c.execute(text("ANALYZE reports"))  # type: ignore[attr-defined]


def _time(sessions: object, plate: str, runs: int) -> tuple[float, int]:
    admin = User(id=0, username="bench", role="admin", districts=())
    times, found = [], 0
    for _ in range(runs):
        with sessions() as s:  # type: ignore[operator]
            t = time.perf_counter()
            found = len(list_reports(s, admin, ReportFilter(plate=plate), 50))
            times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times), found


def _plan(engine: object, plate: str) -> str:
    from sqlalchemy import select

    from central.db import ReportRow

    stmt = apply_filter(select(ReportRow.id), ReportFilter(plate=plate)).order_by(ReportRow.id.desc()).limit(50)
    compiled = stmt.compile(engine)  # type: ignore[arg-type]
    with engine.connect() as c:  # type: ignore[attr-defined]
        # The app's statement with its bound pattern, as the driver sends it.
        sql = "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) " + str(compiled)
        rows = c.exec_driver_sql(sql, compiled.params).scalars()
        return "\n".join("      " + r for r in rows)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reports", type=int, default=200_000)
    ap.add_argument("--runs", type=int, default=15)
    args = ap.parse_args()
    admin_url = os.environ.get("TEST_POSTGRES_URL", DEFAULT_POSTGRES_ADMIN_URL)
    name = f"bench_plates_{uuid.uuid4().hex[:8]}"
    url = create_database(admin_url, name)
    try:
        migrate(url)
        engine = make_engine(url)
        with engine.begin() as c:
            t = time.perf_counter()
            _generate(c, args.reports)
            print(f"{args.reports} reports generated in {time.perf_counter() - t:.1f} s")
            trgm = c.execute(text("SELECT count(*) FROM pg_indexes WHERE indexname = 'ix_reports_plate_norm_trgm'")).scalar()
            sample = c.execute(text("SELECT plate FROM reports WHERE plate LIKE '%-__ %' ORDER BY id LIMIT 1 OFFSET 777")).scalar()
        print(f"trigram index present after migrate: {bool(trgm)}")
        searches = dict(SEARCHES)
        searches["full plate, typed loosely ('29b1 12345'-style)"] = sample.lower().replace("-", "").replace(".", "")
        searches["partial: the 5 digits"] = sample[-6:]
        sessions = make_session_factory(engine)
        results: dict[str, dict[str, tuple[float, int]]] = {}
        for phase in ("with trigram index", "without (B-tree only)"):
            if phase.startswith("without"):
                with engine.begin() as c:
                    c.execute(text("DROP INDEX ix_reports_plate_norm_trgm"))
            print(f"\n== {phase}")
            for label, plate in searches.items():
                assert plate is not None
                _time(sessions, plate, 2)  # warm the cache
                results.setdefault(label, {})[phase] = _time(sessions, plate, args.runs)
                ms, found = results[label][phase]
                print(f"  {label}: {plate!r}: {found} found, median {ms:.2f} ms")
                print(_plan(engine, plate))
        print("\n| search | found | with trigram index, ms | B-tree only, ms | ratio |")
        print("|---|---|---|---|---|")
        for label, r in results.items():
            (a, n), (b, _) = r["with trigram index"], r["without (B-tree only)"]
            print(f"| {label}: `{searches[label]}` | {n} | {a:.2f} | {b:.2f} | {b / a:.1f}× |")
        engine.dispose()
    finally:
        drop_database(admin_url, name)


if __name__ == "__main__":
    main()
