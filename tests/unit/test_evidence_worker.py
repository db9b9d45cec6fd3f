"""The evidence worker (edge/runtime/evidence_worker.py) and the worker supervisor
(edge/runtime/supervisor.py): a stuck disk never blocks a camera and never loses an event; a
crashing worker is restarted with backoff and gives up when told to."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import cv2
import numpy as np
import pytest

from contract.events import ViolationEvent, ViolationType
from edge.analyze import make_detector
from edge.config import DetectorConfig, load_camera_config
from edge.data import data_dir
from edge.detections import TrackedObjects
from edge.frames import Frame
from edge.outbox import Outbox, OutboxMessage
from edge.pipeline import EventRecord
from edge.rules import Offender, Violation
from edge.runtime.analyzer import LiveAnalyzer, PendingEvent
from edge.runtime.evidence_worker import EvidenceWorker
from edge.runtime.supervisor import RestartPolicy, Supervisor
from tests.services import wait_until

REPO = Path(__file__).resolve().parents[2]
DATA_IMAGE = data_dir() / "images" / "vn_intersection_day_2039.jpg"


@pytest.fixture(scope="module")
def analyzer() -> LiveAnalyzer:
    if not DATA_IMAGE.is_file():
        pytest.skip("sample image missing (set EDGE_DATA_DIR)")
    camera = load_camera_config(REPO / "configs" / "cameras" / "vn_paved_parking_area_motorbike.yaml")
    return LiveAnalyzer("unit-node", camera, make_detector(DetectorConfig()))


def _pending(analyzer: LiveAnalyzer, image: np.ndarray, i: int) -> PendingEvent:
    v = Violation(
        type=ViolationType("illegal_stopping"), started_at=float(i), ended_at=float(i) + 1, confidence=0.9,
        offenders=(Offender(track_id=i, class_name="car", box=(10.0, 10.0, 200.0, 150.0), confidence=0.9),),
        details={"stopped_seconds": 61},
    )
    frame = Frame(image=image, pts=float(i) + 1, wall_time=time.time(), index=i)
    tracks = TrackedObjects.empty(("car",))
    return analyzer._record(v, frame, datetime.now(UTC), tracks)


def test_a_stuck_disk_never_blocks_the_camera_and_loses_no_event(analyzer: LiveAnalyzer, tmp_path: Path) -> None:
    image = cv2.imread(str(DATA_IMAGE))
    outbox = Outbox(tmp_path / "outbox.sqlite3")
    disk = threading.Event()  # the stand-in for an fsync that hangs: writes wait until it is set
    writing = threading.Event()

    def submit(rec: EventRecord) -> None:
        writing.set()
        disk.wait()
        outbox.put([OutboxMessage(f"t/{rec.event.camera}/events/x", rec.event.to_json().encode())])

    worker = EvidenceWorker(submit, threads=1, max_queued=3, poll_s=0.05)
    worker.start()
    try:
        put_s = []
        for i in range(12):  # the camera decides twelve events while the disk is stuck
            job = _pending(analyzer, image, i)
            t0 = time.perf_counter()
            worker.put("paved-parking-area", [job])
            put_s.append(time.perf_counter() - t0)
            if i == 0:
                wait_until(writing.is_set, 10, what="the first write to start (and hang)")
        assert max(put_s) < 0.05, f"the camera waited {max(put_s):.3f} s for the evidence worker"
        s = worker.stats()
        # The queue holds at most 3 frames: the others' snapshots were given up, the events kept.
        assert s["queued"] == 11 and s["queued_frames"] == 3 and s["snapshots_dropped"] == 8
        assert s["submitted"] == 0
        disk.set()
        wait_until(lambda: outbox.backlog() == 12, 20, what="every event written once the disk is back")
    finally:
        disk.set()
        worker.close(timeout=10)
    events = [ViolationEvent.from_json(m.payload) for m in outbox.pending(limit=100)]
    # In the order decided; the first four (one being written, three queued) with their snapshots.
    assert [e.objects[0].track_id for e in events] == list(range(12))
    with_snapshots = [bool(e.evidence) for e in events]
    assert with_snapshots == [True] * 4 + [False] * 8
    assert {x.kind for x in events[0].evidence} == {"snapshot", "snapshot_clean"}
    s = worker.stats()
    assert s["submitted"] == 12 and s["lost"] == 0 and s["queued"] == 0
    outbox.close()


def test_a_failing_write_is_retried_not_dropped(analyzer: LiveAnalyzer, tmp_path: Path) -> None:
    image = cv2.imread(str(DATA_IMAGE))
    written: list[str] = []
    failures = [OSError("No space left on device")] * 2

    def submit(rec: EventRecord) -> None:
        if failures:
            raise failures.pop()
        written.append(rec.event.id)

    worker = EvidenceWorker(submit, retry_max_s=0.2)
    worker.start()
    try:
        job = _pending(analyzer, image, 1)
        worker.put("cam", [job])
        wait_until(lambda: written, 10, what="the event written after two failed attempts")
    finally:
        worker.close(timeout=5)
    s = worker.stats()
    assert s["retries"] == 2 and s["submitted"] == 1 and s["lost"] == 0


def test_a_crashing_worker_is_restarted_with_backoff_and_reported() -> None:
    stop = threading.Event()
    runs: list[float] = []
    states: list[tuple[str, str | None]] = []

    def run_once() -> None:
        runs.append(time.monotonic())
        if len(runs) <= 3:
            raise RuntimeError(f"crash {len(runs)}")

    sup = Supervisor("w", run_once, stop, policy=RestartPolicy(initial_s=0.05, max_s=0.2),
                     on_state=lambda s, e: states.append((s, e)))
    sup.run()
    assert len(runs) == 4 and sup.restarts == 3 and sup.state == "done"
    assert states == [("restarting", f"RuntimeError: crash {i}") for i in (1, 2, 3)]
    gaps = [b - a for a, b in zip(runs, runs[1:], strict=False)]
    assert gaps[0] >= 0.05 and gaps[1] >= 0.1 and gaps[2] >= 0.2 * 0.95  # doubling, capped


def test_a_worker_that_keeps_crashing_is_failed() -> None:
    def run_once() -> None:
        raise ValueError("camera config broken")

    sup = Supervisor("w", run_once, threading.Event(), policy=RestartPolicy(initial_s=0.01, max_consecutive=2))
    sup.run()
    assert sup.state == "failed" and sup.restarts == 2 and sup.last_error == "ValueError: camera config broken"


def test_stopping_ends_the_backoff_at_once() -> None:
    stop = threading.Event()

    def run_once() -> None:
        raise RuntimeError("down")

    sup = Supervisor("w", run_once, stop, policy=RestartPolicy(initial_s=30))
    t = threading.Thread(target=sup.run)
    t.start()
    wait_until(lambda: sup.state == "restarting", 5, what="the first crash")
    stop.set()
    t.join(2)
    assert not t.is_alive() and sup.restarts == 0
