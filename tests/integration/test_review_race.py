"""Concurrent confirmations of one report (issue 18, defect 4), on a real uvicorn server over HTTP,
on SQLite and PostgreSQL: four operators' sessions confirm each of 20 reports at the same instant;
each report is confirmed once (one 200, the others 409), forwarded once, with one police alert in
the outbox and one audit row per step."""

from __future__ import annotations

import re
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from central.db import AlertRow, ReportHistoryRow, ReportRow, make_session_factory
from central.web import create_app
from tests.conftest import CONSOLE_PASSWORD
from tests.integration.test_central_review import _setup, _store
from tests.integration.test_central_web import live_server

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

REPORTS, CONFIRMERS = 20, 4


def _login(base: str, user: str) -> tuple[httpx.Client, str]:
    client = httpx.Client(base_url=base, timeout=30)
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text).group(1)
    r = client.post("/login", data={"username": user, "password": CONSOLE_PASSWORD, "csrf_token": token})
    assert r.status_code in (200, 303), r.text
    return client, client.get("/api/me").json()["csrf"]


def test_concurrent_confirms_confirm_once(central_database_url: str, central_users: Any, tmp_path: Path) -> None:
    cfg, engine, processor = _setup(central_database_url, tmp_path)
    report_ids = [_store(processor, type="red_light", camera=f"cam-{i}") for i in range(REPORTS)]
    assert len(set(report_ids)) == REPORTS
    statuses: dict[int, list[int]] = {rid: [] for rid in report_ids}
    errors: list[BaseException] = []
    with live_server(create_app(cfg, engine=engine)) as port:
        base = f"http://127.0.0.1:{port}"
        sessions = [_login(base, user) for user in ("op", "op", "admin", "admin")]
        barrier = threading.Barrier(CONFIRMERS)

        def confirmer(client: httpx.Client, csrf: str) -> None:
            try:
                for rid in report_ids:
                    barrier.wait(timeout=60)  # all four send their confirm of this report at once
                    r = client.post(f"/api/reports/{rid}/confirm", headers={"X-CSRF-Token": csrf})
                    statuses[rid].append(r.status_code)
            except BaseException as e:  # noqa: BLE001 - reported below, with the others
                errors.append(e)
                barrier.abort()

        threads = [threading.Thread(target=confirmer, args=s) for s in sessions]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        for client, _ in sessions:
            client.close()
    assert not errors, errors
    with make_session_factory(engine)() as s:
        for rid in report_ids:
            assert sorted(statuses[rid]) == [200] + [409] * (CONFIRMERS - 1), (rid, statuses[rid])
            steps = Counter(
                a for a in s.scalars(select(ReportHistoryRow.action).where(ReportHistoryRow.report_id == rid))
            )
            assert (steps["confirm"], steps["forward"], steps["alert_queued"]) == (1, 1, 1), (rid, steps)
            assert len(list(s.scalars(select(AlertRow).where(AlertRow.report_id == rid)))) == 1, rid
            assert s.get(ReportRow, rid).status == "forwarded"
    engine.dispose()
