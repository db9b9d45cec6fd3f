"""Central scales out (issue 19, item 4): real nginx (its own config, prefix and port, from
central.web.nginx as shipped) in front of `ioc-central web --workers 2` (two real console
processes) on one database, SQLite and PostgreSQL. Every step goes through nginx, and consecutive
requests are answered by different processes (X-Central-Worker names the pid): log in on one and
use the session on the other, read the CSRF token on one and confirm with it on the other (the
police alert it queues reaches a live SSE stream held by the other process), open a
share link, upload evidence (larger than nginx's default body limit) and read it back with a Range
request, and hit the login throttle with failures spread over both processes (a counter per
process would not have refused yet). Then one worker is killed: nginx answers from the other, and
the supervisor starts it again."""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml
from sqlalchemy import select

from central import auth
from central.config import CentralConfig
from central.db import ReportRow, make_engine, make_session_factory, session_scope
from central.web.nginx import standalone
from contract.topics import event_topic
from tests.services import make_event, unique_name, wait_until
from tests.support.central import ingest_processor

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

PASSWORD = "right-password-0123"
NODE_TOKEN = "node-token-0123456789abcdef"
ACCOUNT_FAILURES = 3


def nginx_binary() -> str:
    found = shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if os.access(p, os.X_OK)), None)
    if found is None:
        pytest.fail("nginx is not installed: run scripts/setup.sh as root (apt-get install nginx)", pytrace=False)
    return found


