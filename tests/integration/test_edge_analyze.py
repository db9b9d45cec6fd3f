"""`python -m edge analyze` on real footage: deterministic, schema-valid events with intact evidence."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest

from contract.events import ViolationEvent

REPO = Path(__file__).resolve().parents[2]
VIDEO = "vn_paved_parking_area_motorbike.mp4"
CONFIG = REPO / "configs" / "cameras" / "vn_paved_parking_area_motorbike.yaml"
pytestmark = pytest.mark.timeout(120)


def analyze(out: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "edge", "--log-level", "WARNING", "analyze", VIDEO, "--config", str(CONFIG),
         "--out", str(out), *extra],
        cwd=REPO, capture_output=True, text=True, timeout=110,
    )


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory) -> tuple[Path, Path]:
    a, b = tmp_path_factory.mktemp("a"), tmp_path_factory.mktemp("b")
    for out in (a, b):
        r = analyze(out)
        assert r.returncode == 0, r.stderr
    return a, b


def test_car_parked_on_the_walkway_is_one_event(two_runs):
    out, _ = two_runs
    lines = (out / "events.jsonl").read_text(encoding="utf-8").splitlines()
    events = [ViolationEvent.from_json(line) for line in lines]
    # Ground truth from looking at the clip: one car stands on the brick walkway for the whole
    # 12 s; the parked rows are outside the zone and the motorbike keeps moving.
    assert len(events) == 1
    e = events[0]
    assert e.type.value == "illegal_stopping" and e.zone.id == "walkway"
    assert e.objects[0].class_name == "car"
    assert e.details["stopped_seconds"] >= 5
    # The file's creation_time tag is the clock (2026-04-23T05:10:20Z).
    assert e.started_at.isoformat().startswith("2026-04-23T05:10:2")


def test_evidence_files_match_their_hashes(two_runs):
    out, _ = two_runs
    for line in (out / "events.jsonl").read_text(encoding="utf-8").splitlines():
        e = ViolationEvent.from_json(line)
        assert e.evidence
        # Annotated and clean snapshot of the same frame, and the clip cut from the file's own H.264.
        assert {"snapshot", "snapshot_clean", "clip"} <= {ref.kind for ref in e.evidence}
        for ref in e.evidence:
            ext = ".mp4" if ref.media_type == "video/mp4" else ".jpg"
            data = (out / "evidence" / e.id / f"{ref.kind}{ext}").read_bytes()
            assert hashlib.sha256(data).hexdigest() == ref.sha256 and len(data) == ref.size


def test_same_input_same_events(two_runs):
    a, b = two_runs
    assert (a / "events.jsonl").read_bytes() == (b / "events.jsonl").read_bytes()


def test_missing_video_is_a_clear_error(tmp_path):
    r = subprocess.run(
        [sys.executable, "-m", "edge", "analyze", "no_such_video.mp4", "--config", str(CONFIG), "--out", str(tmp_path)],
        cwd=REPO, capture_output=True, text=True, timeout=60,
    )
    assert r.returncode == 2 and "no_such_video.mp4" in r.stderr and "Traceback" not in r.stderr
