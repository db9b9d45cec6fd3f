"""Report counts that do not scan the reports: the dashboard's and /metrics' GROUP BYs (issue 19, item 4).

`GROUP BY status, type` over every report took 617 ms at 1,000,000 reports and grows with them
(docs/benchmarks.md). Instead, triggers on `reports` (installed by migration 0009) append a
signed row to `report_count_deltas` in the very transaction that inserts, deletes or re-labels a
report (a change of status, type, category, node, camera, ward or agency): +1 for the new
labels, -1 for the old. Whatever writes reports — any ingester, the review, the retention purge,
a migration, psql — keeps the counts right, and a rolled-back transaction takes its deltas with it.

The deltas are append-only: concurrent writers never wait on a shared counter row (an UPDATE of
one counter per (status, type) would serialise the ingesters and could deadlock them). `fold()`
moves them into `report_counts` (one row per combination of the dimensions, a few per camera and
type), atomically: a reader sums both tables in one snapshot and is exact whether or not a fold
ran. The dashboard and /metrics fold before they read, so the delta table stays short.

On PostgreSQL the INSERT and DELETE triggers are per statement (transition tables): a batch of 500
reports adds one delta row per combination, not 500. SQLite triggers are per row. TRUNCATE of
`reports` (PostgreSQL) empties both tables. A SQLite table rebuild (alembic batch mode on
`reports`) drops its triggers: a migration that rebuilds `reports` must call `install(conn)` again.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

from central.db import REPORT_COUNT_DIMENSIONS

_PG_FOLD_LOCK = 0x726570636E74  # "repcnt": one folder at a time (pg_try_advisory_xact_lock)

DIMS = ", ".join(REPORT_COUNT_DIMENSIONS)


def _dims_of(row: str) -> str:
    """The dimension values of a `reports` row (NEW, OLD or a transition table's alias)."""
    return (
        f"coalesce({row}.status, ''), coalesce({row}.type, ''), coalesce({row}.category, ''), "
        f"coalesce({row}.node, ''), coalesce({row}.camera, ''), coalesce({row}.ward, ''), "
        f"coalesce({row}.agency_name_vi, {row}.agency_code, '')"
    )


def _changed(old: str, new: str, distinct: str) -> str:
    cols = ("status", "type", "category", "node", "camera", "ward")
    parts = [f"{old}.{c} {distinct} {new}.{c}" for c in cols]
    parts.append(
        f"coalesce({old}.agency_name_vi, {old}.agency_code) {distinct} coalesce({new}.agency_name_vi, {new}.agency_code)"
    )
    return " OR ".join(parts)


def _pg_statements() -> list[str]:
    delta = f"INSERT INTO report_count_deltas ({DIMS}, n)"
    return [
        f"""CREATE OR REPLACE FUNCTION report_counts_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  {delta} SELECT {_dims_of('r')}, count(*) FROM report_counts_new r GROUP BY 1, 2, 3, 4, 5, 6, 7;
  RETURN NULL;
END $$""",
        f"""CREATE OR REPLACE FUNCTION report_counts_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  {delta} SELECT {_dims_of('r')}, -count(*) FROM report_counts_old r GROUP BY 1, 2, 3, 4, 5, 6, 7;
  RETURN NULL;
END $$""",
        f"""CREATE OR REPLACE FUNCTION report_counts_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  {delta} VALUES ({_dims_of('OLD')}, -1), ({_dims_of('NEW')}, 1);
  RETURN NULL;
END $$""",
        """CREATE OR REPLACE FUNCTION report_counts_truncated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM report_count_deltas;
  DELETE FROM report_counts;
  RETURN NULL;
END $$""",
        "CREATE OR REPLACE TRIGGER report_counts_inserted AFTER INSERT ON reports "
        "REFERENCING NEW TABLE AS report_counts_new FOR EACH STATEMENT EXECUTE FUNCTION report_counts_inserted()",
        "CREATE OR REPLACE TRIGGER report_counts_deleted AFTER DELETE ON reports "
        "REFERENCING OLD TABLE AS report_counts_old FOR EACH STATEMENT EXECUTE FUNCTION report_counts_deleted()",
        # Per row, but only rows whose labels changed: the WHEN clause is checked without calling
        # the function, so the ingester's updates of last_seen / event_count cost nothing here.
        "CREATE OR REPLACE TRIGGER report_counts_updated AFTER UPDATE ON reports FOR EACH ROW "
        f"WHEN ({_changed('OLD', 'NEW', 'IS DISTINCT FROM')}) EXECUTE FUNCTION report_counts_updated()",
        "CREATE OR REPLACE TRIGGER report_counts_truncated AFTER TRUNCATE ON reports "
        "FOR EACH STATEMENT EXECUTE FUNCTION report_counts_truncated()",
    ]


def _sqlite_statements() -> list[str]:
    delta = f"INSERT INTO report_count_deltas ({DIMS}, n)"
    return [
        f"CREATE TRIGGER IF NOT EXISTS report_counts_inserted AFTER INSERT ON reports BEGIN "
        f"{delta} VALUES ({_dims_of('NEW')}, 1); END",
        f"CREATE TRIGGER IF NOT EXISTS report_counts_deleted AFTER DELETE ON reports BEGIN "
        f"{delta} VALUES ({_dims_of('OLD')}, -1); END",
        f"CREATE TRIGGER IF NOT EXISTS report_counts_updated AFTER UPDATE ON reports "
        f"WHEN {_changed('OLD', 'NEW', 'IS NOT')} BEGIN "
        f"{delta} VALUES ({_dims_of('OLD')}, -1), ({_dims_of('NEW')}, 1); END",
    ]


TRIGGERS = ("report_counts_inserted", "report_counts_deleted", "report_counts_updated", "report_counts_truncated")


def install(conn: Connection) -> None:
    """Create (or replace) the triggers on `reports`. Idempotent."""
    statements = _pg_statements() if conn.dialect.name == "postgresql" else _sqlite_statements()
    for sql in statements:
        conn.execute(text(sql))


def uninstall(conn: Connection) -> None:
    for name in TRIGGERS:
        if conn.dialect.name == "postgresql":
            conn.execute(text(f"DROP TRIGGER IF EXISTS {name} ON reports"))
            conn.execute(text(f"DROP FUNCTION IF EXISTS {name}()"))
        elif name != "report_counts_truncated":
            conn.execute(text(f"DROP TRIGGER IF EXISTS {name}"))


def rebuild(conn: Connection) -> None:
    """Counts from scratch, from `reports` (the migration; a repair). A full scan: seconds per million."""
    conn.execute(text("DELETE FROM report_count_deltas"))
    conn.execute(text("DELETE FROM report_counts"))
    conn.execute(
        text(
            f"INSERT INTO report_counts ({DIMS}, n) SELECT {_dims_of('reports')}, count(*) FROM reports "
            "GROUP BY 1, 2, 3, 4, 5, 6, 7"
        )
    )


def fold(engine: Engine) -> bool:
    """Move the deltas into report_counts, in one transaction. False: another process is folding
    (PostgreSQL), nothing done — a reader is exact either way."""
    upsert = (
        f"INSERT INTO report_counts AS c ({DIMS}, n) SELECT {DIMS}, sum(n) FROM {{source}} WHERE true "
        f"GROUP BY {DIMS} ON CONFLICT ({DIMS}) DO UPDATE SET n = c.n + excluded.n"
    )
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            if not conn.execute(text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": _PG_FOLD_LOCK}).scalar():
                return False
            # Exactly the rows this statement deletes are added (a delta still uncommitted elsewhere
            # is not seen, so not deleted: the next fold takes it).
            source = f"(DELETE FROM report_count_deltas RETURNING {DIMS}, n)"
            conn.execute(text(f"WITH moved AS {source} " + upsert.format(source="moved")))
        else:
            # SQLite: the INSERT takes the write lock, so no writer adds a delta until we commit.
            conn.execute(text(upsert.format(source="report_count_deltas")))
            conn.execute(text("DELETE FROM report_count_deltas"))
        conn.execute(text("DELETE FROM report_counts WHERE n = 0"))
    return True


def grouped(
    conn: Connection | Any, by: Sequence[str], *, statuses: Sequence[str] | None = None, exclude: bool = False
) -> list[tuple[Any, ...]]:
    """(values of `by`..., reports) over report_counts and the deltas not folded yet; `statuses`
    keeps (or, `exclude`, drops) those statuses. '' comes back as None (a report without a ward)."""
    for d in by:
        if d not in REPORT_COUNT_DIMENSIONS:
            raise ValueError(f"not a count dimension: {d!r}")
    cols = ", ".join(by)
    where = ""
    params: dict[str, Any] = {}
    if statuses is not None:
        names = [f"s{i}" for i in range(len(statuses))]
        params = dict(zip(names, statuses, strict=True))
        where = f" WHERE status {'NOT ' if exclude else ''}IN ({', '.join(':' + n for n in names) or 'NULL'})"
    both = f"SELECT {DIMS}, n FROM report_counts UNION ALL SELECT {DIMS}, n FROM report_count_deltas"
    sql = f"SELECT {cols + ', ' if cols else ''}sum(n) FROM ({both}) AS t{where}"
    if cols:
        sql += f" GROUP BY {cols}"
    sql += " HAVING sum(n) <> 0"
    rows = conn.execute(text(sql), params).all()
    return [tuple(None if v == "" else v for v in row[:-1]) + (int(row[-1]),) for row in rows]


def total(conn: Connection | Any, *, statuses: Sequence[str] | None = None, exclude: bool = False) -> int:
    rows = grouped(conn, (), statuses=statuses, exclude=exclude)
    return rows[0][0] if rows else 0
