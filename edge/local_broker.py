"""A real Mosquitto broker on loopback, run from Python: `edge bench`'s own broker, `make demo`'s when
no broker is running, and the tests' (moved here from central/broker.py: the bench is an edge
feature, and the edge must not import central).

Why not an embedded Python broker: the only one (amqtt) speaks MQTT 3.1.1, without v5 sessions or
shared subscriptions, which central relies on. So this starts the `mosquitto` binary with a config
written into its own state dir and waits until the port accepts connections.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Protocol

log = logging.getLogger(__name__)


class ListenerSecurity(Protocol):
    """What the broker needs of central.broker_security.BrokerSecurity: passwords, ACL, TLS lines."""

    @property
    def tls(self) -> bool: ...

    def mosquitto_lines(self, tls_port: int | None, host: str) -> list[str]: ...


class BrokerError(RuntimeError):
    """The broker could not be started (the message says why, with mosquitto's own output)."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago (the usual small race is acceptable for tests)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def find_mosquitto() -> str:
    found = shutil.which("mosquitto")
    if found:
        return found
    # Debian installs it in /usr/sbin, which is often not on a non-root PATH.
    for candidate in ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto"):
        if os.access(candidate, os.X_OK):
            return candidate
    raise BrokerError(
        "the mosquitto broker binary was not found: install the Debian package `mosquitto` "
        "(sudo apt-get install mosquitto) or put `mosquitto` on PATH"
    )


def port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


class LocalMosquitto:
    """Mosquitto on 127.0.0.1 with persistence in `state_dir`; a context manager.

    `restart()` keeps the port and the persistence file, so persistent MQTT sessions and their
    queued QoS 1 messages survive it (as in production, where the broker is restarted under load).
    """

    host = "127.0.0.1"

    def __init__(
        self,
        port: int | None = None,
        state_dir: Path | str | None = None,
        *,
        binary: str | None = None,
        max_queued_messages: int = 100_000,
        max_inflight_messages: int = 100,
        autosave_interval_s: int = 1,
        start_timeout_s: float = 10.0,
        security: ListenerSecurity | None = None,
        tls_port: int | None = None,
    ) -> None:
        self.port = port or free_port(self.host)
        self._own_dir = state_dir is None
        self.state_dir = Path(state_dir) if state_dir is not None else Path(tempfile.mkdtemp(prefix="mosquitto-"))
        self.binary = binary or find_mosquitto()
        self.max_queued_messages = max_queued_messages
        self.max_inflight_messages = max_inflight_messages
        self.autosave_interval_s = autosave_interval_s
        self.start_timeout_s = start_timeout_s
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_file = self.state_dir / "mosquitto.log"
        self.config_path = self.state_dir / "mosquitto.conf"
        # With `security`: passwords + ACL on every listener, and a TLS listener on tls_port.
        self.security = security
        self.tls_port = (tls_port or free_port(self.host)) if security is not None and security.tls else None

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    @property
    def tls_url(self) -> str | None:
        return f"mqtts://{self.host}:{self.tls_port}" if self.tls_port else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def _write_config(self) -> None:
        persistence = self.state_dir / "persistence"
        persistence.mkdir(parents=True, exist_ok=True)
        lines = [
            f"listener {self.port} {self.host}",
            *(["allow_anonymous true"] if self.security is None else []),
            "persistence true",
            f"persistence_location {persistence}/",
            # Save sessions and queues often, so even kill() loses at most about a second.
            f"autosave_interval {self.autosave_interval_s}",
            # The default (100 per client) silently drops QoS 1 for an offline persistent client.
            f"max_queued_messages {self.max_queued_messages}",
            f"max_inflight_messages {self.max_inflight_messages}",
            "log_dest stderr",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "log_type information",
            "log_timestamp_format %Y-%m-%dT%H:%M:%S",
        ]
        if self.security is not None:
            lines += self.security.mosquitto_lines(self.tls_port, self.host)
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            # Started as root, mosquitto drops to user `mosquitto`, which cannot write this root-owned
            # dir, and then exits silently: stay root (it only listens on loopback).
            lines.append("user root")
        self.config_path.write_text("\n".join(lines) + "\n", encoding="utf-8")

    def _output(self) -> str:
        try:
            return self._log_file.read_text(encoding="utf-8", errors="replace").strip()[-4000:]
        except OSError:
            return ""

    def start(self) -> LocalMosquitto:
        if self.running:
            return self
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self._write_config()
        with open(self._log_file, "ab") as out:
            self._proc = subprocess.Popen(
                [self.binary, "-c", str(self.config_path)],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # a Ctrl-C in the test terminal should not kill it mid-test
            )
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                code = self._proc.returncode
                self._proc = None
                raise BrokerError(
                    f"mosquitto exited with code {code} while starting on {self.host}:{self.port} "
                    f"(config {self.config_path}); its output:\n{self._output() or '(none)'}"
                )
            if port_open(self.host, self.port):
                log.info(
                    "broker started",
                    extra={"fields": {"event": "broker_started", "port": self.port, "pid": self._proc.pid,
                                      "dir": str(self.state_dir)}},
                )
                return self
            time.sleep(0.02)
        self.kill()
        raise BrokerError(
            f"mosquitto did not accept connections on {self.host}:{self.port} within {self.start_timeout_s:.0f} s "
            f"(config {self.config_path}); its output:\n{self._output() or '(none)'}"
        )

    def stop(self, timeout: float = 10.0) -> None:
        """Graceful stop: SIGTERM, so mosquitto writes its persistence file."""
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)

    def kill(self) -> None:
        """Crash: SIGKILL, without a final save (what was autosaved survives)."""
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.kill()
        proc.wait(timeout=5)

    def restart(self, *, kill: bool = False) -> LocalMosquitto:
        """Same port, same persistence; `kill=True` simulates a crash instead of a clean stop."""
        if kill:
            self.kill()
        else:
            self.stop()
        return self.start()

    def close(self) -> None:
        self.stop()
        if self._own_dir:
            shutil.rmtree(self.state_dir, ignore_errors=True)

    def __enter__(self) -> LocalMosquitto:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __del__(self) -> None:
        # Last resort so an interrupted test run does not leave brokers behind.
        with contextlib.suppress(Exception):
            if self._proc is not None and self._proc.poll() is None:
                self._proc.kill()
