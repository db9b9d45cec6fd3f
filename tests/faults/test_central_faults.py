"""Central's faults with real processes: an ingester killed under load, PostgreSQL restarted under
load. Nothing lost, nothing stored twice."""

from __future__ import annotations

import signal
import threading
import time
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

from central.db import make_engine, migrate
from edge.local_broker import LocalMosquitto
from tests.faults.support import LoadPublisher, PrivatePostgres, start_ingester, stop_process
from tests.services import create_database, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(420)]


def _stored(db_url: str) -> list[str]:
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            return list(conn.execute(sa.text("SELECT id FROM events")).scalars())
    finally:
        engine.dispose()


def _dead_letters(db_url: str) -> list[str]:
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            return list(conn.execute(sa.text("SELECT reason FROM dead_letters")).scalars())
    finally:
        engine.dispose()


def _config(folder: Path, name: str, prefix: str) -> Path:
    path = folder / f"{name}.yaml"
    # A stable client id per ingester: a restarted one resumes its session and gets what it had
    # received but not acknowledged.
    path.write_text(
        f"mqtt:\n  topic_prefix: {prefix}\n  share_group: faults\n  client_id: {name}\n"
        f"evidence_dir: {folder / 'evidence'}\n",
        encoding="utf-8",
    )
    return path


def test_ingester_killed_under_load_with_a_second_on_the_shared_subscription(tmp_path, postgres_admin_url):
    db_url = create_database(postgres_admin_url, f"faults_{uuid.uuid4().hex[:10]}")
    migrate(db_url)
    prefix = f"f{uuid.uuid4().hex[:8]}"
    with LocalMosquitto(state_dir=tmp_path / "broker") as broker:
        env = {"CENTRAL_DATABASE_URL": db_url, "CENTRAL_MQTT_URL": broker.url}
        cfg_a, cfg_b = _config(tmp_path, "ingest-a", prefix), _config(tmp_path, "ingest-b", prefix)
        a = start_ingester(cfg_a, env, tmp_path / "a.log")
        b = start_ingester(cfg_b, env, tmp_path / "b.log")
        load = LoadPublisher(broker.port, prefix)
        try:
            time.sleep(3)
            publisher = threading.Thread(target=load.run, args=(300, 10))
            publisher.start()
            time.sleep(4)
            a.send_signal(signal.SIGKILL)  # mid-stream, with messages in flight
            a.wait(10)
            time.sleep(2)
            a = start_ingester(cfg_a, env, tmp_path / "a.log")  # the same session comes back
            publisher.join()
            load.wait_acked()
            wait_until(lambda: len(_stored(db_url)) >= len(load.ids), 240, interval=0.5, what="all stored")
            time.sleep(2)  # anything stored twice would show up now
        finally:
            load.close()
            stop_process(a)
            stop_process(b)
    stored = _stored(db_url)
    assert len(stored) == len(set(stored)), "an event was stored twice"
    dead = _dead_letters(db_url)
    assert set(stored) == set(load.ids), f"lost {len(set(load.ids) - set(stored))} events; dead letters: {dead[:3]}"


def test_postgres_restarted_under_load(tmp_path):
    pg = PrivatePostgres().init()
    try:
        db_url = pg.url
        migrate(db_url)
        prefix = f"f{uuid.uuid4().hex[:8]}"
        with LocalMosquitto(state_dir=tmp_path / "broker") as broker:
            env = {"CENTRAL_DATABASE_URL": db_url, "CENTRAL_MQTT_URL": broker.url}
            ing = start_ingester(_config(tmp_path, "ingest-pg", prefix), env, tmp_path / "ing.log")
            load = LoadPublisher(broker.port, prefix)
            try:
                time.sleep(3)
                publisher = threading.Thread(target=load.run, args=(150, 8))
                publisher.start()
                time.sleep(3)
                pg.stop(mode="immediate")  # a crash-like stop: connections cut, no clean shutdown
                time.sleep(3)
                pg.start()
                publisher.join()
                load.wait_acked()
                wait_until(lambda: len(_stored(db_url)) >= len(load.ids), 120, interval=0.5, what="all stored")
                time.sleep(2)
                assert ing.poll() is None, "the ingester died with the database"
            finally:
                load.close()
                stop_process(ing)
        stored = _stored(db_url)
        assert len(stored) == len(set(stored))
        assert set(stored) == set(load.ids), f"lost {len(set(load.ids) - set(stored))} events"
    finally:
        pg.remove()
