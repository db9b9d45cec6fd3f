"""`python -m central`: exit codes and messages, and the whole service end to end in one process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from contract.topics import event_topic
from edge.local_broker import free_port
from tests.services import Publisher, make_event, unique_name, wait_until
from tests.support import REPO_ROOT, log_events

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CENTRAL_")}
    env.update(extra)
    return env


def _central(*args: str, env: dict[str, str] | None = None, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "central", *args],
        cwd=REPO_ROOT,
        env=env or _env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_bad_config_exits_2_with_the_key_and_no_traceback(tmp_path: Path) -> None:
    cfg = tmp_path / "central.yaml"
    cfg.write_text("mqtt:\n  url: http://broker\nweb:\n  port: 99999\n", encoding="utf-8")
    res = _central("--config", str(cfg), "migrate")
    assert res.returncode == 2, res.stderr
    assert str(cfg) in res.stderr and "mqtt.url" in res.stderr and "web.port" in res.stderr
    assert "Traceback" not in res.stderr
    missing = _central("--config", str(tmp_path / "nope.yaml"), "run")
    assert missing.returncode == 2 and "config file not found" in missing.stderr


def test_unreachable_database_exits_1_with_a_clear_message(tmp_path: Path) -> None:
    cfg = tmp_path / "central.yaml"
    cfg.write_text("{}\n", encoding="utf-8")
    env = _env(CENTRAL_DATABASE_URL=f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/central")
    res = _central("--config", str(cfg), "run", env=env)
    assert res.returncode == 1, res.stderr
    assert "cannot reach the database postgresql+psycopg://postgres@127.0.0.1:" in res.stderr
    assert "Traceback" not in res.stderr


def test_run_ingests_serves_and_stops_cleanly_on_sigterm(tmp_path: Path, mqtt_broker: Any) -> None:
    port = free_port()
    prefix = unique_name("t")
    cfg = tmp_path / "central.yaml"
    cfg.write_text(
        f"database_url: sqlite:///{tmp_path / 'central.db'}\n"
        f"mqtt: {{topic_prefix: {prefix}, share_group: {unique_name('g')}}}\n"
        f"evidence_dir: {tmp_path / 'evidence'}\n"
        f"web: {{port: {port}}}\n",
        encoding="utf-8",
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "central", "--config", str(cfg)],
        cwd=REPO_ROOT,
        env=_env(CENTRAL_MQTT_URL=mqtt_broker.url),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    out: list[str] = []
    err: list[str] = []
    readers = [
        threading.Thread(target=lambda s=s, b=b: b.extend(iter(s.readline, "")), daemon=True)
        for s, b in ((proc.stdout, out), (proc.stderr, err))
    ]
    for t in readers:
        t.start()
    try:
        wait_until(
            lambda: (
                "mqtt_subscribed" in log_events(err)
                and any("Uvicorn running" in line or "Application startup" in line for line in err)
                or proc.poll() is not None
            ),
            timeout=20,
            what="service up",
        )
        assert proc.poll() is None, "".join(err)
        event = make_event()
        with Publisher(mqtt_broker.url) as pub:
            pub.publish(event_topic(prefix, event.node, event.camera, event.type.value), event.to_json())
        line = wait_until(lambda: next((x for x in out if x.startswith("REPORT ")), None), what="REPORT line")
        report_id = line.split()[1]
        url = line.split()[-1]  # the signed share link: readable without a login
        assert url.startswith(f"http://127.0.0.1:{port}/reports/{report_id}-")
        with urllib.request.urlopen(url + ".json", timeout=5) as r:
            body = json.load(r)
        assert body["event"]["id"] == event.id
        with pytest.raises(urllib.error.HTTPError) as denied:  # the bare id needs a login
            urllib.request.urlopen(f"http://127.0.0.1:{port}/reports/{report_id}.json", timeout=5)
        assert denied.value.code == 401
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as r:
            health = json.load(r)
        assert health["mqtt"] == "connected" and health["ingester"]["stored"] == 1
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0, "".join(err)
        assert "ingester_stopped" in log_events(err)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
