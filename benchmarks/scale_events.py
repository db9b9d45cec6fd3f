"""Console queries over many events on PostgreSQL: `python benchmarks/scale_events.py ROWS`.

Creates its own database (scale_<ROWS>), migrates it to head, fills events and reports (one report
per event: the worst case for report lists) with generate_series in SQL, ANALYZEs, prints the
EXPLAIN ANALYZE execution time of the console's list, search and report-page queries and the
bytes per event row (table + indexes), then drops the database. Not a test: it measures.
"""

from __future__ import annotations

import sys

import psycopg

from central.db import migrate

ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"

FILL = """
INSERT INTO events (id, node, camera, type, category, phase, started_at, ended_at, confidence, zone_id,
                    payload, received_at, clock_suspect)
SELECT md5(g::text), 'node-' || (g % 100), 'cam-' || (g % 642), 'illegal_stopping', 'traffic', 'final',
       now() - (g || ' seconds')::interval * 3, now() - (g || ' seconds')::interval * 3 + interval '20 s', 0.8,
       'z1', jsonb_build_object('id', md5(g::text), 'evidence', jsonb_build_array()),
       now() - (g || ' seconds')::interval * 3, false
FROM generate_series(1, ROWS) g;
INSERT INTO reports (event_id, category, type, node, camera, title_vi, title_en, description_vi, description_en,
                     status, created_at, ward, area, first_seen, last_seen, plate, plate_norm, search_text, priority)
SELECT id, category, type, node, camera, 'Dừng đỗ', 'Stopping', '', '',
       (ARRAY['new','confirmed','rejected','forwarded'])[1 + abs(hashtext(id)) % 4], started_at,
       'ward-' || (abs(hashtext(id)) % 40), 'area-' || (abs(hashtext(id)) % 8), started_at, ended_at,
       '29B' || (abs(hashtext(id)) % 100000), '29B' || (abs(hashtext(id)) % 100000),
       'le loi ' || camera || ' 29b' || (abs(hashtext(id)) % 100000), 'normal'
FROM events;
"""

QUERIES = {
    "events of one camera, one day": "SELECT * FROM events WHERE node='node-7' AND camera='cam-7' "
    "AND started_at >= now() - interval '2 days' AND started_at < now() - interval '1 day' ORDER BY started_at",
    "events in an hour (all cameras)": "SELECT count(*) FROM events WHERE started_at >= now() - interval '2 days' "
    "AND started_at < now() - interval '2 days' + interval '1 hour'",
    "report list: newest 50 'new'": "SELECT * FROM reports WHERE status='new' ORDER BY id DESC LIMIT 50",
    "report list: ward, newest 50": "SELECT * FROM reports WHERE ward='ward-3' ORDER BY id DESC LIMIT 50",
    "plate search (exact)": "SELECT * FROM reports WHERE plate_norm='29B12345' ORDER BY id DESC LIMIT 50",
    "text search (pg_trgm ILIKE)": "SELECT * FROM reports WHERE search_text ILIKE '%29b1234%' ORDER BY id DESC LIMIT 50",
    "report page counts by status,type": "SELECT status, type, count(*) FROM reports GROUP BY status, type",
}


def main() -> int:
    rows = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    name = f"scale_{rows}"
    with psycopg.connect(ADMIN, autocommit=True) as c:
        c.execute(f"DROP DATABASE IF EXISTS {name}")
        c.execute(f"CREATE DATABASE {name}")
    url = f"postgresql://postgres@127.0.0.1:5432/{name}"
    try:
        migrate(url.replace("postgresql://", "postgresql+psycopg://"))
        with psycopg.connect(url, autocommit=True) as c:
            c.execute(FILL.replace("ROWS", str(int(rows))))
            c.execute("VACUUM ANALYZE")
            size = {
                t: c.execute("SELECT pg_table_size(%s::regclass), pg_indexes_size(%s::regclass)", (t, t)).fetchone()
                for t in ("events", "reports")
            }
            print(f"rows={rows}")
            print("| table | bytes/row (table) | bytes/row (indexes) |")
            print("|---|---:|---:|")
            for t, (tb, ix) in size.items():
                print(f"| {t} | {tb / rows:.0f} | {ix / rows:.0f} |")
            print("\n| query | execution ms (EXPLAIN ANALYZE) | plan top |")
            print("|---|---:|---|")
            for label, q in QUERIES.items():
                c.execute(q)  # warm the cache once; then measure
                plan = c.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {q}").fetchone()[0][0]
                top = plan["Plan"]
                while top.get("Plans") and top["Node Type"] in ("Limit", "Sort", "Aggregate", "Gather", "Gather Merge"):
                    top = top["Plans"][0]
                print(f"| {label} | {plan['Execution Time']:.1f} | {top['Node Type']} {top.get('Index Name', '')} |")
    finally:
        with psycopg.connect(ADMIN, autocommit=True) as c:
            c.execute(f"DROP DATABASE IF EXISTS {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
