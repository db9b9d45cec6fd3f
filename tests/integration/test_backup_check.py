"""`python -m central.backup_check` on a real PostgreSQL: a dump of central's database restores into a
scratch database with every table's rows; events committed while the dump runs are neither in the
counts nor in the dump (one snapshot for both); a copy that lost rows is reported."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy.engine import make_url

import central.backup_check as backup_check
from central.config import CentralConfig
from central.db import make_engine, make_session_factory, migrate
from central.ingester import MessageProcessor
from contract.topics import event_topic
from tests.services import _psycopg_dsn, create_database, drop_database, make_event
from tests.support import REPO_ROOT

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


@pytest.fixture
def central_pg(postgres_admin_url: str) -> Iterator[str]:
    name = f"test_backup_{uuid.uuid4().hex[:10]}"
    url = create_database(postgres_admin_url, name)
    try:
        migrate(url)
        yield url
    finally:
        drop_database(postgres_admin_url, name)


def _store(url: str, n: int, tmp_path: Path) -> None:
    cfg = CentralConfig.model_validate({"database_url": url, "evidence_dir": str(tmp_path / "evidence")})
    engine = make_engine(url)
    try:
        p = MessageProcessor(make_session_factory(engine), dialect_name="postgresql", evidence_dir=cfg.evidence_dir,
                             topic_prefix="ioc", config=cfg)  # fmt: skip
        for _ in range(n):
            e = make_event()
            assert p.process(event_topic("ioc", e.node, e.camera, e.type.value), e.to_json().encode()).kind == "stored"
    finally:
        engine.dispose()


def _scratch_databases(admin_url: str) -> list[str]:
    with psycopg.connect(_psycopg_dsn(admin_url)) as c:
        return [r[0] for r in c.execute("SELECT datname FROM pg_database WHERE datname LIKE '%restore_check%'")]


def test_dump_restores_every_row_of_one_snapshot(
    central_pg: str, postgres_admin_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _store(central_pg, 12, tmp_path)
    before_scratch = set(_scratch_databases(postgres_admin_url))
    # Events stored after the snapshot's counts, before pg_dump runs: a dump without the snapshot
    # would hold them and the comparison would fail.
    real_count = backup_check.count_rows
    calls: list[int] = []

    def count_then_write(conn: psycopg.Connection[Any]) -> tuple[dict[str, int], str | None]:
        result = real_count(conn)
        calls.append(1)
        if len(calls) == 1:
            _store(central_pg, 5, tmp_path)
        return result

    monkeypatch.setattr(backup_check, "count_rows", count_then_write)
    result = backup_check.check_backup(central_pg, tmp_path / "central.dump")
    assert result.ok, result.differences
    assert result.tables["public.events"] == 12 and result.restored["public.events"] == 12
    assert result.tables["public.reports"] >= 1 and result.restored == result.tables
    assert result.revision and result.dump_bytes > 0 and (tmp_path / "central.dump").is_file()
    assert set(_scratch_databases(postgres_admin_url)) == before_scratch  # dropped
    with psycopg.connect(_psycopg_dsn(central_pg)) as c:
        assert c.execute("SELECT count(*) FROM events").fetchone() == (17,)

    # the CLI: one JSON line, exit 0, the password never on pg_dump's command line
    out = subprocess.run(
        [sys.executable, "-m", "central.backup_check", "--database-url", central_pg, "--out", str(tmp_path / "b.dump")],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout.strip().splitlines()[-1])
    assert doc["ok"] is True and doc["tables"]["public.events"] == 17 and doc["differences"] == []
    uri, env = backup_check._libpq(make_url(central_pg).set(password="s3cret"))
    assert make_url(uri).password is None and env["PGPASSWORD"] == "s3cret"


def test_a_copy_that_lost_rows_is_reported(central_pg: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _store(central_pg, 3, tmp_path)
    real_count = backup_check.count_rows
    calls: list[int] = []

    def restored_short(conn: psycopg.Connection[Any]) -> tuple[dict[str, int], str | None]:
        counts, rev = real_count(conn)
        calls.append(1)
        if len(calls) == 2:  # the restored copy
            counts = {**counts, "public.events": counts["public.events"] - 1}
            counts.pop("public.reports")
        return counts, rev

    monkeypatch.setattr(backup_check, "count_rows", restored_short)
    result = backup_check.check_backup(central_pg, tmp_path / "central.dump")
    assert not result.ok
    assert result.differences == ["public.reports: missing in the restored copy",
                                  "public.events: 3 rows dumped, 2 restored"]  # fmt: skip


def test_evidence_copy_is_sampled(central_pg: str, tmp_path: Path) -> None:
    import hashlib

    copy = tmp_path / "evidence-copy"
    files = {}
    for i in range(4):
        data = f"file {i}".encode() * 100
        sha = hashlib.sha256(data).hexdigest()
        files[sha] = data
        if i < 2:  # two whole, one missing, one changed
            (copy / sha[:2]).mkdir(parents=True, exist_ok=True)
            (copy / sha[:2] / sha).write_bytes(data)
        elif i == 3:
            (copy / sha[:2]).mkdir(parents=True, exist_ok=True)
            (copy / sha[:2] / sha).write_bytes(data[:-1] + b"X")
    with psycopg.connect(_psycopg_dsn(central_pg)) as c:
        for sha, data in files.items():
            c.execute("INSERT INTO evidence (sha256, media_type, size, path, received_at) VALUES (%s, %s, %s, %s, now())",
                      (sha, "image/jpeg", len(data), f"{sha[:2]}/{sha}"))  # fmt: skip
    result = backup_check.check_backup(central_pg, tmp_path / "c.dump", evidence_dir=copy, evidence_sample=10)
    assert result.evidence_checked == 4 and not result.ok
    shas = list(files)
    assert sorted(d.split(":")[0] for d in result.differences) == sorted(f"evidence {shas[i]}" for i in (2, 3))
    assert any("missing" in d for d in result.differences)
    whole = backup_check.check_backup(central_pg, tmp_path / "d.dump", evidence_dir=copy, evidence_sample=0)
    assert whole.ok and whole.evidence_checked == 0


def test_compare_and_cli_errors(tmp_path: Path) -> None:
    assert backup_check.compare({"a": 1}, {"a": 1}) == []
    assert backup_check.compare({"a": 1, "b": 2}, {"a": 2, "c": 0}) == [
        "b: missing in the restored copy", "c: not in the dumped database", "a: 1 rows dumped, 2 restored"]  # fmt: skip
    with pytest.raises(SystemExit):
        backup_check.main(["--database-url", f"sqlite:///{tmp_path / 'x.db'}", "--out", str(tmp_path / "x.dump")])
