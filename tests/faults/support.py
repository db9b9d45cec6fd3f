"""Real processes for fault tests: a private PostgreSQL server, central ingesters, an event load."""

from __future__ import annotations

import glob
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import paho.mqtt.client as mqtt

from contract.events import ModelRef, ViolationEvent, new_event_id
from contract.topics import event_topic
from edge.local_broker import free_port, port_open

REPO = Path(__file__).resolve().parents[2]


def _pg_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not found:
        raise RuntimeError(f"PostgreSQL server binaries not found ({name}): install the Debian package `postgresql`")
    return found[-1]


class PrivatePostgres:
    """A PostgreSQL server of our own in a temp dir (trust auth on loopback), so a test may stop,
    kill and restart it without touching the machine's server. Runs as the `postgres` user when
    started as root (PostgreSQL refuses to run as root)."""

    def __init__(self, root: Path | None = None) -> None:
        # Not under pytest's tmp_path: that is private to root, and the server runs as `postgres`.
        self.root = root or Path(tempfile.mkdtemp(prefix="ioc-pg-"))
        self.data = self.root / "data"
        self.port = free_port()
        self._as_postgres = os.geteuid() == 0

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        cmd = list(args)
        if self._as_postgres:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        return subprocess.run(cmd, check=check, capture_output=True, text=True, timeout=120)

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def init(self) -> PrivatePostgres:
        self.root.mkdir(parents=True, exist_ok=True)
        if self._as_postgres:
            shutil.chown(self.root, "postgres", "postgres")
        self._run(_pg_bin("initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
        return self.start()

    def start(self) -> PrivatePostgres:
        opts = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=on"
        self._run(_pg_bin("pg_ctl"), "-D", str(self.data), "-o", opts, "-l", str(self.root / "log"), "-w", "start")
        deadline = time.monotonic() + 20
        while not port_open("127.0.0.1", self.port):
            if time.monotonic() > deadline:
                raise RuntimeError(f"private PostgreSQL did not start: {(self.root / 'log').read_text()[-2000:]}")
            time.sleep(0.1)
        return self

    def stop(self, mode: str = "fast") -> None:
        self._run(_pg_bin("pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop", check=False)

    def restart(self) -> None:
        self.stop()
        self.start()

    def remove(self) -> None:
        self.stop(mode="immediate")
        shutil.rmtree(self.root, ignore_errors=True)


def start_ingester(config: Path, env: dict[str, str], log: Path) -> subprocess.Popen:
    out = open(log, "a")  # noqa: SIM115 - the child owns it
    return subprocess.Popen(
        [sys.executable, "-m", "central", "--config", str(config), "ingest"],
        cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO), **env}, stdout=out, stderr=subprocess.STDOUT,
    )


def stop_process(proc: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 20) -> None:
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def event_payload(prefix: str, node: str, camera: str) -> tuple[str, bytes, str]:
    now = datetime.now(UTC)
    e = ViolationEvent(
        id=new_event_id(), node=node, camera=camera, type="illegal_stopping", category="traffic",
        started_at=now - timedelta(seconds=12), ended_at=now, confidence=0.9,
        zone={"id": "zone-1", "kind": "no_stopping"}, model=ModelRef(name="yolo11n", version="fault-test"),
    )
    return event_topic(prefix, node, camera, "illegal_stopping"), e.to_json().encode(), e.id


class LoadPublisher:
    """Publishes events at a steady rate from simulated nodes (QoS 1), remembering every id."""

    def __init__(self, port: int, prefix: str, nodes: int = 5) -> None:
        self.prefix, self.nodes = prefix, nodes
        self.ids: list[str] = []
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=f"load-{uuid.uuid4().hex[:8]}", protocol=mqtt.MQTTv5
        )
        self.client.max_inflight_messages_set(500)
        self.client.max_queued_messages_set(0)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        self._infos: list[mqtt.MQTTMessageInfo] = []

    def run(self, rate: float, seconds: float) -> None:
        start = time.monotonic()
        n = int(rate * seconds)
        for i in range(n):
            delay = start + i / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            topic, payload, eid = event_payload(self.prefix, f"node-{i % self.nodes}", "cam-1")
            self.ids.append(eid)
            self._infos.append(self.client.publish(topic, payload, qos=1))

    def wait_acked(self, timeout: float = 60) -> None:
        for info in self._infos:
            info.wait_for_publish(timeout)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
