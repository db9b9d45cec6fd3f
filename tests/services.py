"""Helpers for tests that need real services (Mosquitto, PostgreSQL) and sample contract data.

Imported by tests/conftest.py (the fixtures) and directly by tests (`from tests.services import ...`).
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import paho.mqtt.client as mqtt

from contract.events import ViolationEvent, ViolationType, known_violation_types, new_event_id
from contract.topics import parse_mqtt_url
from edge.local_broker import LocalMosquitto

DEFAULT_POSTGRES_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"

# ------------------------------------------------------------------------------------------ data


def make_event(**overrides: Any) -> ViolationEvent:
    """A valid v1 event (illegal stopping, Huế, with a snapshot and a clip); override any field.

    `type=` also sets the matching `category` unless one is given.
    """
    started = overrides.pop("started_at", datetime(2026, 11, 21, 7, 3, 5, tzinfo=UTC))
    vtype = ViolationType(overrides.pop("type", "illegal_stopping"))
    data: dict[str, Any] = {
        "schema": "ioc.event/1",
        "id": new_event_id(),
        "node": "node-hue-01",
        "camera": "cam-le-loi-01",
        "type": vtype,
        "category": known_violation_types().get(vtype, "traffic"),
        "phase": "point",
        "started_at": started,
        "ended_at": started + timedelta(seconds=205),
        "confidence": 0.91,
        "objects": [
            {
                "class_name": "car",
                "track_id": 17,
                "box": (412.0, 233.5, 698.0, 455.0),
                "confidence": 0.93,
                "plate": "75A-123.45",
            },
        ],
        "zone": {"id": "no-stop-1", "kind": "no_stopping"},
        "location": {
            "ward": "Phường Vĩnh Ninh",
            "district": "Thành phố Huế",
            "address": "12 Lê Lợi",
            "lat": 16.4637,
            "lon": 107.5909,
        },
        "evidence": [
            {"kind": "snapshot", "media_type": "image/jpeg", "sha256": "a" * 64, "size": 48213},
            {"kind": "clip", "media_type": "video/mp4", "sha256": "b" * 64, "size": 1843200},
        ],
        "model": {"name": "yolo11n", "version": "3f2a9c1e"},
        "details": {"stopped_seconds": 205.0},
    }
    data.update(overrides)
    return ViolationEvent.model_validate(data)


def fake_jpeg(seed: str = "x", size: int = 2048) -> bytes:
    """Bytes that start like a JPEG (enough for media type sniffing), unique per seed."""
    body = (seed.encode() * (size // max(1, len(seed)) + 1))[: size - 4]
    return b"\xff\xd8\xff\xe0" + body


def unique_name(prefix: str = "t") -> str:
    """A short unique topic-safe name (per-test topic prefixes, share groups, client ids)."""
    return f"{prefix}{uuid.uuid4().hex[:10]}"


def wait_until(predicate: Callable[[], Any], timeout: float = 10.0, interval: float = 0.02, what: str = "") -> Any:
    """Poll until `predicate()` is truthy; AssertionError naming `what` on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.1f} s waiting for {what or predicate}")
        time.sleep(interval)


# ------------------------------------------------------------------------------------------ MQTT


@dataclass(frozen=True)
class ExternalBroker:
    """A broker the test run did not start (TEST_MQTT_URL): no stop/restart."""

    url: str

    @property
    def host(self) -> str:
        return parse_mqtt_url(self.url)[0]

    @property
    def port(self) -> int:
        return parse_mqtt_url(self.url)[1]


Broker = LocalMosquitto | ExternalBroker


class Publisher:
    """A paho MQTT v5 publisher for tests: `publish()` returns once the broker acked (QoS 1)."""

    def __init__(self, url: str, client_id: str | None = None) -> None:
        host, port, tls = parse_mqtt_url(url)
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=client_id or unique_name("pub-"), protocol=mqtt.MQTTv5
        )
        if tls:
            self.client.tls_set()
        self.client.connect(host, port, keepalive=30)
        self.client.loop_start()

    def publish(
        self, topic: str, payload: bytes | str, qos: int = 1, retain: bool = False, timeout: float = 10.0
    ) -> None:
        info = self.client.publish(topic, payload, qos=qos, retain=retain)
        info.wait_for_publish(timeout)
        if not info.is_published():
            raise AssertionError(f"publish to {topic} not acknowledged within {timeout} s (rc={info.rc})")

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def __enter__(self) -> Publisher:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


