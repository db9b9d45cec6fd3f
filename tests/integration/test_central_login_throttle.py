"""Login throttling on the real web server (uvicorn) and database (SQLite and PostgreSQL): defect 8
of issue 18 — 40 wrong passwords then the right one logged in; 120 parallel failed logins made
`/healthz` take 6.9 s and central's memory grow to 1 GiB (argon2)."""

from __future__ import annotations

import contextlib
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from central import auth
from central.config import CentralConfig
from central.db import make_engine, make_session_factory, session_scope
from central.web import create_app
from edge.local_broker import free_port
from tests.integration.test_central_web import live_server
from tests.services import unique_name, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

PASSWORD = "right-password-0123"


@pytest.fixture
def names() -> tuple[str, str]:
    """The users table is not emptied between tests on PostgreSQL: fresh names each time."""
    return unique_name("op"), unique_name("op2")


@pytest.fixture
def base(central_database_url: str, tmp_path: Path, names: tuple[str, str]) -> Iterator[str]:
    cfg = CentralConfig.model_validate({"database_url": central_database_url, "evidence_dir": str(tmp_path / "ev")})
    engine = make_engine(cfg.database_url)
    with session_scope(make_session_factory(engine)) as s:
        auth.create_user(s, names[0], PASSWORD, "operator")
        auth.create_user(s, names[1], PASSWORD, "operator")
    try:
        with live_server(create_app(cfg, engine=engine)) as port:
            yield f"http://127.0.0.1:{port}"
    finally:
        engine.dispose()


def login_form(client: httpx.Client) -> str:
    html = client.get("/login").text
    m = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert m
    return m.group(1)


def attempt(client: httpx.Client, token: str, username: str, password: str) -> httpx.Response:
    return client.post("/login", data={"username": username, "password": password, "csrf_token": token})


def logged_in(r: httpx.Response) -> bool:
    return r.status_code == 303 and "error=1" not in r.headers["location"]


def test_wrong_passwords_then_the_right_one_is_refused_while_throttled(base: str, names: tuple[str, str]) -> None:
    op, op2 = names
    with httpx.Client(base_url=base, timeout=10) as c:
        token = login_form(c)
        codes = [attempt(c, token, op, f"wrong-{i}").status_code for i in range(40)]
        # Five real failures (the login form again), then refusals that never reach argon2.
        assert codes[:5] == [303] * 5 and set(codes[5:]) == {429}
        r = attempt(c, token, op, PASSWORD)
        assert r.status_code == 429 and not logged_in(r)
        wait = int(r.headers["retry-after"])
        assert 1 <= wait <= 300
        assert "too many failed logins" in r.json()["detail"]
        # Another account from this address is not locked by op's failures.
        with httpx.Client(base_url=base, timeout=10) as c2:
            assert logged_in(attempt(c2, login_form(c2), op2, PASSWORD))
        time.sleep(wait + 0.2)
        r = attempt(c, token, op, PASSWORD)
        assert logged_in(r), r.text
        assert auth.SESSION_COOKIE in r.cookies
    with httpx.Client(base_url=base, timeout=10) as c:
        # The success cleared op's counter: a wrong password is an ordinary failure again.
        assert attempt(c, login_form(c), op, "wrong-again").status_code == 303


def test_the_delay_grows_and_is_capped(base: str, names: tuple[str, str]) -> None:
    op, op2 = names
    with httpx.Client(base_url=base, timeout=10) as c:
        token = login_form(c)
        for i in range(5):
            assert attempt(c, token, op, f"wrong-{i}").status_code == 303
        first = int(attempt(c, token, op, "x").headers["retry-after"])
        time.sleep(first + 0.2)
        assert attempt(c, token, op, "wrong-6").status_code == 303  # one more real try, failed
        second = int(attempt(c, token, op, PASSWORD).headers["retry-after"])
        assert first == 1 and second == 2


def test_per_address_limit_over_all_accounts(base: str, names: tuple[str, str]) -> None:
    op, op2 = names
    with httpx.Client(base_url=base, timeout=10) as c:
        token = login_form(c)
        # 20 accounts, one wrong password each: no account is throttled, the address is.
        codes = [attempt(c, token, f"user-{i}", "wrong").status_code for i in range(20)]
        assert codes == [303] * 20
        r = attempt(c, token, op, PASSWORD)
        assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


@contextlib.contextmanager
def central_subprocess(settings: dict[str, Any], tmp_path: Path, command: str = "web") -> Iterator[tuple[int, int]]:
    """`central <command>` in its own process, as deployed, on a free port: yields (port, pid)."""
    port = free_port()
    config = tmp_path / "central.yaml"
    settings = {**settings, "web": {**settings.get("web", {}), "port": port}}
    config.write_text(yaml.safe_dump(settings))
    proc = subprocess.Popen(
        [sys.executable, "-m", "central", "--config", str(config), "--log-level", "ERROR", command],
        stdout=subprocess.DEVNULL,
    )
    try:

        def up() -> bool:
            assert proc.poll() is None, f"central {command} exited"
            try:
                return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200
            except httpx.TransportError:
                return False

        wait_until(up, timeout=30, what=f"central {command} started")
        yield port, proc.pid
    finally:
        proc.terminate()
        proc.wait(15)


@pytest.fixture
def central_process(central_database_url: str, tmp_path: Path) -> Iterator[tuple[str, int]]:
    """`central web` in its own process: the flood's client threads do not share its GIL."""
    settings = {"database_url": central_database_url, "evidence_dir": str(tmp_path / "ev")}
    with central_subprocess(settings, tmp_path) as (port, pid):
        yield f"http://127.0.0.1:{port}", pid


def test_a_parallel_flood_does_not_stall_the_server(central_process: tuple[str, int]) -> None:
    base, pid = central_process
    with httpx.Client(base_url=base, timeout=30) as c:
        token = login_form(c)
        attempt(c, token, "warm-up", "wrong")  # argon2 and the dummy hash loaded once
        cookies = dict(c.cookies)
    rss_before = _rss_mib(pid)
    latencies: list[float] = []
    rss: list[float] = []
    stop = threading.Event()

    def probe() -> None:
        with httpx.Client(base_url=base, timeout=30) as p:
            while not stop.is_set():
                t0 = time.monotonic()
                assert p.get("/healthz").status_code == 200
                latencies.append(time.monotonic() - t0)
                rss.append(_rss_mib(pid))
                time.sleep(0.05)

    # One client for the 120 threads (each its own connection): the flood's own CPU is not the server's.
    flood = httpx.Client(base_url=base, timeout=30, cookies=cookies, limits=httpx.Limits(max_connections=120))

    def one(i: int) -> int:
        return attempt(flood, token, f"victim-{i % 3}", f"wrong-{i}").status_code

    prober = threading.Thread(target=probe)
    prober.start()
    try:
        with flood, ThreadPoolExecutor(120) as pool:
            codes = list(pool.map(one, range(120)))
    finally:
        stop.set()
        prober.join(30)
    assert set(codes) <= {303, 429, 503}, codes
    # At most `login_concurrent_verifications` hashes at once; the rest refused fast, not queued.
    assert codes.count(429) + codes.count(503) > 0
    assert codes.count(303) < 120
    assert latencies and max(latencies) < 2.0, latencies
    # Bounded concurrency bounds memory: two argon2 verifications (64 MiB each), not 120 (issue: +860 MiB).
    assert max(rss) - rss_before < 512, (rss_before, max(rss))
