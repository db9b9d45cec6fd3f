"""Console queries over many events on PostgreSQL: `python benchmarks/scale_events.py ROWS`.

Creates its own database (scale_<ROWS>), migrates it to head and fills, in SQL (generate_series,
no row leaves the server): ROWS events three seconds apart (10,000,000 ≈ 347 days of one event
every 3 s), one report per event (the worst case for report lists: nothing merged), one
report_events link each. The secondary indexes, foreign-key checks and triggers are off while it
fills (session_replication_role = replica) and the indexes are built after, as a restore does;
the report counts are then rebuilt from the reports (central.report_counts.rebuild). Then it
prints, with EXPLAIN ANALYZE execution times and the plans' top nodes:

- the console's list, search, plate search and report-page queries (the SQL the console sends,
  compiled from central.queries), and the dashboard as the console computes it (wall ms);
- the report counts both ways: GROUP BY over every report (before 0009) and the counts table;
- events by time on the B-tree against a BRIN index of started_at (sizes and times);
- bytes per row of each table (table, indexes);
- the evidence purge (central.evidence_retention) over evidence rows for one event in ten, and
  the event retention purge of the oldest month (central.event_retention): wall time, rows.

`--keep` leaves the database for another run with `--reuse` (no fill); without it the database is
dropped at the end. Not a test: it measures.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
from sqlalchemy.dialects import postgresql

from central.db import make_engine, make_session_factory, migrate

ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
CHUNK = 1_000_000
STEP_S = 3  # seconds between events
# A contract-v1-like payload (~430 bytes of JSON): one object with a box and a plate, two evidence refs.
PAYLOAD = """jsonb_build_object('schema', 'ioc.event/1', 'id', md5(g::text), 'node', 'node-' || (g %% 642 / 7),
  'camera', 'cam-' || (g %% 642), 'type', 'illegal_stopping', 'category', 'traffic', 'phase', 'final',
  'confidence', 0.8, 'zone_id', 'z1', 'model', jsonb_build_object('name', 'yolo11n', 'version', '8.3.0'),
  'objects', jsonb_build_array(jsonb_build_object('class', 'car', 'track_id', g %% 5000,
      'box', jsonb_build_array(100, 200, 300, 400), 'plate', '29B' || (g %% 100000))),
  'evidence', jsonb_build_array(
      jsonb_build_object('sha256', md5('s' || g) || md5('t' || g), 'size', 183000, 'media_type', 'image/jpeg'),
      jsonb_build_object('sha256', md5('c' || g) || md5('d' || g), 'size', 2400000, 'media_type', 'video/mp4')))"""

FILL_EVENTS = f"""
INSERT INTO events (id, node, camera, type, category, phase, started_at, ended_at, confidence, zone_id,
                    payload, received_at, clock_suspect)
SELECT md5(g::text), 'node-' || (g %% 642 / 7), 'cam-' || (g %% 642), 'illegal_stopping', 'traffic', 'final',
       %(t0)s - (g * %(step)s) * interval '1 second', %(t0)s - (g * %(step)s - 20) * interval '1 second', 0.8,
       'z1', {PAYLOAD}, %(t0)s - (g * %(step)s - 25) * interval '1 second', false
FROM generate_series(%(hi)s, %(lo)s, -1) g
"""
# The same rows' reports, computed from g again (no read of events). A camera sits in one ward (of
# 40) and routes to one agency (of 8), a node holds 7 cameras; a year's statuses are mostly decided (10% new, 10% confirmed,
# 40% forwarded, 30% resolved, 10% rejected); every report has a deadline two days after it began.
FILL_REPORTS = """
INSERT INTO reports (event_id, category, type, node, camera, title_vi, title_en, description_vi, description_en,
                     status, created_at, ward, area, first_seen, last_seen, plate, plate_norm, search_text,
                     priority, agency_code, agency_name_vi, deadline_at, event_count)
