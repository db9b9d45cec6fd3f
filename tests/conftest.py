"""Shared fixtures: a real Mosquitto, a fresh PostgreSQL database, SQLite files, sample events.

- `mqtt_broker` (session): a LocalMosquitto on a free port, or the broker at env TEST_MQTT_URL.
  Tests share it: give each test its own topic prefix (`tests.services.unique_name`).
- `postgres_url` (session): a fresh, uniquely named database on env TEST_POSTGRES_URL (default
  postgresql+psycopg://postgres@127.0.0.1:5432/postgres), dropped at the end. If PostgreSQL is
  down, one `pg_ctlcluster ... start` is tried, then the test fails saying how to start it.
- `sqlite_url`: a SQLite file in the test's tmp_path.
- `central_database_url`: parametrized over sqlite and postgresql, migrated and empty per test.
- `sample_event`: a valid ViolationEvent (see `tests.services.make_event` for variants).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from contract.events import ViolationEvent
from tests.services import (
    DEFAULT_POSTGRES_ADMIN_URL,
    Broker,
    broker_for_tests,
    create_database,
    drop_database,
    ensure_postgres,
    make_event,
)


@pytest.fixture(scope="session")
def mqtt_broker() -> Iterator[Broker]:
    try:
        with broker_for_tests() as broker:
            yield broker
    except RuntimeError as e:  # BrokerError: binary missing or it would not start
        pytest.fail(f"cannot start Mosquitto for the tests: {e}", pytrace=False)


@pytest.fixture(scope="session")
def postgres_admin_url() -> str:
    url = os.environ.get("TEST_POSTGRES_URL", DEFAULT_POSTGRES_ADMIN_URL)
    try:
        ensure_postgres(url)
    except RuntimeError as e:
        pytest.fail(str(e), pytrace=False)
    return url


def _own_database(admin_url: str) -> Iterator[str]:
    """A new, empty database, dropped when the fixture using it ends."""
    name = f"test_{uuid.uuid4().hex[:12]}"
    url = create_database(admin_url, name)
    try:
        yield url
    finally:
        drop_database(admin_url, name)


@pytest.fixture(scope="session")
def postgres_url(postgres_admin_url: str) -> Iterator[str]:
    yield from _own_database(postgres_admin_url)


@pytest.fixture
def fresh_postgres_url(postgres_admin_url: str) -> Iterator[str]:
    """A database of this test's own, dropped after it: the session's database holds what earlier
    tests stored (the rabbitmq fault test once counted a NATS test's 240 events as its own)."""
    yield from _own_database(postgres_admin_url)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'test.db'}"


@pytest.fixture
def sample_event() -> ViolationEvent:
    return make_event()


# ---------------------------------------------------------------------------- central's database

_CENTRAL_TABLES = ("reports", "events", "dead_letters", "evidence", "node_status", "camera_health",
                   "scene_versions", "scene_frames", "debug_recordings", "login_failures")


@pytest.fixture(scope="session")
def _central_postgres(postgres_url: str) -> str:
    from central.db import migrate

    migrate(postgres_url)
    return postgres_url


@pytest.fixture(params=["sqlite", "postgresql"])
def central_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A migrated, empty central database: a new SQLite file, or the session's PostgreSQL truncated."""
    from central.db import migrate

    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'central.db'}"
        migrate(url)
        return url
    url = request.getfixturevalue("_central_postgres")
    import sqlalchemy as sa

    from central.db import make_engine

    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text(f"TRUNCATE {', '.join(_CENTRAL_TABLES)} RESTART IDENTITY CASCADE"))
    engine.dispose()
    return url


# ------------------------------------------------------------------------------ central's console

CONSOLE_PASSWORD = "correct-horse-battery-1"
CONSOLE_USERS = {
    # username: (role, districts)
    "op": ("operator", []),
    "admin": ("admin", []),
    "police-hue": ("police", ["Thành phố Huế"]),
    "police-hk": ("police", ["Quận Hoàn Kiếm"]),
}


@pytest.fixture
def central_users(central_database_url: str) -> dict[str, tuple[str, list[str]]]:
    """The CONSOLE_USERS (password CONSOLE_PASSWORD) in a fresh `central_database_url`."""
    import sqlalchemy as sa

    from central.auth import create_user
    from central.db import make_engine, make_session_factory, session_scope

    engine = make_engine(central_database_url)
    try:
        with session_scope(make_session_factory(engine)) as s:
            s.execute(sa.text("DELETE FROM web_sessions"))  # PostgreSQL is shared: clear the last test's
            s.execute(sa.text("DELETE FROM users"))
            s.execute(sa.text("DELETE FROM settings"))
            for name, (role, districts) in CONSOLE_USERS.items():
                create_user(s, name, CONSOLE_PASSWORD, role, districts)
    finally:
        engine.dispose()
    return CONSOLE_USERS


@pytest.fixture
def console_login() -> Any:
    """`console_login(client, username)` logs a TestClient in; returns the session's CSRF token."""

    def login(client: Any, username: str, password: str = CONSOLE_PASSWORD) -> str:
        import re

        form = client.get("/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', form.text).group(1)
        r = client.post(
            "/login",
            data={"username": username, "password": password, "csrf_token": token, "next": "/reports"},
            follow_redirects=False,
        )
        assert r.status_code == 303 and "error" not in r.headers["location"], f"login as {username} failed"
        return client.get("/api/me").json()["csrf"]

    return login
