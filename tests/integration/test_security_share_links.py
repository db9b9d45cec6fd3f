"""Issue 18, defect 10: share links and signed evidence URLs expire (auth.share_link_days,
auth.evidence_token_days) and an admin can revoke them (one report's links, or all), in the console
and the API, audited; attacked on live uvicorn with SQLite and PostgreSQL."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from sqlalchemy import select

from central import auth
from central import evidence as evidence_files
from central.config import CentralConfig
from central.db import ReportHistoryRow, make_engine, make_session_factory, utcnow
from central.ingester import MessageProcessor
from central.web import create_app
from contract.topics import event_topic, evidence_topic
from tests.integration.test_central_web import live_server
from tests.services import fake_jpeg, make_event
from tests.support.central import ingest_processor

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

SECRET = "s" * 32


class Site:
    def __init__(self, base: str, engine: Any, processor: MessageProcessor) -> None:
        self.base, self.engine, self.processor = base, engine, processor

    def report(self, camera: str = "cam-a") -> tuple[int, str]:
        data = fake_jpeg(f"share-{time.monotonic_ns()}")
        sha = evidence_files.sha256_hex(data)
        e = make_event(
            camera=camera, evidence=[{"kind": "snapshot", "media_type": "image/jpeg", "sha256": sha, "size": len(data)}]
        )
        out = self.processor.process(event_topic("ioc", e.node, e.camera, e.type.value), e.to_json().encode())
        assert out.kind == "stored" and out.share_ref, out
        self.processor.process(evidence_topic("ioc", e.node, e.camera, sha), data)
        return out.report_id or 0, out.share_ref

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.base, timeout=30)

    def history(self, rid: int) -> list[tuple[str, str]]:
        with make_session_factory(self.engine)() as s:
            rows = s.scalars(select(ReportHistoryRow).where(ReportHistoryRow.report_id == rid))
            return [(h.actor, h.action) for h in rows]


@pytest.fixture
def site(central_database_url: str, central_users: Any, tmp_path: Path) -> Iterator[Site]:
    cfg = CentralConfig.model_validate(
        {
            "database_url": central_database_url,
            "evidence_dir": str(tmp_path / "ev"),
            "auth": {"share_link_secret": SECRET, "share_link_days": 7, "evidence_token_days": 2},
        }
    )
    engine = make_engine(cfg.database_url)
    processor = ingest_processor(cfg, engine)
    try:
        with live_server(create_app(cfg, engine=engine)) as port:
            yield Site(f"http://127.0.0.1:{port}", engine, processor)
    finally:
        engine.dispose()


def _snapshot_url(client: httpx.Client, ref: str) -> str:
    view = client.get(f"/reports/{ref}.json").json()
    (snap,) = [e for e in view["evidence"] if e["kind"] == "snapshot"]
    parts = urlsplit(snap["url"])  # absolute to web.public_url: keep path and token
    return f"{parts.path}?{parts.query}"


def test_share_links_and_evidence_urls_expire(site: Site) -> None:
    rid, ref = site.report()
    secret = SECRET.encode()
    with site.client() as anon:
        assert anon.get(f"/reports/{ref}.json").status_code == 200
        old = auth.share_ref(secret, rid, now=utcnow() - timedelta(days=8))  # past share_link_days (7)
        fresh_enough = auth.share_ref(secret, rid, now=utcnow() - timedelta(days=6))
        future = auth.share_ref(secret, rid, now=utcnow() + timedelta(days=1))  # a forged issue time
        assert anon.get(f"/reports/{old}.json").status_code == 404
        assert anon.get(f"/reports/{old}").status_code == 404
        assert anon.get(f"/reports/{future}.json").status_code == 404
        assert anon.get(f"/reports/{fresh_enough}.json").status_code == 200
        # The old form without an issue time (links made before expiry existed) opens nothing.
        legacy = f"{rid}-{auth.hmac.new(secret, f'report:{rid}'.encode(), auth.hashlib.sha256).hexdigest()[:24]}"
        assert anon.get(f"/reports/{legacy}.json").status_code == 404
        # Evidence: the URL in the view works; one issued 3 days ago (evidence_token_days 2) does not.
        url = _snapshot_url(anon, ref)
        sha = re.search(r"/evidence/([0-9a-f]{64})", url).group(1)
        assert anon.get(url).status_code == 200
        stale = auth.evidence_token(secret, sha, now=utcnow() - timedelta(days=3))
        assert anon.get(f"/evidence/{sha}", params={"t": stale}).status_code == 404
        tampered = stale.split(".")[0][:-1] + "f." + stale.split(".")[1]  # move the issue time: bad signature
        assert anon.get(f"/evidence/{sha}", params={"t": tampered}).status_code == 404


def test_admin_revokes_one_reports_links_in_the_api_and_it_is_audited(site: Site, console_login: Any) -> None:
    rid, ref = site.report()
    other_rid, other_ref = site.report(camera="cam-b")  # another camera: another report
    assert other_rid != rid
    with site.client() as admin, site.client() as op, site.client() as anon:
        assert anon.get(f"/reports/{ref}.json").status_code == 200
        op_csrf = console_login(op, "op")
        r = op.post(f"/api/reports/{rid}/share/revoke", headers={"X-CSRF-Token": op_csrf})
        assert r.status_code == 403  # operators cannot
        assert anon.post(f"/api/reports/{rid}/share/revoke").status_code in (401, 403)
        csrf = console_login(admin, "admin")
        assert admin.post(f"/api/reports/{rid}/share/revoke").status_code == 403  # CSRF
        r = admin.post(f"/api/reports/{rid}/share/revoke", headers={"X-CSRF-Token": csrf})
        assert r.status_code == 200 and r.json()["revoked"] is True, r.text
        assert anon.get(f"/reports/{ref}.json").status_code == 404
        assert anon.get(f"/reports/{ref}").status_code == 404
        assert anon.get(f"/reports/{other_ref}.json").status_code == 200  # another report's link still works
        assert ("admin", "revoke_share") in site.history(rid)
        assert not any(a == "revoke_share" for _, a in site.history(other_rid))
        time.sleep(1.1)  # a link made after the revocation works again
        fresh = auth.share_ref(SECRET.encode(), rid)
        assert anon.get(f"/reports/{fresh}.json").status_code == 200
        assert admin.post("/api/reports/999999/share/revoke", headers={"X-CSRF-Token": csrf}).status_code == 404


def test_admin_revokes_from_the_console_and_revoke_all_kills_evidence_urls(site: Site, console_login: Any) -> None:
    rid, ref = site.report()
    with site.client() as admin, site.client() as anon:
        csrf = console_login(admin, "admin")
        page = admin.get(f"/reports/{rid}").text
        assert f'action="/reports/{rid}/share/revoke"' in page and 'id="action-revoke-share"' in page
        url = _snapshot_url(anon, ref)
        assert anon.get(url).status_code == 200
        r = admin.post(f"/reports/{rid}/share/revoke", data={"csrf_token": csrf}, follow_redirects=False)
        assert r.status_code == 303
        assert anon.get(f"/reports/{ref}.json").status_code == 404
        assert anon.get(url).status_code == 200  # one report's revocation leaves evidence URLs alone
        r = admin.post("/api/share-links/revoke", headers={"X-CSRF-Token": csrf})
        assert r.status_code == 200 and r.json()["report"] is None
        assert anon.get(url).status_code == 404  # signed evidence URLs made before: dead
        assert admin.get(url.split("?")[0]).status_code == 200  # staff on their session still see it
    with site.client() as op:
        console_login(op, "op")
        assert 'id="action-revoke-share"' not in op.get(f"/reports/{rid}").text  # admins only