SELECT md5(g::text), 'traffic', 'illegal_stopping', 'node-' || (g %% 642 / 7), 'cam-' || (g %% 642),
       'Dừng đỗ', 'Stopping', '', '',
       (ARRAY['new','confirmed','forwarded','forwarded','forwarded','forwarded','resolved','resolved','resolved',
              'rejected'])[1 + abs(hashtext(md5(g::text))) %% 10],
       %(t0)s - (g * %(step)s - 25) * interval '1 second', 'ward-' || (g %% 642 %% 40), 'area-' || (g %% 642 %% 8),
       %(t0)s - (g * %(step)s) * interval '1 second', %(t0)s - (g * %(step)s - 20) * interval '1 second',
       '29B' || (abs(hashtext(md5(g::text))) %% 100000), '29B' || (abs(hashtext(md5(g::text))) %% 100000),
       'le loi phuong ' || (g %% 642 %% 40) || ' cam ' || (g %% 642) || ' 29b' || (abs(hashtext(md5(g::text))) %% 100000),
       'normal', 'csgt-' || (g %% 642 %% 8), 'Cảnh sát giao thông ' || (g %% 642 %% 8),
       %(t0)s - (g * %(step)s) * interval '1 second' + interval '2 days', 1
FROM generate_series(%(hi)s, %(lo)s, -1) g
"""
# Evidence rows (a snapshot and a clip) for one event in ten, with their event_evidence links: the
# evidence purge's candidates. No files: the purge's database work is what is measured.
FILL_EVIDENCE = """
INSERT INTO evidence (sha256, media_type, size, path, received_at)
SELECT x.sha, x.mt, x.size, substr(x.sha, 1, 2) || '/' || x.sha, e.received_at
FROM events e, LATERAL (SELECT v->>'sha256' AS sha, v->>'media_type' AS mt, (v->>'size')::bigint AS size
                        FROM jsonb_array_elements(e.payload->'evidence') v) x
WHERE abs(hashtext(e.id)) % 10 = 0
"""
FILL_EVIDENCE_LINKS = """
INSERT INTO event_evidence (sha256, event_id)
SELECT v->>'sha256', e.id FROM events e, jsonb_array_elements(e.payload->'evidence') v WHERE abs(hashtext(e.id)) % 10 = 0
"""
FILL_LINKS = "INSERT INTO report_events (event_id, report_id, added_at) SELECT event_id, id, created_at FROM reports"

RAW_QUERIES = {
    "events of one camera, one day": "SELECT * FROM events WHERE node='node-1' AND camera='cam-7' "
    "AND started_at >= now() - interval '2 days' AND started_at < now() - interval '1 day' ORDER BY started_at",
    "events in an hour (all cameras)": "SELECT count(*) FROM events WHERE started_at >= now() - interval '2 days' "
    "AND started_at < now() - interval '2 days' + interval '1 hour'",
    "events in a month (all cameras)": "SELECT count(*) FROM events WHERE started_at >= now() - interval '200 days' "
    "AND started_at < now() - interval '170 days'",
    "report counts: GROUP BY status, type over reports (before 0009)":
    "SELECT status, type, count(*) FROM reports GROUP BY status, type",
}


def _console_queries() -> dict[str, Any]:
    """The console's own statements (central.queries), compiled for PostgreSQL with literal values."""
    from sqlalchemy import func, select

    from central import queries
    from central.auth import User
    from central.db import ReportRow
    from central.queries import ReportFilter
    from central.services.access import scope

    admin = User(id=0, username="bench", role="admin", districts=())
    police = User(id=0, username="p", role="police", districts=(), wards=("ward-3",))
    out: dict[str, Any] = {}

    def page(label: str, f: ReportFilter, user: User = admin) -> None:
        stmt = scope(queries.apply_filter(select(ReportRow), f), user).order_by(ReportRow.id.desc()).limit(51)
        out[f"report list: {label}, newest 51"] = stmt
        matching = scope(queries.apply_filter(select(ReportRow.id), f), user).limit(queries.COUNT_CAP + 1).subquery()
        out[f"report list count (cap 10,001): {label}"] = select(func.count()).select_from(matching)

    page("all", ReportFilter())
    page("status new", ReportFilter(status="new"))
    page("one ward", ReportFilter(ward="ward-3"))
    page("police of one ward", ReportFilter(), police)
    page("one camera, one week", ReportFilter(
        camera="cam-7", since=datetime.now(UTC) - timedelta(days=30), until=datetime.now(UTC) - timedelta(days=23)
    ))
    page("all cameras, one week", ReportFilter(
        since=datetime.now(UTC) - timedelta(days=30), until=datetime.now(UTC) - timedelta(days=23)
    ))
    page("plate exact 29B12345", ReportFilter(plate="29B12345"))
    page("plate partial 12345", ReportFilter(plate="12345"))
    page("text 'phuong 3 cam 83'", ReportFilter(q="phuong 3 cam 83"))
    page("text, no match 'khong co'", ReportFilter(q="khong co"))
    return {k: v.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}) for k, v in out.items()}