@contextlib.contextmanager
def broker_for_tests() -> Iterator[Broker]:
    """TEST_MQTT_URL if set, else a LocalMosquitto on a free port for the duration."""
    url = os.environ.get("TEST_MQTT_URL")
    if url:
        yield ExternalBroker(url)
        return
    with LocalMosquitto() as broker:
        yield broker


# ------------------------------------------------------------------------------------ PostgreSQL


def _psycopg_dsn(sqlalchemy_url: str, database: str | None = None) -> str:
    from sqlalchemy.engine import make_url

    url = make_url(sqlalchemy_url).set(drivername="postgresql")
    if database is not None:
        url = url.set(database=database)
    return url.render_as_string(hide_password=False)


def with_database(sqlalchemy_url: str, database: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(sqlalchemy_url).set(database=database).render_as_string(hide_password=False)


def postgres_reachable(admin_url: str) -> str | None:
    """None if a connection works, else the error text."""
    import psycopg

    try:
        with psycopg.connect(_psycopg_dsn(admin_url), connect_timeout=3):
            return None
    except psycopg.Error as e:
        return str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__


def try_start_local_postgres() -> str:
    """Start the Debian cluster(s) with pg_ctlcluster if present; returns what was tried."""
    if not shutil.which("pg_ctlcluster"):
        return "pg_ctlcluster not available"
    versions = sorted((os.path.basename(p) for p in glob.glob("/etc/postgresql/*")), key=lambda v: float(v or 0))
    tried = []
    for version in reversed(versions):
        cmd = ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "start"]
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        tried.append(f"`{' '.join(cmd)}` -> rc {res.returncode} {res.stderr.strip()[:200]}")
        if res.returncode == 0:
            break
    return "; ".join(tried) or "no cluster under /etc/postgresql"


def ensure_postgres(admin_url: str) -> None:
    """Raises RuntimeError with how to start PostgreSQL if it cannot be reached (after one start try)."""
    err = postgres_reachable(admin_url)
    if err is None:
        return
    tried = try_start_local_postgres()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        err = postgres_reachable(admin_url)
        if err is None:
            return
        time.sleep(0.3)
    raise RuntimeError(
        f"PostgreSQL is not reachable at {admin_url} ({err}); tried: {tried}. Start it with "
        "`pg_ctlcluster --skip-systemctl-redirect <version> main start` (Debian; `sudo` if not root) or "
        "`sudo service postgresql start`, or point TEST_POSTGRES_URL at a server "
        "(postgresql+psycopg://user@host:port/db, a role that may CREATE DATABASE)."
    )


def create_database(admin_url: str, name: str) -> str:
    import psycopg

    with psycopg.connect(_psycopg_dsn(admin_url), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return with_database(admin_url, name)


def drop_database(admin_url: str, name: str) -> None:
    import psycopg

    with psycopg.connect(_psycopg_dsn(admin_url), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def signed_evidence_path(database_url: str, sha256: str, configured_secret: str | None = None) -> str:
    """`/evidence/<sha>?t=<token>`: the URL a report view hands to someone allowed to see it."""
    from central.auth import evidence_token, share_secret
    from central.db import make_engine, make_session_factory, session_scope

    engine = make_engine(database_url)
    try:
        with session_scope(make_session_factory(engine)) as s:
            secret = share_secret(s, configured_secret)
    finally:
        engine.dispose()
    return f"/evidence/{sha256}?t={evidence_token(secret, sha256)}"


def mp4_top_level_boxes(data: bytes) -> list[str]:
    """The MP4's top-level box types in file order (faststart puts `moov` before `mdat`)."""
    boxes, i = [], 0
    while i + 8 <= len(data):
        size = int.from_bytes(data[i : i + 4], "big")
        boxes.append(data[i + 4 : i + 8].decode("latin-1"))
        if size == 1:
            size = int.from_bytes(data[i + 8 : i + 16], "big")
        if size < 8:
            break
        i += size
    return boxes
