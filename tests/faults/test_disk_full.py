"""The edge's evidence disk full (its quota exhausted) while central is unreachable: the node keeps
analysing, says so loudly in its status, and deletes no undelivered evidence."""

from __future__ import annotations

import time
import uuid

import pytest

from edge.data import video_path
from edge.local_broker import LocalMosquitto, free_port
from pipelines.rtsp_server import RtspTestServer
from tests.faults.support import REPO, stop_process
from tests.faults.test_camera_faults import Watcher
from tests.faults.test_edge_faults import _start_edge
from tests.services import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]
WALKWAY = REPO / "configs" / "cameras" / "vn_paved_parking_area_motorbike.yaml"


def test_disk_full_is_loud_and_undelivered_evidence_stays(tmp_path):
    prefix = f"f{uuid.uuid4().hex[:8]}"
    state = tmp_path / "state"
    with (
        LocalMosquitto(state_dir=tmp_path / "broker") as broker,
        RtspTestServer({"b": str(video_path("vn_paved_parking_area_motorbike.mp4"))}) as cam,
    ):
        node_cfg = tmp_path / "node.yaml"
        node_cfg.write_text(
            f"node:\n  id: disk-node\n  state_dir: {state}\n"
            f"mqtt:\n  url: {broker.url}\n  topic_prefix: {prefix}\n"
            "status_interval_s: 1\n"
            "clips:\n  pre_seconds: 1\n  post_seconds: 1\n"
            # Central's upload endpoint is down (nothing listens there): clips stay undelivered.
            f"upload:\n  url: http://127.0.0.1:{free_port()}\n  token: {'t' * 24}\n  retry_max_s: 2\n"
            "retention:\n  quota_mb: 0.05\n  check_interval_s: 1\n"
            f"cameras:\n  - config: {WALKWAY}\n    source: {cam.url('b')}\n",
            encoding="utf-8",
        )
        watch = Watcher(broker.port, prefix)
        log = tmp_path / "edge.log"
        edge = _start_edge(node_cfg, log)
        try:
            wait_until(lambda: watch.status.get("disk_full") is True, 120, interval=0.2, what="disk_full in status")
            clips = sorted(state.rglob("*.mp4"))
            assert clips, "the event's clip was written"
            frames = watch.frames("paved-parking-area")
            time.sleep(4)
            assert watch.frames("paved-parking-area") > frames, "analysis stopped when the disk filled"
            assert watch.status["storage"]["undelivered_bytes"] > 0
            assert all(c.exists() for c in clips), "undelivered evidence was deleted"
            assert "EVIDENCE DISK FULL" in log.read_text(encoding="utf-8", errors="replace")
        finally:
            stop_process(edge)
            watch.close()