def _explain(c: psycopg.Connection, sql: str, runs: int = 3) -> tuple[float, str]:
    c.execute(sql)  # warm the cache once; then the median of `runs`
    times, top_text = [], ""
    for _ in range(runs):
        plan = c.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}").fetchone()[0][0]  # type: ignore[index]
        times.append(plan["Execution Time"])
        top = plan["Plan"]
        while top.get("Plans") and top["Node Type"] in ("Limit", "Sort", "Aggregate", "Gather", "Gather Merge",
                                                         "Subquery Scan", "Finalize Aggregate", "Partial Aggregate"):
            top = top["Plans"][0]
        top_text = f"{top['Node Type']} {top.get('Index Name', '')}".strip()
    return statistics.median(times), top_text


def _sizes(c: psycopg.Connection, tables: tuple[str, ...]) -> None:
    print("\n| table | rows | bytes/row (table) | bytes/row (indexes) | table + indexes |")
    print("|---|---:|---:|---:|---:|")
    for t in tables:
        n = c.execute(f"SELECT count(*) FROM {t}").fetchone()[0]  # type: ignore[index]
        tb, ix = c.execute("SELECT pg_table_size(%s::regclass), pg_indexes_size(%s::regclass)", (t, t)).fetchone()  # type: ignore[misc]
        t_row, i_row = (f"{tb / n:.0f}", f"{ix / n:.0f}") if n else ("-", "-")
        print(f"| {t} | {n:,} | {t_row} | {i_row} | {(tb + ix) / 2**30:.2f} GiB |")


def fill(url: str, rows: int, step_s: int = STEP_S) -> None:
    t_all = time.monotonic()
    with psycopg.connect(url, autocommit=True) as c:
        c.execute("SET maintenance_work_mem = '512MB'")
        defs = [
            (name, sql)
            for name, sql in c.execute(
                "SELECT i.indexname, i.indexdef FROM pg_indexes i WHERE i.tablename IN "
                "('events', 'reports', 'report_events', 'evidence', 'event_evidence') "
                "AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conname = i.indexname)"
            )
        ]
        for name, _ in defs:
            c.execute(f"DROP INDEX {name}")
        c.execute("SET session_replication_role = replica")  # no FK checks, no triggers while filling
        t_fill = datetime.now(UTC).replace(microsecond=0)
        for table, sql in (("events", FILL_EVENTS), ("reports", FILL_REPORTS)):
            t0 = time.monotonic()
            # Oldest first, as they would have arrived: the physical order follows time.
            for hi in range(rows, 0, -CHUNK):
                c.execute(sql, {"t0": t_fill, "lo": max(1, hi - CHUNK + 1), "hi": hi, "step": step_s})
            print(f"fill {table}: {time.monotonic() - t0:.0f} s", flush=True)
        t0 = time.monotonic()
        c.execute(FILL_LINKS)
        print(f"fill report_events: {time.monotonic() - t0:.0f} s", flush=True)
        t0 = time.monotonic()
        c.execute(FILL_EVIDENCE)
        c.execute(FILL_EVIDENCE_LINKS)
        print(f"fill evidence + event_evidence (1 event in 10): {time.monotonic() - t0:.0f} s", flush=True)
        c.execute("SET session_replication_role = origin")
        for name, sql in defs:
            t0 = time.monotonic()
            c.execute(sql)
            print(f"index {name}: {time.monotonic() - t0:.0f} s", flush=True)
        t0 = time.monotonic()
        from central import report_counts

        engine = make_engine(url.replace("postgresql://", "postgresql+psycopg://"))
        with engine.begin() as conn:
            report_counts.rebuild(conn)
        engine.dispose()
        print(f"report counts rebuilt: {time.monotonic() - t0:.0f} s", flush=True)
        t0 = time.monotonic()
        c.execute("VACUUM ANALYZE")
        print(f"vacuum analyze: {time.monotonic() - t0:.0f} s", flush=True)
    print(f"fill total: {time.monotonic() - t_all:.0f} s", flush=True)


