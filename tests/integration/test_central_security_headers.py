"""Security headers on the real web server (uvicorn, SQLite and PostgreSQL): every response —
pages, JSON, redirects, errors, evidence — carries the CSP, frame, referrer and nosniff headers
(issue 18, defect 10), the page scripts carry the response's nonce, and evidence served on the
session cookie is never cached publicly."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from central import evidence as evidence_files
from central.config import CentralConfig
from central.db import make_engine
from central.web import create_app
from contract.topics import evidence_topic
from tests.integration.test_central_web import live_server
from tests.services import fake_jpeg, signed_evidence_path
from tests.support.central import ingest_processor

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


@pytest.fixture
def server(central_database_url: str, central_users: Any, tmp_path: Path) -> Iterator[tuple[str, CentralConfig, str]]:
    cfg = CentralConfig.model_validate({"database_url": central_database_url, "evidence_dir": str(tmp_path / "ev")})
    engine = make_engine(cfg.database_url)
    processor = ingest_processor(cfg, engine)
    data = fake_jpeg("headers")
    sha = evidence_files.sha256_hex(data)
    assert processor.process(evidence_topic("ioc", "n1", "c1", sha), data).kind == "evidence_stored"
    try:
        with live_server(create_app(cfg, engine=engine)) as port:
            yield f"http://127.0.0.1:{port}", cfg, sha
    finally:
        engine.dispose()


def check_headers(r: httpx.Response) -> str:
    """The four headers; returns the CSP's script nonce."""
    what = f"{r.request.method} {r.request.url.path} -> {r.status_code}"
    csp = r.headers.get("content-security-policy", "")
    directives = {d.split()[0]: d.split()[1:] for d in csp.split("; ") if d}
    assert directives.get("default-src") == ["'self'"], what
    assert directives.get("frame-ancestors") == ["'none'"], what
    assert directives.get("object-src") == ["'none'"], what
    script = directives.get("script-src", [])
    assert "'unsafe-inline'" not in script and "'unsafe-eval'" not in script and "*" not in script, what
    nonces = [s for s in script if s.startswith("'nonce-")]
    assert len(nonces) == 1, what
    assert r.headers.get("x-frame-options") == "DENY", what
    assert r.headers.get("referrer-policy") == "no-referrer", what
    assert r.headers.get("x-content-type-options") == "nosniff", what
    return nonces[0][len("'nonce-") : -1]


HTML = {"accept": "text/html"}


def test_every_response_carries_the_security_headers(server: tuple[str, CentralConfig, str], console_login: Any) -> None:
    base, cfg, sha = server
    with httpx.Client(base_url=base, timeout=10) as anon:
        responses = [
            anon.get("/login", headers=HTML),
            anon.get("/reports", headers=HTML),
            anon.get("/public/reports/", headers=HTML),
            anon.get("/", headers=HTML),  # redirect
            anon.get("/queue", headers=HTML),  # redirect to /login
            anon.get("/no-such-page", headers=HTML),  # 404 page
            anon.get("/no-such-page"),  # 404 JSON
            anon.get("/api/reports"),  # 401 JSON
            anon.get("/reports/999999", headers=HTML),  # 404 page
            anon.post("/login", data={"username": "op", "password": "x"}),  # 403 CSRF
            anon.get("/api/openapi.json"),
            anon.get("/healthz"),
            anon.get(f"/evidence/{sha}"),  # 404: the hash alone
            anon.get(signed_evidence_path(cfg.database_url, sha)),
        ]
        codes = {r.status_code for r in responses}
        assert {200, 303, 307, 401, 403, 404} <= codes, codes
        for r in responses:
            check_headers(r)
        # Docs: Swagger UI is served by central too (no CDN allowed anywhere); still not framable.
        docs = anon.get("/api/docs")
        assert docs.status_code == 200 and "://" not in docs.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in docs.headers["content-security-policy"]
        assert docs.headers["x-frame-options"] == "DENY"

    for user, page in (("op", "/queue"), ("op", "/health"), ("police-hue", "/police"), ("admin", "/queue")):
        with httpx.Client(base_url=base, timeout=10) as c:
            console_login(c, user)
            r = c.get(page, headers=HTML)
            assert r.status_code == 200, (user, page)
            nonce = check_headers(r)
            scripts = re.findall(r"<script([^>]*)>", r.text)
            if page in ("/queue", "/police"):
                assert scripts, page
            # Every script of the page runs by this response's nonce (and only it).
            assert all(f'nonce="{nonce}"' in attrs for attrs in scripts), (page, scripts)
            again = check_headers(c.get(page, headers=HTML))
            assert again != nonce  # a fresh nonce per response


def test_evidence_on_the_cookie_is_private_and_varies_by_cookie(
    server: tuple[str, CentralConfig, str], console_login: Any
) -> None:
    base, cfg, sha = server
    with httpx.Client(base_url=base, timeout=10) as c:
        console_login(c, "op")
        r = c.get(f"/evidence/{sha}")
        assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
        cache = [d.strip() for d in r.headers["cache-control"].split(",")]
        assert "private" in cache and "public" not in cache and "immutable" not in cache
        assert "cookie" in r.headers["vary"].lower()
        check_headers(r)
    with httpx.Client(base_url=base, timeout=10) as anon:
        # With the signed token the URL is the permission: any cache may keep it.
        r = anon.get(signed_evidence_path(cfg.database_url, sha))
        assert r.status_code == 200 and "public" in r.headers["cache-control"]
        assert "cookie" in r.headers["vary"].lower()
