"""`python -m edge analyze` on real footage: deterministic, schema-valid events with intact evidence."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from contract.events import ViolationEvent
from edge.analyze import StartTimeError, creation_time, recording_start
from edge.data import video_path

REPO = Path(__file__).resolve().parents[2]
VIDEO = "vn_paved_parking_area_motorbike.mp4"
CONFIG = REPO / "configs" / "cameras" / "vn_paved_parking_area_motorbike.yaml"
pytestmark = pytest.mark.timeout(120)


def analyze(out: Path, *extra: str) -> subprocess.CompletedProcess:
    return analyze_file(VIDEO, out, *extra)


def analyze_file(video: str | Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "edge", "--log-level", "WARNING", "analyze", str(video), "--config", str(CONFIG),
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


TAG = datetime(2026, 4, 23, 5, 10, 20, tzinfo=UTC)  # the sample's creation_time tag


@pytest.fixture
def untagged(tmp_path) -> Path:
    """The sample video remuxed without its container metadata: no creation_time tag (the display
    rotation is stream side data and stays)."""
    copy = tmp_path / "untagged.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(video_path(VIDEO)), "-map_metadata", "-1", "-c", "copy",
                    str(copy)], check=True, timeout=60)
    assert creation_time(copy) is None and creation_time(video_path(VIDEO)) == TAG
    return copy


def test_file_without_creation_time_is_refused_not_placed_in_1970(untagged, tmp_path):
    out = tmp_path / "out"
    r = analyze_file(untagged, out)
    assert r.returncode == 2, r.stderr
    assert "untagged.mp4 has no creation_time tag" in r.stderr
    assert "--start-time" in r.stderr and "file-mtime" in r.stderr and "Traceback" not in r.stderr
    assert not (out / "events.jsonl").exists()
    with pytest.raises(StartTimeError):  # the library refuses too, rather than guessing
        recording_start(untagged)
    assert recording_start(untagged, TAG) == TAG


def test_bad_start_time_is_a_clear_error(untagged, tmp_path):
    for bad in ("yesterday", "2026-04-23T05:10:20"):  # not a time; a time without its zone
        r = analyze_file(untagged, tmp_path / "out", "--start-time", bad)
        assert r.returncode == 2 and "--start-time" in r.stderr and "Traceback" not in r.stderr, r.stderr


def test_file_mtime_start_gives_the_events_of_the_tagged_file(untagged, tmp_path, two_runs):
    """--start-time file-mtime: the file's modification time is the first frame's time. Set to the
    tag's time, the untagged copy gives byte for byte the events of the tagged original."""
    os.utime(untagged, (TAG.timestamp(), TAG.timestamp()))
    r = analyze_file(untagged, tmp_path / "out", "--start-time", "file-mtime")
    assert r.returncode == 0, r.stderr
    tagged, _ = two_runs
    assert (tmp_path / "out" / "events.jsonl").read_bytes() == (tagged / "events.jsonl").read_bytes()
    # and an explicit --start-time moves every event by the difference
    r = analyze_file(untagged, tmp_path / "later", "--start-time", "2026-04-23T13:10:20+07:00")  # = TAG + 1 h
    assert r.returncode == 0, r.stderr
    before = [ViolationEvent.from_json(x) for x in (tagged / "events.jsonl").read_text(encoding="utf-8").splitlines()]
    after = [ViolationEvent.from_json(x) for x in (tmp_path / "later" / "events.jsonl").read_text().splitlines()]
    assert [e.started_at + timedelta(hours=1) for e in before] == [e.started_at for e in after]