def measure(url: str, rows: int) -> None:
    sa_url = url.replace("postgresql://", "postgresql+psycopg://")
    with psycopg.connect(url, autocommit=True) as c:
        print(f"\nrows={rows:,}")
        _sizes(c, ("events", "reports", "report_events", "report_counts", "evidence", "event_evidence"))
        print("\n| query | execution ms (EXPLAIN ANALYZE, median of 3) | plan top |")
        print("|---|---:|---|")
        queries = {**RAW_QUERIES, **{k: str(v) for k, v in _console_queries().items()}}
        queries["report counts: the counts table (0009), by status, type"] = (
            "SELECT status, type, sum(n) FROM (SELECT status, type, n FROM report_counts UNION ALL "
            "SELECT status, type, n FROM report_count_deltas) t GROUP BY status, type"
        )
        for label, q in queries.items():
            ms, top = _explain(c, q)
            print(f"| {label} | {ms:.1f} | {top} |", flush=True)

        # BRIN against the B-tree for events by time, in a transaction that is rolled back.
        t0 = time.monotonic()
        c.execute("CREATE INDEX bench_events_started_brin ON events USING brin (started_at)")
        brin_build = time.monotonic() - t0
        sizes: dict[str, int] = dict(
            c.execute(
                "SELECT relname, pg_relation_size(oid) FROM pg_class WHERE relname IN "
                "('bench_events_started_brin', 'ix_events_started_at')"
            ).fetchall()
        )
        print(f"\nBRIN on events.started_at: built in {brin_build:.1f} s, {sizes['bench_events_started_brin'] / 1024:.0f} kB; "
              f"B-tree ix_events_started_at {sizes['ix_events_started_at'] / 2**20:.0f} MB")
        print("\n| query | B-tree ms | plan | BRIN ms (B-tree dropped) | plan |")
        print("|---|---:|---|---:|---|")
        for label in ("events in an hour (all cameras)", "events in a month (all cameras)"):
            q = RAW_QUERIES[label]
            b_ms, b_top = _explain(c, q)
            c.execute("BEGIN")
            c.execute("DROP INDEX ix_events_started_at")
            r_ms, r_top = _explain(c, q)
            c.execute("ROLLBACK")
            print(f"| {label} | {b_ms:.1f} | {b_top} | {r_ms:.1f} | {r_top} |", flush=True)
        c.execute("DROP INDEX bench_events_started_brin")

        # The first_seen indexes of 0009, dropped in a transaction that is rolled back.
        print("\n| query | with the first_seen indexes (0009) ms | plan | without ms | plan |")
        print("|---|---:|---|---:|---|")
        console = _console_queries()
        for label in [k for k in console if "one week" in k]:
            q = str(console[label])
            w_ms, w_top = _explain(c, q)
            c.execute("BEGIN")
            c.execute("DROP INDEX ix_reports_first_seen")
            c.execute("DROP INDEX ix_reports_camera_first_seen")
            o_ms, o_top = _explain(c, q)
            c.execute("ROLLBACK")
            print(f"| {label} | {w_ms:.1f} | {w_top} | {o_ms:.1f} | {o_top} |", flush=True)

    engine = make_engine(sa_url)
    sessions = make_session_factory(engine)
    from central.services.dashboard import dashboard_data

    times = []
    for _ in range(3):
        t0 = time.monotonic()
        with sessions() as s:
            d = dashboard_data(s, ZoneInfo("Asia/Ho_Chi_Minh"), 14)
        times.append((time.monotonic() - t0) * 1000)
    print(f"\ndashboard_data (every count, trend 14 days, overdue): median {statistics.median(times):.0f} ms "
          f"(runs {', '.join(f'{t:.0f}' for t in times)}); total={d['total']:,} open={d['open']:,} "
          f"overdue={d['overdue']:,}")
    engine.dispose()


