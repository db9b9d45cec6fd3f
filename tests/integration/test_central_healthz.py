"""`/healthz` on the real web server (`central run`: uvicorn beside its ingester on Mosquitto; SQLite and
PostgreSQL): the MQTT state and the ingest counters only to a client on this host or a logged-in
operator or admin; to anyone else the status and database only (issue 18, defect 10)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.test_central_login_throttle import central_subprocess
from tests.services import unique_name, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


def this_hosts_address() -> str:
    """An address of this host that is not loopback: a request to it comes from a "remote" peer."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))  # no packet is sent: only the route is looked up
        except OSError:
            pytest.skip("no non-loopback IPv4 address on this host")
        address = s.getsockname()[0]
    if address.startswith("127."):
        pytest.skip("no non-loopback IPv4 address on this host")
    return str(address)


@pytest.fixture
def urls(central_database_url: str, central_users: Any, mqtt_broker: Any, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """(loopback base URL, this host's other address as base URL) of `central run` (migrate,
    ingester, web) in its own process, listening on all addresses."""
    remote = this_hosts_address()
    settings = {
        "database_url": central_database_url,
        "mqtt": {"url": mqtt_broker.url, "topic_prefix": unique_name("h"), "share_group": unique_name("g")},
        "evidence_dir": str(tmp_path / "ev"),
        "web": {"host": "0.0.0.0"},
    }
    with central_subprocess(settings, tmp_path, "run") as (port, _pid):
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as c:
            wait_until(lambda: c.get("/healthz").json().get("mqtt") == "connected", what="ingester connected")
        yield f"http://127.0.0.1:{port}", f"http://{remote}:{port}"


def healthz(client: httpx.Client) -> dict[str, Any]:
    r = client.get("/healthz")
    assert r.status_code == 200
    body: dict[str, Any] = r.json()
    return body


def test_ingest_counters_only_to_loopback_and_reviewers(urls: tuple[str, str], console_login: Any) -> None:
    local, remote = urls
    with httpx.Client(base_url=local, timeout=10) as c:
        body = healthz(c)
        assert body["status"] == "ok" and body["mqtt"] == "connected" and "stored" in body["ingester"]
    with httpx.Client(base_url=remote, timeout=10) as anon:
        assert healthz(anon) == {"status": "ok", "database": "ok"}
        # A made-up session cookie is no login.
        anon.cookies.set("ioc_session", "forged-session-token")
        assert healthz(anon) == {"status": "ok", "database": "ok"}
    for user, sees in (("op", True), ("admin", True), ("police-hue", False)):
        with httpx.Client(base_url=remote, timeout=10) as c:
            console_login(c, user)
            body = healthz(c)
            assert ("ingester" in body and "mqtt" in body) is sees, (user, body)
            assert body["status"] == "ok"
