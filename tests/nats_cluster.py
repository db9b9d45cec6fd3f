"""A real three-server NATS cluster (JetStream + MQTT listener) on one machine, for tests and
benchmarks: distinct ports, data dirs under a temp folder; servers can be killed and restarted."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from central.nats_cluster import NatsNode, NatsUsers, local_cluster, server_config

NATS_SERVER = shutil.which("nats-server") or "/usr/sbin/nats-server"


def _free_base_port() -> int:
    """A base port whose +0..2, +100..102, +200..202 are free (best effort)."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            base = s.getsockname()[1]
        if base + 202 < 65000 and all(_port_free(base + d) for d in (0, 1, 2, 100, 101, 102, 200, 201, 202)):
            return base
    raise RuntimeError("no free ports for a NATS cluster")


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


class NatsCluster:
    def __init__(self, root: Path, users: NatsUsers | None = None) -> None:
        if not Path(NATS_SERVER).exists():
            pytest.fail(f"nats-server not found ({NATS_SERVER}): apt-get install nats-server")
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.nodes: list[NatsNode] = local_cluster(_free_base_port())
        self.users = users or NatsUsers()
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        for n in self.nodes:
            conf = root / f"{n.name}.conf"
            conf.write_text(server_config(n, self.nodes, root / "data" / n.name, self.users))

    @property
    def servers(self) -> list[str]:
        return [f"nats://127.0.0.1:{n.client_port}" for n in self.nodes]

    @property
    def mqtt_urls(self) -> list[str]:
        return [f"mqtt://127.0.0.1:{n.mqtt_port}" for n in self.nodes]

    def node(self, name: str) -> NatsNode:
        return next(n for n in self.nodes if n.name == name)

    def start(self, name: str | None = None, timeout: float = 20.0) -> None:
        for n in self.nodes if name is None else [self.node(name)]:
            log = open(self.root / f"{n.name}.log", "ab")  # noqa: SIM115 - the server's for its life
            self.procs[n.name] = subprocess.Popen(
                [NATS_SERVER, "-c", str(self.root / f"{n.name}.conf")], stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + timeout
        for n in self.nodes if name is None else [self.node(name)]:
            while not (_listening(n.client_port) and _listening(n.mqtt_port)):
                if self.procs[n.name].poll() is not None:
                    pytest.fail(f"nats-server {n.name} exited: {(self.root / f'{n.name}.log').read_text()[-2000:]}")
                if time.monotonic() > deadline:
                    pytest.fail(f"nats-server {n.name} not listening after {timeout} s")
                time.sleep(0.1)

    def kill(self, name: str) -> None:
        p = self.procs.pop(name)
        p.kill()
        p.wait(10)

    def stop(self) -> None:
        for name in list(self.procs):
            p = self.procs.pop(name)
            p.terminate()
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)
