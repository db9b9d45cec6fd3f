"""A real RabbitMQ cluster (MQTT plugin, quorum queues) on one machine, for tests and benchmarks.

Each node is its own `rabbitmq-server` (Debian's 3.10) with a distinct node name, AMQP, MQTT and
Erlang distribution ports, its own RABBITMQ_MNESIA_BASE / RABBITMQ_LOG_BASE under the test's
folder, and one Erlang cookie for all (HOME points at the folder that holds it). Nodes 2.. join
node 1 with `rabbitmqctl join_cluster`; the accounts come from `central.rabbitmq_cluster.definitions`
(`rabbitmqctl import_definitions`). Nodes can be killed (SIGKILL) and started again; `stop()`
stops them all (SIGTERM: a clean shutdown), and `start()` brings the whole cluster back.

The scripts are run directly from /usr/lib/rabbitmq/bin (the /usr/sbin wrappers switch to the
`rabbitmq` user and its home). Each Erlang VM is held to one scheduler without busy waiting:
three brokers share a small machine with the test.

With `tls_dirs` (one folder per node holding ca.crt, server.crt, server.key, e.g. made by
`central.rabbitmq_cluster.generate_pki`) the nodes are configured as the generator configures a
deployment with `--tls-dir`: TLS-only AMQP and MQTT listeners, and the Erlang distribution between
the nodes and from rabbitmqctl over TLS (`inter_node_tls_config`, `tls_dist_erl_args`); the CLI
presents node 1's certificate.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from central.rabbitmq_cluster import (
    ENABLED_PLUGINS,
    INTER_NODE_TLS_CONFIG,
    RabbitNode,
    inter_node_tls_config,
    local_cluster,
    node_config,
    tls_dist_erl_args,
)

RABBITMQ_BIN = Path(os.environ.get("RABBITMQ_BIN", "/usr/lib/rabbitmq/bin"))
SERVER = RABBITMQ_BIN / "rabbitmq-server"
CTL = RABBITMQ_BIN / "rabbitmqctl"


def _free_ports(n: int) -> list[int]:
    socks, ports = [], []
    try:
        while len(ports) < n:
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
            port = s.getsockname()[1]
            if port < 60000:
                ports.append(port)
    finally:
        for s in socks:
            s.close()
    return ports


def listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


class RabbitCluster:
    def __init__(
        self, root: Path, size: int = 3, *, tls_dirs: Sequence[Path] | None = None, cookie: str | None = None
    ) -> None:
        if not SERVER.exists() or not CTL.exists():
            pytest.fail(
                f"rabbitmq-server not found ({SERVER}): apt-get install rabbitmq-server "
                "(scripts/setup.sh installs it on Debian/Ubuntu)",
                pytrace=False,
            )
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        tag = secrets.token_hex(3)  # the machine's epmd is shared: names unique per run
        self.nodes: list[RabbitNode] = local_cluster(_free_ports(9), tag=f"x{tag}")[:size]
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        if tls_dirs is not None and len(tls_dirs) < size:
            raise ValueError("tls_dirs: one folder per node")
        self.tls_dirs = list(tls_dirs)[:size] if tls_dirs is not None else None
        self.cookie = cookie or secrets.token_hex(20)  # one for all nodes (and what an intruder would need)
        cookie_file = root / ".erlang.cookie"
        cookie_file.write_text(self.cookie)
        os.chmod(cookie_file, 0o400)
        (root / "rabbitmq-env.conf").write_text("")  # not /etc/rabbitmq's (it names the system node)
        (root / "enabled_plugins").write_text(ENABLED_PLUGINS)
        for k, n in enumerate(self.nodes):
            d = root / self.short(n)
            d.mkdir(exist_ok=True)
            tls_dir = str(self.tls_dirs[k]) if self.tls_dirs is not None else None
            (d / "rabbitmq.conf").write_text(
                node_config(RabbitNode(n.name, n.amqp_port, n.mqtt_port, n.dist_port), tls_dir=tls_dir)
            )
            if tls_dir is not None:
                (d / INTER_NODE_TLS_CONFIG).write_text(inter_node_tls_config(tls_dir))

    # ------------------------------------------------------------------------------ names
    @staticmethod
    def short(n: RabbitNode) -> str:
        return n.name.split("@", 1)[0]

    def node(self, i: int) -> RabbitNode:
        return self.nodes[i]

    @property
    def tls(self) -> bool:
        return self.tls_dirs is not None

    @property
    def ca_file(self) -> Path | None:
        """The CA that signed the nodes' certificates (clients check the listeners against it)."""
        return self.tls_dirs[0] / "ca.crt" if self.tls_dirs is not None else None

    @property
    def amqp_urls(self) -> list[str]:
        return [f"amqp{'s' if self.tls else ''}://127.0.0.1:{n.amqp_port}" for n in self.nodes]

    @property
    def mqtt_urls(self) -> list[str]:
        return [f"mqtt{'s' if self.tls else ''}://127.0.0.1:{n.mqtt_port}" for n in self.nodes]

    def dist_optfile(self, i: int) -> Path:
        return self.root / self.short(self.nodes[i]) / INTER_NODE_TLS_CONFIG

    def log(self, n: RabbitNode) -> str:
        path = self.root / "log" / self.short(n) / f"{n.name}.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else "(no log)"

    def _env(self, n: RabbitNode | None = None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("RABBITMQ_", "ERL_"))}
        env.update(HOME=str(self.root), RABBITMQ_CONF_ENV_FILE=str(self.root / "rabbitmq-env.conf"))
        if self.tls:  # rabbitmqctl: a TLS client of the distribution, with node 1's certificate
            env["RABBITMQ_CTL_ERL_ARGS"] = tls_dist_erl_args(str(self.dist_optfile(0)))
        if n is not None:
            d = self.root / self.short(n)
            env.update(
                RABBITMQ_NODENAME=n.name,
                RABBITMQ_NODE_PORT=str(n.amqp_port),
                RABBITMQ_DIST_PORT=str(n.dist_port),
                RABBITMQ_CONFIG_FILE=str(d / "rabbitmq.conf"),
                RABBITMQ_ADVANCED_CONFIG_FILE=str(d / "advanced.config"),
                RABBITMQ_ENABLED_PLUGINS_FILE=str(self.root / "enabled_plugins"),
                RABBITMQ_MNESIA_BASE=str(self.root / "mnesia"),
                RABBITMQ_LOG_BASE=str(self.root / "log" / self.short(n)),
                # exec the VM itself (no shell in between): the pid we hold is the broker's.
                RUNNING_UNDER_SYSTEMD="true",
                RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="+S 1:1 +sbwt none +sbwtdcpu none +sbwtdio none",
            )
            if self.tls:
                k = self.nodes.index(n)
                env["RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS"] += " " + tls_dist_erl_args(str(self.dist_optfile(k)))
        return env

    # ------------------------------------------------------------------------------ processes
    def start(self, i: int | None = None, timeout: float = 90.0) -> float:
        """Start node i (None: every node not running); returns the seconds until all listen."""
        t0 = time.monotonic()
        todo = [n for k, n in enumerate(self.nodes) if (i is None or k == i) and n.name not in self.procs]
        for n in todo:
            out = open(self.root / f"{self.short(n)}.stdout", "ab")  # noqa: SIM115 - the server's for its life
            self.procs[n.name] = subprocess.Popen(
                [str(SERVER)], env=self._env(n), stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                cwd=self.root,
            )  # fmt: skip
        self._wait_listening(todo, timeout)
        return time.monotonic() - t0

    def _wait_listening(self, nodes: list[RabbitNode], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for n in nodes:
            while not (listening(n.amqp_port) and listening(n.mqtt_port)):
                p = self.procs.get(n.name)
                if p is not None and p.poll() is not None:
                    pytest.fail(f"rabbitmq node {n.name} exited ({p.returncode}): {self.log(n)}", pytrace=False)
                if time.monotonic() > deadline:
                    pytest.fail(f"rabbitmq node {n.name} not listening after {timeout:.0f} s: {self.log(n)}")
                time.sleep(0.1)

    def kill(self, i: int) -> None:
        """SIGKILL: the node vanishes mid-work (no goodbye to its peers or clients)."""
        p = self.procs.pop(self.nodes[i].name)
        p.send_signal(signal.SIGKILL)
        p.wait(10)

    def stop(self, timeout: float = 60.0) -> None:
        """Every node stops cleanly, at once (SIGTERM); stragglers are killed."""
        procs = list(self.procs.items())
        self.procs.clear()
        for _name, p in procs:
            if p.poll() is None:
                p.terminate()
        for _name, p in procs:
            try:
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(10)

    def restart_all(self, timeout: float = 120.0) -> None:
        """The whole cluster down and up again: every node stopped cleanly, one after the other
        (node 1 last), then node 1 started first and the others with it once it listens.

        Why in this order (measured on 3.10.8): started all at once, each node's MQTT plugin waits
        in its client-id tracker (the `mqtt_node` Raft cluster: `join_peers` asks the others'
        trackers, which are themselves still waiting, with a 100 s timeout) and no MQTT listener
        came up within 90 s. The node stopped last starts without waiting for the others' tables."""
        for i in reversed(range(len(self.nodes))):
            p = self.procs.pop(self.nodes[i].name, None)
            if p is not None and p.poll() is None:
                p.terminate()
                try:
                    p.wait(60)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait(10)
        self.start(0, timeout)
        with ThreadPoolExecutor(len(self.nodes)) as pool:
            list(pool.map(lambda k: self.start(k, timeout), range(1, len(self.nodes))))

    # ------------------------------------------------------------------------------ rabbitmqctl
    def ctl(self, i: int, *args: str, timeout: float = 120.0, tool: str = "rabbitmqctl") -> str:
        """`tool` (rabbitmqctl, rabbitmq-queues, rabbitmq-diagnostics, ...) against node i."""
        n = self.nodes[i]
        r = subprocess.run(
            [str(RABBITMQ_BIN / tool), "-n", n.name, *args], env=self._env(), capture_output=True, text=True,
            timeout=timeout, cwd=self.root,
        )  # fmt: skip
        if r.returncode != 0:
            raise AssertionError(f"{tool} {' '.join(args)} on {n.name} failed ({r.returncode}): {r.stderr}{r.stdout}")
        return r.stdout

    def form(self) -> None:
        """Nodes 2.. join node 1 (all running)."""
        for k in range(1, len(self.nodes)):
            self.ctl(k, "stop_app")
            self.ctl(k, "join_cluster", self.nodes[0].name)
            self.ctl(k, "start_app")
        self._wait_listening(self.nodes, 60)

    def import_definitions(self, doc: dict[str, Any]) -> None:
        path = self.root / "definitions.json"
        path.write_text(json.dumps(doc))
        self.ctl(0, "await_startup")  # the listeners are up a moment before the app counts as running
        self.ctl(0, "import_definitions", str(path))

    def running_nodes(self) -> list[str]:
        status = json.loads(self.ctl(0, "cluster_status", "--formatter", "json"))
        return sorted(status.get("running_nodes", []))

    def __enter__(self) -> RabbitCluster:
        return self

    def __exit__(self, *_exc: object) -> None:
        for p in self.procs.values():
            if p.poll() is None:
                p.kill()
        for p in self.procs.values():
            p.wait(10)
        self.procs.clear()


def start_cluster(
    root: Path, size: int = 3, definitions: dict[str, Any] | None = None, *, tls_dirs: Sequence[Path] | None = None
) -> RabbitCluster:
    """Started, joined (size > 1) and with `definitions` imported."""
    cluster = RabbitCluster(root, size, tls_dirs=tls_dirs)
    try:
        with ThreadPoolExecutor(size) as pool:
            list(pool.map(cluster.start, range(size)))
        if size > 1:
            cluster.form()
        if definitions is not None:
            cluster.import_definitions(definitions)
    except BaseException:
        cluster.__exit__()
        raise
    return cluster
