"""Evidence upload from the edge's outbox to central over real HTTP (uvicorn), on SQLite and PostgreSQL:
per-node credentials, sha256/size checks, idempotency, and a link that breaks in the middle of an
upload (a TCP proxy cuts the first connection): the file arrives whole, once."""

from __future__ import annotations

import contextlib
import hashlib
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from sqlalchemy import func, select

from central.config import CentralConfig
from central.db import EvidenceRow, make_engine, make_session_factory
from central.web import create_app
from edge.data import video_path
from edge.local_broker import free_port
from edge.outbox import Outbox, UploadItem
from edge.sources import VideoFileSource
from edge.uploader import EvidenceUploader
from pipelines.clips import ClipFile, ClipRecorder
from tests.services import fake_jpeg, signed_evidence_path, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

NODE, TOKEN = "edge-1", "s3cret-upload-token-edge-1"
VIDEO = "vn_paved_parking_area_motorbike.mp4"  # 1280x720 H.264: a 5 s clip is over a MB


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> ClipFile:
    path = video_path(VIDEO)
    if not path.is_file():
        pytest.skip(f"sample video missing: {path}")
    rec = ClipRecorder(tmp_path_factory.mktemp("clips"), pre_s=2, post_s=2, name="cam")
    src = VideoFileSource(path, analysis_fps=2, on_packet=rec.add)
    ticket = None
    for frame in src.frames():
        if ticket is None and frame.pts >= 4:
            ticket = rec.request(frame.pts)
        if ticket is not None and rec.poll():
            break
    src.stop()
    assert ticket is not None and ticket.clip is not None
    assert ticket.clip.size > 1_000_000  # big enough to be cut in the middle of its upload
    return ticket.clip


@pytest.fixture
def central(central_database_url: str, tmp_path: Path) -> Iterator[dict[str, Any]]:
    cfg = CentralConfig.model_validate(
        {"database_url": central_database_url, "evidence_dir": str(tmp_path / "central-ev"),
         "uploads": {"nodes": {NODE: TOKEN, "edge-2": "another-token-0123456789"}}}
    )
    engine = make_engine(cfg.database_url)
    app = create_app(cfg, engine=engine)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_until(lambda: server.started, what="uvicorn started")
        yield {"port": port, "url": f"http://127.0.0.1:{port}", "config": cfg, "engine": engine}
    finally:
        server.should_exit = True
        thread.join(10)
        engine.dispose()


def rows(engine: Any, sha: str | None = None) -> int:
    with make_session_factory(engine)() as s:
        stmt = select(func.count()).select_from(EvidenceRow)
        if sha:
            stmt = stmt.where(EvidenceRow.sha256 == sha)
        return int(s.scalar(stmt) or 0)


def stored_files(cfg: CentralConfig) -> list[Path]:
    return [p for p in cfg.evidence_dir.rglob("*") if p.is_file()]


def outbox_with(tmp_path: Path, *items: UploadItem) -> Outbox:
    box = Outbox(tmp_path / "edge" / "outbox.sqlite3")
    box.put([], items)
    return box


def item_for(clip: ClipFile) -> UploadItem:
    return UploadItem(clip.sha256, str(clip.path), clip.size, "video/mp4")


def test_upload_stores_and_serves_the_clip_once(central: dict, clip: ClipFile, tmp_path: Path) -> None:
    jpeg = fake_jpeg("snap", 5000)
    jpeg_path = tmp_path / "snap.jpg"
    jpeg_path.write_bytes(jpeg)
    jsha = hashlib.sha256(jpeg).hexdigest()
    box = outbox_with(tmp_path, item_for(clip), UploadItem(jsha, str(jpeg_path), len(jpeg), "image/jpeg"))
    up = EvidenceUploader(box, central["url"], NODE, TOKEN)
    assert up.drain() == 2
    assert box.upload_backlog() == (0, 0) and box.undelivered_paths() == set()
    assert httpx.get(f"{central['url']}/evidence/{clip.sha256}").status_code == 404  # needs the signed URL
    served = httpx.get(central["url"] + signed_evidence_path(central["config"].database_url, clip.sha256))
    assert served.status_code == 200 and served.headers["content-type"] == "video/mp4"
    assert hashlib.sha256(served.content).hexdigest() == clip.sha256 and len(served.content) == clip.size
    # Idempotent: the same file again (another event sharing the clip, or a retry) changes nothing.
    r = httpx.put(
        f"{central['url']}/api/v1/evidence/{clip.sha256}", content=clip.path.read_bytes(),
        headers={"Content-Type": "video/mp4"}, auth=(NODE, TOKEN),
    )
    assert r.status_code == 200 and r.json()["status"] == "duplicate"
    assert rows(central["engine"]) == 2 and len(stored_files(central["config"])) == 2
    up2 = EvidenceUploader(outbox_with(tmp_path / "again", item_for(clip)), central["url"], NODE, TOKEN)
    assert up2.drain() == 1 and up2.already_there == 1  # HEAD said central has it: nothing sent
    up.stop()
    up2.stop()


