"""A PostgreSQL backup of central that is known to restore: dump, restore into a scratch database, compare.

    python -m central.backup_check --database-url postgresql+psycopg://central@db/central --out /backup/central.dump

1. A REPEATABLE READ transaction on the live database exports its snapshot (`pg_export_snapshot`)
   and counts the rows of every table in it, with the schema's alembic revision.
2. `pg_dump -Fc --snapshot=<that snapshot>` writes OUT: the dump is that very moment, whatever the
   ingesters commit meanwhile (the transaction stays open until pg_dump has started).
3. A scratch database is created, OUT restored into it (`pg_restore --exit-on-error`), every table
   counted again and compared, then the scratch database is dropped (`--keep-scratch`: kept).

4. With `--evidence-dir DIR` (a copy of the local evidence tree, e.g. the rsync backup): a random
   sample of the restored copy's evidence rows (`--evidence-sample`, default 200) must be in DIR
   at their path with their size and SHA-256 (the name is the hash: any bit changed shows).

Exit status 0 and one JSON line (`{"ok": true, "tables": {...}, "revision": ..., "dump_bytes": ...}`)
when every table came back with the same rows; 1 and the differences otherwise; 2 when a tool
failed. The password comes from the URL or PGPASSWORD and is handed to pg_dump/pg_restore in the
environment, never on a command line. The role needs CREATEDB for the scratch database (or run it
against a standby/restore host with `--scratch-url`). docs/deploy.md, "Backups", says where it fits
next to pg_basebackup and WAL archiving.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from sqlalchemy.engine import URL, make_url


@dataclass
class CheckResult:
    ok: bool
    revision: str | None
    tables: dict[str, int]
    restored: dict[str, int]
    dump: str
    dump_bytes: int
    seconds: float
    differences: list[str] = field(default_factory=list)
    evidence_checked: int = 0

    def to_json(self) -> str:
        return json.dumps(
            {"ok": self.ok, "revision": self.revision, "tables": self.tables, "dump": self.dump,
             "dump_bytes": self.dump_bytes, "seconds": round(self.seconds, 1), "differences": self.differences,
             "evidence_checked": self.evidence_checked},
            sort_keys=True,
        )  # fmt: skip


def _libpq(url: URL) -> tuple[str, dict[str, str]]:
    """A libpq URI without the password, and the environment that carries it."""
    env = dict(os.environ)
    if url.password is not None:
        env["PGPASSWORD"] = str(url.password)
    # URL.set(password=None) keeps the password: build it again without one
    bare = URL.create("postgresql", url.username, None, url.host, url.port, url.database, url.query)
    return bare.render_as_string(hide_password=False), env


def _tables(conn: psycopg.Connection[Any]) -> list[tuple[str, str]]:
    rows = conn.execute(
        "SELECT schemaname, tablename FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema') "
        "ORDER BY 1, 2"
    ).fetchall()
    return [(str(s), str(t)) for s, t in rows]


def count_rows(conn: psycopg.Connection[Any]) -> tuple[dict[str, int], str | None]:
    """Rows of every table (`schema.table`) and the alembic revision, in the connection's transaction."""
    counts: dict[str, int] = {}
    for schema, table in _tables(conn):
        q = sql.SQL("SELECT count(*) FROM {}.{}").format(sql.Identifier(schema), sql.Identifier(table))
        row = conn.execute(q).fetchone()
        counts[f"{schema}.{table}"] = int(row[0]) if row else 0
    revision = None
    if "public.alembic_version" in counts:
        row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        revision = str(row[0]) if row else None
    return counts, revision


def compare(before: dict[str, int], after: dict[str, int]) -> list[str]:
    """What differs between the counts at the dump and in the restored copy."""
    out = [f"{t}: missing in the restored copy" for t in sorted(set(before) - set(after))]
    out += [f"{t}: not in the dumped database" for t in sorted(set(after) - set(before))]
    out += [f"{t}: {before[t]} rows dumped, {after[t]} restored" for t in sorted(set(before) & set(after))
            if before[t] != after[t]]  # fmt: skip
    return out


def check_evidence(conn: psycopg.Connection[Any], evidence_dir: Path, sample: int) -> tuple[int, list[str]]:
    """A random sample of the evidence rows: each file under `evidence_dir` at its path, with its size
    and SHA-256. Returns (files checked, problems)."""
    rows = conn.execute(
        "SELECT sha256, path, size FROM evidence ORDER BY random() LIMIT %s", (sample,)
    ).fetchall()
    problems: list[str] = []
    for sha, rel, size in rows:
        path = evidence_dir / str(rel)
        if not path.is_file():
            problems.append(f"evidence {sha}: missing ({path})")
            continue
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
        if path.stat().st_size != int(size) or digest.hexdigest() != sha:
            problems.append(f"evidence {sha}: {path.stat().st_size} bytes, sha256 {digest.hexdigest()}")
    return len(rows), problems


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise RuntimeError(f"`{name}` not found: install the PostgreSQL client of the server's major version")
    return path


