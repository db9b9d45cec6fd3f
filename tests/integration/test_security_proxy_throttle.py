"""Issue 18, defect 10: the per-address login throttle behind a reverse proxy, on live uvicorn.
X-Forwarded-For is believed only from `web.trusted_proxies` (its nearest untrusted entry), so
clients behind the proxy are counted apart, an attacker cannot escape the limit by writing the
header, and cannot get a real operator's address throttled by naming it in a forged header."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from central.config import CentralConfig
from central.db import make_engine
from central.web import create_app
from tests.conftest import CONSOLE_PASSWORD
from tests.integration.test_central_login_throttle import attempt, logged_in, login_form
from tests.services import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]
LIMIT = 3


def _serve(url: str, tmp_path: Path, trusted: list[str]) -> Iterator[str]:
    cfg = CentralConfig.model_validate(
        {
            "database_url": url,
            "evidence_dir": str(tmp_path / "ev"),
            "web": {"trusted_proxies": trusted},
            "auth": {"login_address_failures": LIMIT, "login_account_failures": 1000},
        }
    )
    engine = make_engine(cfg.database_url)
    app = create_app(cfg, engine=engine)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # As `central web` runs it (central/__main__.py): uvicorn's own X-Forwarded-For handling off.
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="off", proxy_headers=False)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_until(lambda: server.started, what="uvicorn started")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        engine.dispose()


def test_central_web_turns_uvicorns_proxy_headers_off() -> None:
    import inspect

    import central.__main__ as cli

    assert "proxy_headers=False" in inspect.getsource(cli._serve)


@pytest.fixture
def behind_proxy(central_database_url: str, central_users: Any, tmp_path: Path) -> Iterator[str]:
    yield from _serve(central_database_url, tmp_path, ["127.0.0.1/32"])


@pytest.fixture
def direct(central_database_url: str, central_users: Any, tmp_path: Path) -> Iterator[str]:
    yield from _serve(central_database_url, tmp_path, [])


def _fail(base: str, xff: str | None, n: int) -> list[int]:
    codes = []
    with httpx.Client(base_url=base, timeout=30, headers={"X-Forwarded-For": xff} if xff else {}) as c:
        token = login_form(c)
        for i in range(n):
            codes.append(attempt(c, token, f"nobody{i}", "wrong").status_code)
    return codes


def _login(base: str, xff: str | None) -> httpx.Response:
    with httpx.Client(base_url=base, timeout=30, headers={"X-Forwarded-For": xff} if xff else {}) as c:
        return attempt(c, login_form(c), "op", CONSOLE_PASSWORD)


def test_behind_a_trusted_proxy_each_client_is_counted_apart(behind_proxy: str) -> None:
    attacker = "203.0.113.7"
    assert _fail(behind_proxy, attacker, LIMIT) == [303] * LIMIT
    assert _fail(behind_proxy, attacker, 1) == [429]  # the attacker's address is throttled
    # A forged entry further left is whatever the client wrote: it does not give a fresh address.
    assert _fail(behind_proxy, f"198.51.100.99, {attacker}", 1) == [429]
    # The operator behind the same proxy is not locked out by the attacker's failures.
    assert logged_in(_login(behind_proxy, "203.0.113.8"))


def test_without_trusted_proxies_the_header_is_ignored(direct: str) -> None:
    # Each attempt names another address: the throttle counts the peer, and the limit holds.
    codes = [_fail(direct, f"203.0.113.{i}", 1)[0] for i in range(LIMIT + 2)]
    assert codes[:LIMIT] == [303] * LIMIT and codes[LIMIT:] == [429, 429], codes


def test_a_forged_header_cannot_throttle_someone_elses_address(behind_proxy: str) -> None:
    victim = "203.0.113.50"
    # The attacker, behind the proxy at 203.0.113.9, writes the victim's address first: the proxy
    # appends the attacker's real address, which is the one counted.
    assert _fail(behind_proxy, f"{victim}, 203.0.113.9", LIMIT + 1)[-1] == 429
    assert logged_in(_login(behind_proxy, victim))
