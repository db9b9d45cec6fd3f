"""Stationary confirmation (edge/stationary.py) on real footage, through the real pipeline.

- The Hanoi junction (640x480, 6 fps, 64 s; configs/cameras/hanoi_...yaml): a road marking at the
  left edge, box ~[0, 267, 20, 297], is read as a vehicle at 0.20-0.35 in ~30% of the frames all
  clip long. It becomes a candidate and the closer look (the detector on a 5x crop) finds no
  vehicle there: never promoted, no event. Riders waiting on red at the right kerb (frames
  138-233, the kerb's no-parking zone, 8 s limit) sit on their bikes: waiting, not parked. The
  clip's events are the same with the stage on and off.
- A parked motorbike from the first frame, weakly detected: the Hanoi clip with a real parked
  motorbike cut out of the Hai Phong vendor clip (frame 100, the one at the top right, the
  pavement around it with it) pasted at the right kerb, where the junction's no-stopping box meets
  the kerb's no-parking strip (8 s limit each), at 0.915x (29x51 px),
  where YOLO11n reads it at 0.11-0.37, mostly 0.26-0.35: under the tracker's 0.35, the issue's
  case. Up close (the 5x crop) it reads 0.5. Without the stage it is never a track
  and makes no event; with it, it is confirmed after one window and the stopping rule reports it
  once, its stop counted from the first frame.

    EDGE_DATA_DIR=/work/shared/data PYTHONPATH=. .venv/bin/python -m tests.scenarios.test_stationary_real

prints the events and cost with the stage off and on (docs/benchmarks.md "Stationary confirmation");
`--bench benchmarks/rules_accuracy.py --only real` runs a benchmark with the stage off, then on.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import cv2
import numpy as np
import pytest

from contract.events import ViolationEvent
from edge.config import CameraConfig, DetectorConfig, load_camera_config
from edge.data import data_dir, video_path
from edge.frames import Frame
from edge.geometry import box_iou
from edge.motion import motion_gate_for
from edge.pipeline import CameraAnalyzer
from edge.sources import VideoFileSource
from edge.stationary import STATIONARY_ID_BASE
from tests.scenarios.traffic_labels import video_start

REPO = Path(__file__).resolve().parents[2]
HANOI = "hanoi_lythuongkiet_hangbai_intersection_trafficlight.mp4"
HANOI_CONFIG = REPO / "configs/cameras/hanoi_lythuongkiet_hangbai_intersection_trafficlight.yaml"
DONOR = "vn_haiphong_truccat_junction_sidewalk_vendor_elevated.mp4"
DONOR_FRAME, DONOR_BOX = 100, (1248, 318, 1280, 374)  # the parked motorbike at the top right, with its pavement
# Where the junction's no-stopping box meets the right kerb's no-parking strip (8 s limit each).
PASTE_SCALE, PASTE_AT = 0.915, (492, 245)
ROAD_MARKING = np.array([0, 267, 20, 298], np.float32)


def _have_footage() -> bool:
    try:
        return video_path(HANOI).exists() and video_path(DONOR).exists()
    except Exception:
        return False


pytestmark = pytest.mark.skipif(not _have_footage(), reason="real footage not in EDGE_DATA_DIR")


@functools.cache
def parked_motorbike() -> np.ndarray:
    cap = cv2.VideoCapture(str(video_path(DONOR)))
    try:
        for _ in range(DONOR_FRAME + 1):
            ok, image = cap.read()
            assert ok, DONOR
    finally:
        cap.release()
    x0, y0, x1, y1 = DONOR_BOX
    return cv2.resize(image[y0:y1, x0:x1], None, fx=PASTE_SCALE, fy=PASTE_SCALE, interpolation=cv2.INTER_AREA)


def pasted_box() -> np.ndarray:
    h, w = parked_motorbike().shape[:2]
    x, y = PASTE_AT
    return np.array([x, y, x + w, y + h], np.float32)


def hanoi_frames(*, parked: bool, seconds: float | None = None) -> Iterator[Frame]:
    cam = load_camera_config(HANOI_CONFIG)
    patch = parked_motorbike() if parked else None
    for frame in VideoFileSource(video_path(HANOI), cam.camera.analysis_fps).frames():
        if seconds is not None and frame.pts > seconds:
            return
        if patch is not None:
            x, y = PASTE_AT
            frame.image[y:y + patch.shape[0], x:x + patch.shape[1]] = patch
        yield frame


@dataclass
class Run:
    events: list[ViolationEvent]
    analyzer: CameraAnalyzer
    promoted: list[tuple[float, np.ndarray, str]]  # (t, box, class) of each confirmed object when confirmed
    rejected: list[np.ndarray]  # places the closer look turned down
    ms_per_frame: float
    stationary_ms_per_frame: float


def camera(stationary: bool) -> CameraConfig:
    cam = load_camera_config(HANOI_CONFIG)
    data = cam.model_dump(mode="json", exclude_unset=True)
    data.setdefault("tracker", {})["stationary"] = {"enabled": stationary}
    return CameraConfig.model_validate(data)


def run(detector, frames: Iterator[Frame], *, stationary: bool) -> Run:
    cam = camera(stationary)
    analyzer = CameraAnalyzer("real", cam, detector, deterministic_ids=True, motion=motion_gate_for(cam))
    base = video_start(video_path(HANOI))
    events: list[ViolationEvent] = []
    promoted: dict[int, tuple[float, np.ndarray, str]] = {}
    rejected: list[np.ndarray] = []
    started = time.perf_counter()
    for frame in frames:
        events += [r.event for r in analyzer.process(frame, base + timedelta(seconds=frame.pts))]
        memory = analyzer.stationary
        if memory is not None:
            for place in memory.places:
                if place.track_id is not None and place.track_id not in promoted:
                    promoted[place.track_id] = (frame.pts, place.box.copy(), detector.names[place.class_vote()])
                if place.rejected_at == frame.pts:
                    rejected.append(place.box.copy())
    events += [r.event for r in analyzer.finish()]
    s = analyzer.stats
    return Run(events, analyzer, list(promoted.values()), rejected, 1000 * (time.perf_counter() - started) / s.frames,
               1000 * s.stationary_seconds / s.frames)


@pytest.fixture(scope="module")
def detector():
    from edge.analyze import make_detector

    assert data_dir()
    return make_detector(DetectorConfig())


def key(e: ViolationEvent) -> tuple:
    return (e.type.value, e.phase, round(((e.detected_at or e.started_at) - e.started_at).total_seconds(), 1),
            tuple((o.class_name, o.track_id) for o in e.objects))


@pytest.fixture(scope="module")
def hanoi_runs(detector) -> tuple[Run, Run]:
    return run(detector, hanoi_frames(parked=False), stationary=False), run(detector, hanoi_frames(parked=False), stationary=True)


def test_road_marking_read_as_a_vehicle_is_looked_at_closer_and_never_promoted(hanoi_runs):
    _, on = hanoi_runs
    # It was a candidate (the hit share alone would have promoted it) ...
    assert any(box_iou(b, ROAD_MARKING) >= 0.3 for b in on.rejected), "the road marking never reached a closer look"
    # ... and the closer look turned it down, every time.
    assert not any(box_iou(b, ROAD_MARKING) >= 0.3 for _, b, _ in on.promoted)
    assert on.analyzer.stationary is not None
    assert on.analyzer.stationary.looks <= 40  # bounded: once per candidate (and a retry every 30 s)


def test_hanoi_events_are_the_same_with_the_stage_on(hanoi_runs):
    off, on = hanoi_runs
    assert sorted(map(key, on.events)) == sorted(map(key, off.events))
    assert not [e for e in on.events if any(o.track_id >= STATIONARY_ID_BASE for o in e.objects)]
    # The riders waiting on red at the right kerb are not parked there.
    assert not [e for e in on.events if e.type.value == "illegal_stopping"]


@pytest.fixture(scope="module")
def parked_runs(detector) -> tuple[Run, Run]:
    frames = functools.partial(hanoi_frames, parked=True, seconds=20.0)
    return run(detector, frames(), stationary=False), run(detector, frames(), stationary=True)


def test_weakly_detected_motorbike_parked_from_the_first_frame_is_reported_once(parked_runs):
    off, on = parked_runs
    box = pasted_box()

    def at_kerb(events: list[ViolationEvent]) -> list[ViolationEvent]:
        return [e for e in events if e.type.value == "illegal_stopping" and e.zone is not None
                and box_iou(np.array(e.objects[0].box, np.float32), box) >= 0.5]

    assert at_kerb(off.events) == [], "the tracker alone took the pasted motorbike: no longer a weak detection"
    mine = at_kerb(on.events)
    assert len(mine) == 1
    event = mine[0]
    # YOLO11n reads this cut-out mostly as a car (the class by vote): a vehicle either way.
    assert event.objects[0].track_id >= STATIONARY_ID_BASE and event.objects[0].class_name in ("motorcycle", "car")
    # Its stop counts from its first sighting (the first frames), so the event comes at 8 s,
    # not 8 s after its promotion.
    base = video_start(video_path(HANOI))
    assert (event.started_at - base).total_seconds() <= 1.0
    assert event.detected_at is not None and (event.detected_at - base).total_seconds() <= 10.0
    # Nothing else changed.
    rest_on = sorted(key(e) for e in on.events if e not in mine)
    assert rest_on == sorted(map(key, off.events))


def bench_off_and_on(script: str, args: list[str]) -> None:
    """Run a benchmark script twice in this process: the stage off (the pipeline's
    StationaryMemory replaced by None), then on; the same load for both."""
    import contextlib
    import runpy
    import sys
    from unittest import mock

    for off in (True, False):
        print(f"\n===== stationary {'off' if off else 'on'}: {script} {' '.join(args)}", flush=True)
        sys.argv = [script, *args]
        started = time.perf_counter()
        stage = mock.patch("edge.pipeline.StationaryMemory", lambda *a, **k: None) if off else contextlib.nullcontext()
        with stage, contextlib.suppress(SystemExit):
            runpy.run_path(script, run_name="__main__")
        print(f"===== {time.perf_counter() - started:.0f} s", flush=True)


def main() -> None:
    import sys

    from edge.analyze import make_detector

    if "--bench" in sys.argv:
        at = sys.argv.index("--bench")
        bench_off_and_on(sys.argv[at + 1], sys.argv[at + 2:])
        return
    det = make_detector(DetectorConfig())
    cases = [("hanoi", lambda: hanoi_frames(parked=False)),
             ("hanoi + parked motorbike (20 s)", lambda: hanoi_frames(parked=True, seconds=20.0))]
    for name, frames in cases[1:] if "--parked" in sys.argv else cases:
        for stationary in (False, True):
            r = run(det, frames(), stationary=stationary)
            counts: dict[str, int] = {}
            for e in r.events:
                counts[f"{e.type.value}/{e.phase}"] = counts.get(f"{e.type.value}/{e.phase}", 0) + 1
            memory = r.analyzer.stationary
            looks = f"closer looks {memory.looks} ({1000 * memory.look_seconds / max(1, memory.looks):.0f} ms each)" if memory else ""
            print(f"{name}: stationary {'on' if stationary else 'off'}: events {counts}; "
                  f"{r.ms_per_frame:.0f} ms/frame, stationary stage {r.stationary_ms_per_frame:.2f} ms/frame {looks}; "
                  f"promoted {[(round(t, 1), [int(v) for v in b], c) for t, b, c in r.promoted]}")


if __name__ == "__main__":
    main()