def check_backup(
    database_url: str,
    out: Path,
    *,
    scratch_url: str | None = None,
    keep_scratch: bool = False,
    evidence_dir: Path | None = None,
    evidence_sample: int = 200,
) -> CheckResult:
    """Steps 1-4 of the module's docstring; raises RuntimeError when pg_dump or pg_restore fails."""
    t0 = time.monotonic()
    live = make_url(database_url)
    live_uri, env = _libpq(live)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".part")
    with psycopg.connect(live_uri, password=env.get("PGPASSWORD")) as conn:
        conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        row = conn.execute("SELECT pg_export_snapshot()").fetchone()
        snapshot = str(row[0]) if row else ""
        before, revision = count_rows(conn)
        dump = subprocess.run(
            [_tool("pg_dump"), "--format=custom", f"--snapshot={snapshot}", f"--file={tmp}", f"--dbname={live_uri}"],
            env=env, capture_output=True, text=True,
        )  # fmt: skip
        conn.execute("COMMIT")
    if dump.returncode != 0:
        tmp.unlink(missing_ok=True)
        raise RuntimeError(f"pg_dump failed ({dump.returncode}): {dump.stderr.strip()}")
    tmp.replace(out)

    base = make_url(scratch_url) if scratch_url else live
    scratch_name = f"{live.database or 'central'}_restore_check_{uuid.uuid4().hex[:8]}"
    admin_uri, admin_env = _libpq(base.set(database="postgres"))
    scratch_uri, scratch_env = _libpq(base.set(database=scratch_name))
    with psycopg.connect(admin_uri, password=admin_env.get("PGPASSWORD"), autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(scratch_name)))
    try:
        restore = subprocess.run(
            [_tool("pg_restore"), "--exit-on-error", "--no-owner", f"--dbname={scratch_uri}", str(out)],
            env=scratch_env, capture_output=True, text=True,
        )  # fmt: skip
        if restore.returncode != 0:
            raise RuntimeError(f"pg_restore failed ({restore.returncode}): {restore.stderr.strip()}")
        checked, evidence_problems = 0, list[str]()
        with psycopg.connect(scratch_uri, password=scratch_env.get("PGPASSWORD")) as conn:
            after, restored_revision = count_rows(conn)
            if evidence_dir is not None:
                checked, evidence_problems = check_evidence(conn, evidence_dir, evidence_sample)
    finally:
        if not keep_scratch:
            with psycopg.connect(admin_uri, password=admin_env.get("PGPASSWORD"), autocommit=True) as admin:
                admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(scratch_name)))
    differences = compare(before, after)
    if restored_revision != revision:
        differences.append(f"alembic revision: {revision} dumped, {restored_revision} restored")
    differences += evidence_problems
    return CheckResult(
        ok=not differences, revision=revision, tables=before, restored=after, dump=str(out),
        dump_bytes=out.stat().st_size, seconds=time.monotonic() - t0, differences=differences,
        evidence_checked=checked,
    )  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--database-url", default=os.environ.get("CENTRAL_DATABASE_URL"),
                    help="central's PostgreSQL (default: env CENTRAL_DATABASE_URL)")  # fmt: skip
    ap.add_argument("--out", type=Path, required=True, help="the dump to write (pg_dump custom format)")
    ap.add_argument("--scratch-url", default=None, help="restore on this server instead (its database name is ignored)")
    ap.add_argument("--keep-scratch", action="store_true", help="keep the restored scratch database")
    ap.add_argument("--evidence-dir", type=Path, default=None, help="a copy of the local evidence tree to sample")
    ap.add_argument("--evidence-sample", type=int, default=200, help="evidence files to check (default 200)")
    args = ap.parse_args(argv)
    if not args.database_url or make_url(args.database_url).get_backend_name() != "postgresql":
        ap.error("--database-url: a postgresql+psycopg:// URL (SQLite: copy the file with `sqlite3 db .backup`)")
    try:
        result = check_backup(
            args.database_url, args.out, scratch_url=args.scratch_url, keep_scratch=args.keep_scratch,
            evidence_dir=args.evidence_dir, evidence_sample=args.evidence_sample,
        )  # fmt: skip
    except (RuntimeError, psycopg.Error) as e:
        print(json.dumps({"ok": False, "error": str(e)}), file=sys.stderr)
        return 2
    print(result.to_json())
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