def _two_free_ports() -> int:
    """A port P with P and P+1 free a moment ago (the workers listen on web.port and web.port+1)."""
    for _ in range(50):
        with socket.socket() as a:
            a.bind(("127.0.0.1", 0))
            port = a.getsockname()[1]
            if port >= 65535:
                continue
            with socket.socket() as b:
                try:
                    b.bind(("127.0.0.1", port + 1))
                except OSError:
                    continue
                return int(port)
    raise AssertionError("no two consecutive free ports")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def _process(cmd: list[str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@contextlib.contextmanager
def nginx_in_front(tmp_path: Path, upstream_ports: list[int]) -> Iterator[str]:
    binary = nginx_binary()
    prefix = tmp_path / "nginx"
    prefix.mkdir()
    port = _free_port()
    conf = prefix / "nginx.conf"
    conf.write_text(
        standalone(
            prefix,
            [f"127.0.0.1:{p}" for p in upstream_ports],
            listen=f"127.0.0.1:{port}",
            user="root" if os.geteuid() == 0 else None,
        )
    )
    check = subprocess.run([binary, "-t", "-p", str(prefix), "-e", str(prefix / "error.log"), "-c", str(conf)],
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    with _process([binary, "-p", str(prefix), "-e", str(prefix / "error.log"), "-c", str(conf)],
                  prefix / "stdout.log") as proc:

        def up() -> bool:
            assert proc.poll() is None, (prefix / "error.log").read_text()
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    return True
            except OSError:
                return False

        wait_until(up, timeout=15, what="nginx listening")
        yield f"http://127.0.0.1:{port}"


def _lines(stream: httpx.Response) -> Iterator[str]:
    with contextlib.suppress(httpx.HTTPError):
        yield from stream.iter_lines()


def worker(r: httpx.Response) -> str:
    w = r.headers.get("x-central-worker")
    assert w, (r.status_code, r.headers)
    return w


class Trail:
    """Every response's worker, in order: consecutive ones must differ (round-robin, no stickiness)."""

    def __init__(self) -> None:
        self.workers: list[str] = []

    def __call__(self, r: httpx.Response) -> httpx.Response:
        self.workers.append(worker(r))
        return r


def test_two_console_processes_behind_nginx(central_database_url: str, tmp_path: Path) -> None:
    nginx_binary()  # fail first, and clearly, when nginx is missing
    op, cop = unique_name("op"), unique_name("cop")
    base_port = _two_free_ports()
    settings = {
        "database_url": central_database_url,
        "evidence_dir": str(tmp_path / "ev"),
        "web": {"port": base_port, "trusted_proxies": ["127.0.0.1"], "worker_header": True},
        "auth": {"login_account_failures": ACCOUNT_FAILURES, "login_address_failures": 1000},
        "uploads": {"nodes": {"node-hue-01": NODE_TOKEN}},
        "review": {"undo_seconds": 0},
    }
    config = tmp_path / "central.yaml"
    config.write_text(yaml.safe_dump(settings))
    cfg = CentralConfig.model_validate(settings)
    engine = make_engine(central_database_url)
    sessions = make_session_factory(engine)
    with session_scope(sessions) as s:
        auth.create_user(s, op, PASSWORD, "operator")
        auth.create_user(s, cop, PASSWORD, "police", ["Thành phố Huế"], wards=["Phường Vĩnh Ninh"])
    central = [sys.executable, "-m", "central", "--config", str(config), "--log-level", "WARNING", "web",
               "--workers", "2"]
    try:
        with _process(central, tmp_path / "central.log") as supervisor, \
                nginx_in_front(tmp_path, [base_port, base_port + 1]) as front:

            def both_up() -> bool:
                assert supervisor.poll() is None, (tmp_path / "central.log").read_text()
                seen = set()
                for _ in range(4):
                    try:
                        r = httpx.get(f"{front}/healthz", timeout=2)
                    except httpx.TransportError:
                        return False
                    if r.status_code != 200:
                        return False
                    seen.add(worker(r))
                return len(seen) == 2

            wait_until(both_up, timeout=60, interval=0.3, what="two central workers behind nginx")
            _walk_through(front, op, cop, cfg, sessions)

            # A worker killed: nginx answers from the other at once; the supervisor starts it again.
            victim = worker(httpx.get(f"{front}/healthz", timeout=5))
            os.kill(int(victim.rsplit("/", 1)[1]), signal.SIGKILL)
            for _ in range(4):
                r = httpx.get(f"{front}/healthz", timeout=5)
                assert r.status_code == 200 and worker(r) != victim
            wait_until(both_up, timeout=30, interval=0.3, what="the killed worker restarted")
    finally:
        engine.dispose()


def _walk_through(front: str, op: str, cop: str, cfg: CentralConfig, sessions: object) -> None:
    trail = Trail()
    with httpx.Client(base_url=front, timeout=15) as c:
        # Log in: the login form's CSRF cookie from one process, the POST on the other.
        form = trail(c.get("/login"))
        token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
        assert token
        r = trail(c.post("/login", data={"username": op, "password": PASSWORD, "csrf_token": token[1]}))
        assert r.status_code == 303 and "error=1" not in r.headers["location"], r.text
        me = trail(c.get("/api/me"))
        assert me.status_code == 200 and me.json()["username"] == op
        csrf = me.json()["csrf"]

        # Evidence uploaded by the edge through the proxy (1.5 MB: above nginx's default 1 MB).
        data = b"\xff\xd8\xff\xe0" + os.urandom(1_500_000)
        sha = hashlib.sha256(data).hexdigest()
        up = trail(httpx.put(f"{front}/api/v1/evidence/{sha}", content=data, auth=("node-hue-01", NODE_TOKEN),
                             headers={"Content-Type": "image/jpeg"}, timeout=30))
        assert up.status_code == 201, up.text
        event = make_event(evidence=[{"kind": "snapshot", "media_type": "image/jpeg", "sha256": sha, "size": len(data)}])
        engine = make_engine(cfg.database_url)
        try:
            out = ingest_processor(cfg, engine).process(
                event_topic("ioc", event.node, event.camera, event.type.value), event.to_json().encode()
            )
        finally:
            engine.dispose()
        assert out.kind == "stored" and out.report_id
        rid = out.report_id

        # The police view live: a Server-Sent Events stream through nginx (unbuffered) on one
        # process gets the alert that the confirmation, answered by the other, queues.
        police = httpx.Client(base_url=front, timeout=15)
        ptoken = re.search(r'name="csrf_token" value="([^"]+)"', trail(police.get("/login")).text)
        assert ptoken
        r = trail(police.post("/login", data={"username": cop, "password": PASSWORD, "csrf_token": ptoken[1]}))
        assert r.status_code == 303 and "error=1" not in r.headers["location"], r.text
        stream_cm = police.stream("GET", "/api/alerts/stream", headers={"Accept": "text/event-stream"})
        stream = trail(stream_cm.__enter__())
        assert stream.status_code == 200 and stream.headers["content-type"].startswith("text/event-stream")
        lines: list[str] = []
        reader = threading.Thread(target=lambda: lines.extend(_lines(stream)), daemon=True)
        reader.start()

        # Review: the token read from one process, the confirmation answered by the other.
        page = trail(c.get(f"/api/reports/{rid}"))
        assert page.status_code == 200 and page.json()["status"]["code"] == "new"
        done = trail(c.post(f"/api/reports/{rid}/confirm", headers={auth.CSRF_HEADER: csrf}))
        assert done.status_code == 200, done.text
        assert done.json()["status"] in ("confirmed", "forwarded")
        refused = trail(c.post(f"/api/reports/{rid}/reject", headers={auth.CSRF_HEADER: "wrong"}, json={"reason": "x"}))
        assert refused.status_code == 403
        wait_until(lambda: any(f'"report_id":{rid},' in line for line in list(lines)), timeout=15,
                   what="the alert on the police stream")
        assert lines[0] == "retry: 3000"
        stream_cm.__exit__(None, None, None)
        police.close()

        # Evidence with a Range request, on the session (an operator), through nginx.
        ranged = trail(c.get(f"/evidence/{sha}", headers={"Range": "bytes=1000-1999"}))
        assert ranged.status_code == 206, ranged.status_code
        assert ranged.headers["content-range"] == f"bytes 1000-1999/{len(data)}"
        assert ranged.content == data[1000:2000]
        tail = trail(c.get(f"/evidence/{sha}", headers={"Range": "bytes=-10"}))
        assert tail.status_code == 206 and tail.content == data[-10:]

    # A share link, without any session, on both processes.
    with session_scope(sessions) as s:  # type: ignore[arg-type]
        secret = auth.share_secret(s, None)
        assert s.scalar(select(ReportRow.status).where(ReportRow.id == rid)) in ("confirmed", "forwarded")
    ref = auth.share_ref(secret, rid)
    with httpx.Client(base_url=front, timeout=15) as anon:
        for _ in range(2):
            shared = trail(anon.get(f"/reports/{ref}.json"))
            assert shared.status_code == 200 and shared.json()["id"] == rid
        assert trail(anon.get(f"/reports/{rid}.json")).status_code == 401

    # The throttle: ACCOUNT_FAILURES failures spread over both processes lock the account.
    with httpx.Client(base_url=front, timeout=15) as c:
        token = re.search(r'name="csrf_token" value="([^"]+)"', trail(c.get("/login")).text)
        assert token
        codes = []
        for i in range(ACCOUNT_FAILURES + 1):
            # A forged X-Forwarded-For changes nothing: nginx replaces it with the peer's address.
            r = trail(c.post("/login", data={"username": op, "password": f"wrong-{i}", "csrf_token": token[1]},
                             headers={"X-Forwarded-For": f"203.0.113.{i}"}))
            codes.append(r.status_code)
        assert codes == [303] * ACCOUNT_FAILURES + [429], codes
        r = trail(c.post("/login", data={"username": op, "password": PASSWORD, "csrf_token": token[1]}))
        assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1

    # Two processes answered, in turn: never the same one twice in a row.
    assert len(set(trail.workers)) == 2, trail.workers
    repeats = [i for i in range(1, len(trail.workers)) if trail.workers[i] == trail.workers[i - 1]]
    assert not repeats, trail.workers
