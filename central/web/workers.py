"""`ioc-central web --workers N`: N console processes on ports web.port .. web.port+N-1 (issue 19, item 4).

Each worker is a whole `ioc-central web --port P` process (its own interpreter, GIL and database
pool); a reverse proxy spreads requests over them (deploy/nginx/, `ioc-central nginx-conf`). No
state lives in a worker that another needs: sessions, CSRF tokens, the login throttle, share-link
keys and revocations, the review's locks and the alert outbox are in the database, links are
signed. This supervisor only starts them, restarts one that dies (backoff 1 s doubling to 30 s;
reset after a minute up) and stops them all on SIGINT/SIGTERM.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from central.logs import kv

log = logging.getLogger("central.web")

MAX_BACKOFF_S = 30.0
HEALTHY_AFTER_S = 60.0


@dataclass
class _Worker:
    port: int
    proc: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    backoff_s: float = 1.0
    restart_at: float = field(default=0.0)


def worker_ports(base_port: int, workers: int) -> list[int]:
    return [base_port + i for i in range(workers)]


def supervise(config_path: Path, log_level: str, ports: list[int], stop: threading.Event) -> int:
    """Run one `web` process per port until `stop`; 0 on a clean stop."""
    workers = [_Worker(p) for p in ports]

    def start(w: _Worker) -> None:
        cmd = [sys.executable, "-m", "central", "--config", str(config_path), "--log-level", log_level, "web",
               "--port", str(w.port)]
        w.proc = subprocess.Popen(cmd)
        w.started = time.monotonic()
        log.info(kv("web_worker_started", port=w.port, pid=w.proc.pid))

    for w in workers:
        start(w)
    print(f"central: {len(workers)} web workers on ports {', '.join(map(str, ports))}", flush=True)
    try:
        while not stop.wait(0.5):
            now = time.monotonic()
            for w in workers:
                if w.proc is not None and w.proc.poll() is not None:
                    code = w.proc.returncode
                    up_s = now - w.started
                    w.backoff_s = 1.0 if up_s > HEALTHY_AFTER_S else min(MAX_BACKOFF_S, w.backoff_s * 2)
                    w.restart_at = now + w.backoff_s
                    log.warning(kv("web_worker_exited", port=w.port, pid=w.proc.pid, code=code, up_s=round(up_s, 1),
                                   restart_in_s=w.backoff_s))
                    w.proc = None
                elif w.proc is None and now >= w.restart_at:
                    start(w)
    finally:
        for w in workers:
            if w.proc is not None and w.proc.poll() is None:
                w.proc.terminate()
        deadline = time.monotonic() + 15
        for w in workers:
            if w.proc is None:
                continue
            try:
                w.proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                w.proc.kill()
                w.proc.wait()
    return 0