def test_credentials_are_per_node(central: dict, clip: ClipFile) -> None:
    url = f"{central['url']}/api/v1/evidence/{clip.sha256}"
    body = clip.path.read_bytes()
    for auth in [None, (NODE, "wrong-token-wrong-token"), ("edge-2", TOKEN), ("nobody", TOKEN)]:
        r = httpx.put(url, content=body, headers={"Content-Type": "video/mp4"}, auth=auth)
        assert r.status_code == 401, (auth, r.status_code)
    assert httpx.head(url, auth=(NODE, "nope-nope-nope-nope")).status_code == 401
    assert rows(central["engine"]) == 0 and stored_files(central["config"]) == []


def test_mismatched_bytes_are_refused_and_leave_nothing(central: dict, clip: ClipFile) -> None:
    url = f"{central['url']}/api/v1/evidence/{clip.sha256}"
    body = bytearray(clip.path.read_bytes())
    body[len(body) // 2] ^= 0xFF  # one flipped byte
    r = httpx.put(url, content=bytes(body), headers={"Content-Type": "video/mp4"}, auth=(NODE, TOKEN))
    assert r.status_code == 422 and "sha256 mismatch" in r.text
    r = httpx.put(url, content=clip.path.read_bytes(), auth=(NODE, TOKEN),
                  headers={"Content-Type": "video/mp4", "X-Evidence-Size": str(clip.size + 1)})
    assert r.status_code == 422
    r = httpx.put(url, content=clip.path.read_bytes(), auth=(NODE, TOKEN), headers={"Content-Type": "image/jpeg"})
    assert r.status_code == 422  # the bytes are an MP4
    r = httpx.put(f"{central['url']}/api/v1/evidence/..%2F..%2Fetc", content=b"x", auth=(NODE, TOKEN),
                  headers={"Content-Type": "image/jpeg"})
    assert r.status_code == 404
    assert rows(central["engine"]) == 0 and stored_files(central["config"]) == []
    # The edge keeps a file central refuses and says so: it is never marked delivered.


class CuttingProxy:
    """TCP proxy to `target`; the first connection is cut after `cut_after` client->server bytes."""

    def __init__(self, target: tuple[str, int], cut_after: int) -> None:
        self.target = target
        self.cut_after = cut_after
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self.cut = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            upstream = socket.create_connection(self.target)
            limit = self.cut_after if self.connections == 1 else None
            threading.Thread(target=self._pump, args=(client, upstream, limit), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, None), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, limit: int | None) -> None:
        sent = 0
        try:
            while data := src.recv(65536):
                if limit is not None and sent + len(data) >= limit:
                    dst.sendall(data[: limit - sent])
                    self.cut.set()
                    break  # the link dies mid-upload: both sides just lose the connection
                dst.sendall(data)
                sent += len(data)
        except OSError:
            pass
        for s in (src, dst):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()

    def close(self) -> None:
        self.sock.close()


def test_broken_link_mid_upload_file_arrives_whole_once(central: dict, clip: ClipFile, tmp_path: Path) -> None:
    proxy = CuttingProxy(("127.0.0.1", central["port"]), cut_after=clip.size // 2)
    box = outbox_with(tmp_path, item_for(clip))
    up = EvidenceUploader(box, f"http://127.0.0.1:{proxy.port}", NODE, TOKEN, backoff_initial_s=0.2, backoff_max_s=1)
    up.start()
    try:
        wait_until(lambda: box.upload_backlog() == (0, 0), timeout=60, what="clip delivered through the proxy")
    finally:
        up.stop()
        proxy.close()
    assert proxy.cut.is_set() and proxy.connections >= 2, "the first upload was not cut"
    assert up.failures >= 1 and up.uploaded == 1
    cfg = central["config"]
    assert rows(central["engine"], clip.sha256) == 1
    (stored,) = [p for p in stored_files(cfg) if ".staging" not in p.parts]
    data = stored.read_bytes()
    assert len(data) == clip.size and hashlib.sha256(data).hexdigest() == clip.sha256
    # The torn half of the first attempt was thrown away, not kept next to the whole file.
    wait_until(lambda: not any(".staging" in p.parts for p in stored_files(cfg)), what="staging cleaned")