def purge_month(url: str) -> None:
    from central.event_retention import purge_expired_events

    sa_url = url.replace("postgresql://", "postgresql+psycopg://")
    with psycopg.connect(url, autocommit=True) as c:
        oldest = c.execute("SELECT min(created_at) FROM reports").fetchone()[0]  # type: ignore[index]
    age_days = (datetime.now(UTC) - oldest).total_seconds() / 86400
    if age_days < 45:
        print(f"\npurge-events: skipped (the oldest report is {age_days:.1f} days old, under 45)")
        return
    engine = make_engine(sa_url)
    t0 = time.monotonic()
    result = purge_expired_events(make_session_factory(engine), age_days - 30)
    wall = time.monotonic() - t0
    engine.dispose()
    print(f"\npurge-events of the oldest month (retention {age_days - 30:.0f} days): {wall:.1f} s, "
          f"{result.reports:,} reports, {result.events:,} events, "
          f"{(result.events / wall) if wall else 0:,.0f} events/s")


def purge_evidence(url: str) -> None:
    """The evidence purge with 'traffic' kept a year less 60 days and 'environment' 30 days: the
    files of the oldest two months' events go, the rest are checked and kept."""
    import tempfile
    from pathlib import Path

    from central.evidence_retention import purge_expired_evidence
    from central.storage import LocalDiskStorage

    sa_url = url.replace("postgresql://", "postgresql+psycopg://")
    with psycopg.connect(url, autocommit=True) as c:
        oldest = c.execute("SELECT min(started_at) FROM events").fetchone()[0]  # type: ignore[index]
    age_days = (datetime.now(UTC) - oldest).total_seconds() / 86400
    if age_days < 75:
        print(f"\npurge-evidence: skipped (the oldest event is {age_days:.1f} days old, under 75)")
        return
    engine = make_engine(sa_url)
    with tempfile.TemporaryDirectory() as root:
        t0 = time.monotonic()
        result = purge_expired_evidence(
            make_session_factory(engine), LocalDiskStorage(Path(root)), {"traffic": age_days - 60, "environment": 30}
        )
        wall = time.monotonic() - t0
    engine.dispose()
    print(f"\npurge-evidence (traffic {age_days - 60:.0f} days, environment 30): {wall:.1f} s, "
          f"{result.checked:,} files checked, {result.deleted:,} deleted")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("rows", type=int, nargs="?", default=1_000_000)
    p.add_argument("--keep", action="store_true", help="keep the database (for --reuse)")
    p.add_argument("--reuse", action="store_true", help="the database is filled already: measure only")
    p.add_argument("--no-purge", action="store_true", help="skip the purge (it deletes a month)")
    p.add_argument("--fill-only", action="store_true", help="fill and keep the database; measure later with --reuse")
    p.add_argument("--drop", action="store_true", help="only drop the database")
    p.add_argument("--step-s", type=int, default=STEP_S, help=f"seconds between events (default {STEP_S})")
    args = p.parse_args()
    name = f"scale_{args.rows}"
    url = f"postgresql://postgres@127.0.0.1:5432/{name}"
    if args.drop:
        with psycopg.connect(ADMIN, autocommit=True) as c:
            c.execute(f"DROP DATABASE IF EXISTS {name}")
        return 0
    if not args.reuse:
        with psycopg.connect(ADMIN, autocommit=True) as c:
            c.execute(f"DROP DATABASE IF EXISTS {name}")
            c.execute(f"CREATE DATABASE {name}")
    try:
        if not args.reuse:
            migrate(url.replace("postgresql://", "postgresql+psycopg://"))
            fill(url, args.rows, args.step_s)
        if args.fill_only:
            args.keep = True
            return 0
        measure(url, args.rows)
        if not args.no_purge:
            purge_evidence(url)
            purge_month(url)
    finally:
        if not args.keep:
            with psycopg.connect(ADMIN, autocommit=True) as c:
                c.execute(f"DROP DATABASE IF EXISTS {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
