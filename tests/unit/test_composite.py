"""Composite evidence of crossing acts (edge/composite.py) and the moments the traffic rules keep
for it (edge/rules/traffic.py): scripted vehicles on drawn frames, no detector, no video."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import cv2
import numpy as np
import pytest

from edge.composite import render_composite
from edge.config import CameraConfig
from edge.detections import TrackedObjects
from edge.evidence import annotated_snapshot
from edge.pipeline import build_rules, build_zones
from edge.rules import Observation
from edge.rules.base import EvidenceImage
from edge.rules.signals import SignalState
from edge.rules.traffic import MAX_BEFORE_FRAMES, MAX_PENDING, MOMENT_LONG_SIDE, RedLightRule, StopLineRule

NAMES = ("person", "bicycle", "car", "motorcycle", "bus", "truck")
W, H = 1280, 720  # frames; the scene is drawn on 640x480 (the line at y=300 -> 450 here)
LINE_Y = 450.0
GREEN = (40, 200, 40)  # BGR of the drawn vehicles
T0 = datetime(2026, 12, 2, 7, 30, tzinfo=UTC)  # 14:30 in Hanoi


def camera(rules: dict | None = None) -> CameraConfig:
    return CameraConfig.model_validate({
        "camera": {"id": "cam-hbt-01", "name": "Ngã tư Huế – Trần Khát Chân", "analysis_fps": 5,
                   "location": {"ward": "Phường Bạch Mai", "address": "Ngã tư Huế – Trần Khát Chân, Hà Nội"}},
        "scene": {
            "reference_size": [640, 480],
            "zones": [{"id": "beyond", "kind": "other", "polygon": [[100, 300], [500, 300], [500, 220], [100, 220]]}],
            "lines": [{"id": "stop", "points": [[500, 300], [100, 300]]}],  # forward = upwards
            "signals": [{"id": "head", "source": "controller", "controller_timeout_s": 100}],
        },
        "rules": rules or {"red_light": {"line": "stop", "signal": "head"}},
    })


def frame(boxes: list[np.ndarray]) -> np.ndarray:
    img = np.full((H, W, 3), 110, np.uint8)
    cv2.line(img, (200, int(LINE_Y)), (1000, int(LINE_Y)), (235, 235, 235), 4)
    for b in boxes:
        x1, y1, x2, y2 = (int(v) for v in b)
        cv2.rectangle(img, (x1, y1), (x2, y2), GREEN, -1)
    return img


class Scene:
    def __init__(self, rules: dict | None = None) -> None:
        cam = self.cam = camera(rules)
        self.rules = build_rules(cam, build_zones(cam, (W, H)), (W, H))
        self.red = next(r for r in self.rules if isinstance(r, RedLightRule))
        self.events: list = []

    def signal(self, state: str, t: float) -> None:
        self.red.board.set_external("head", SignalState(state), t)

    def step(self, t: float, objs: list[tuple[int, float, float]], size: float = 120.0) -> None:
        """(track id, ground x, ground y) in frame pixels -> motorbike boxes standing there."""
        xyxy = np.array([[x - size / 3, y - size, x + size / 3, y] for _, x, y in objs], np.float32).reshape(-1, 4)
        tracks = TrackedObjects(xyxy, np.full(len(objs), 0.8, np.float32), np.full(len(objs), 3, np.int32),
                                np.array([tid for tid, _, _ in objs], np.int64), NAMES)
        obs = Observation(t, tracks, frame(list(xyxy)), wall_time=T0 + timedelta(seconds=t))
        for rule in self.rules:
            self.events.extend(rule.update(obs))


def run_over_the_line(scene: Scene, ys, t0: float = 1.0, x: float = 600.0, tid: int = 1, dt: float = 0.2) -> None:
    for i, y in enumerate(ys):
        scene.step(t0 + i * dt, [(tid, x, y)])


UP = [700, 660, 620, 580, 540, 500, 470, 430, 390, 350, 310, 270, 230]  # crosses at 430 (t=2.4)


def test_red_light_keeps_before_at_and_past_moments() -> None:
    scene = Scene()
    scene.signal("red", 0.0)
    run_over_the_line(scene, UP)
    assert len(scene.events) == 1
    v = scene.events[0]
    m = {x.label: x for x in v.moments}
    assert list(m) == ["before", "at", "past"]
    assert v.ended_at == pytest.approx(2.4) and m["at"].t == pytest.approx(2.4)  # the act's time is the crossing
    assert m["before"].box[3] > LINE_Y and m["before"].t <= m["at"].t - 0.4  # clearly before, earlier
    box_h = m["past"].box[3] - m["past"].box[1]
    assert m["past"].box[3] <= LINE_Y - box_h  # a box height past the line
    for x in m.values():
        assert x.signal_state == "red" and x.red_seconds is not None and x.red_seconds >= x.t - 0.01
        assert x.image is not None and max(x.image.shape[:2]) == MOMENT_LONG_SIDE  # a downscaled copy
        assert x.utc == T0 + timedelta(seconds=x.t)  # its own wall clock
    assert m["before"].red_seconds < m["at"].red_seconds < m["past"].red_seconds
    # The event's offender is where the vehicle is when it goes out (the frame its snapshot shows).
    assert v.offenders[0].box == m["past"].box


def test_green_crossings_keep_nothing_and_memory_is_bounded() -> None:
    """Forty bikes wait before the line and then all cross on red at once: the kept frames are
    shared copies (one per grid step, not one per vehicle), the acts beyond MAX_PENDING go out at
    once without their 'past' moment, and nothing is kept once they are gone."""
    scene = Scene()
    scene.signal("red", 0.0)
    xs = [220 + 19 * k for k in range(40)]
    t = 1.0
    for y in [700, 680, 660, 640, 620, 600, 580, 560, 540, 520]:
        scene.step(t, [(k + 1, x, y) for k, x in enumerate(xs)])
        t += 0.2
    kept = [m for dq in scene.red.before.kept.values() for m in dq]
    assert len(kept) >= 40 and len({id(m.image) for m in kept}) <= 3  # 40+ moments, <= 3 frames
    for y in [490, 470, 430]:  # all cross on the same frame
        scene.step(t, [(k + 1, x, y) for k, x in enumerate(xs)])
        t += 0.2
    assert len(scene.red.pending) == MAX_PENDING
    assert len(scene.events) == 40 - MAX_PENDING
    assert all([x.label for x in v.moments] == ["before", "at"] for v in scene.events)
    frames = {id(a.violation.moments[-1].image) for a in scene.red.pending.values()}
    assert len(frames) == 1  # the crossing frame, once for all
    for _ in range(8):
        scene.step(t, [])
        t += 0.2
    assert len(scene.events) == 40 and not scene.red.pending and not scene.red.before.kept


def test_a_queue_waiting_on_the_line_keeps_one_frame_each_within_the_cap() -> None:
    """Thirty bikes arrive one after another and wait with their wheels on the line (the dead
    band): each keeps only the last frame it was clear of the line, and the rule never holds more
    than MAX_BEFORE_FRAMES distinct frames however long the queue."""
    scene = Scene()
    scene.signal("red", 0.0)
    t, waiting = 1.0, []
    for k in range(30):
        for y in (520, 500, 449):  # approaches, then sits on the line
            scene.step(t, [*waiting, (k + 1, 220 + 19 * k, y)])
            t += 0.4
        waiting.append((k + 1, 220 + 19 * k, 449))
    frames = {id(m.image) for dq in scene.red.before.kept.values() for m in dq}
    assert len(frames) <= MAX_BEFORE_FRAMES
    assert all(len(dq) == 1 for vid, dq in scene.red.before.kept.items() if vid != max(scene.red.before.kept))
    assert len(scene.red.before.kept) >= MAX_BEFORE_FRAMES - 1  # the newest arrivals still have theirs
    assert scene.events == []


def test_stop_line_act_has_its_crossing_and_the_wait_past_the_line() -> None:
    rules = {"red_light": {"line": "stop", "signal": "head"},
             "stop_line": {"line": "stop", "signal": "head", "zone": "beyond", "still_seconds": 1.0}}
    scene = Scene(rules)
    scene.signal("yellow", 0.0)
    run_over_the_line(scene, [640, 600, 560, 520, 480, 430, 410])  # over the line on yellow
    scene.signal("red", 2.4)
    for k in range(8):
        scene.step(2.6 + 0.2 * k, [(1, 600.0, 410.0)])  # waits past it on red
    assert [v.type.value for v in scene.events] == ["stop_line"]
    m = {x.label: x for x in scene.events[0].moments}
    assert list(m) == ["before", "at", "past"]
    assert m["before"].box[3] > LINE_Y and m["before"].signal_state == "yellow"
    assert m["at"].signal_state == "yellow" and m["past"].signal_state == "red" and m["past"].box[3] < LINE_Y
    stop = next(r for r in scene.rules if isinstance(r, StopLineRule))
    assert stop.frames is scene.red.frames  # one copy of a frame for both rules


def test_lost_after_the_crossing_goes_out_without_past_and_says_so() -> None:
    scene = Scene()
    scene.signal("red", 0.0)
    run_over_the_line(scene, UP[:8])  # crosses on the last frame, then is never seen again
    assert scene.events == []
    for k in range(6):
        scene.step(2.6 + 0.2 * k, [])
    assert len(scene.events) == 1
    v = scene.events[0]
    assert [m.label for m in v.moments] == ["before", "at"]
    made = render_composite(v, scene.cam.camera, T0)
    assert made is not None
    annotated, _, layout = made
    assert set(layout.boxes) == {"before", "at"}  # no box drawn where there was no frame
    x1, y1, x2, y2 = layout.panels["past"]
    past = annotated[y1:y2, x1:x2].astype(np.float32)
    assert past.std(axis=(0, 1)).max() < 40 and abs(float(past.mean()) - 90) < 25  # a grey panel with a note
    assert float(past.max()) > 200  # ... with white text on it


def _crossing(plate: bool = False):
    scene = Scene()
    scene.signal("red", 0.0)
    run_over_the_line(scene, UP)
    v = scene.events[0]
    if plate:
        crop = np.full((40, 150, 3), 230, np.uint8)
        cv2.putText(crop, "29B1 12345", (4, 28), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (0, 0, 0), 2)
        import dataclasses

        v = dataclasses.replace(v, images=(EvidenceImage("plate", crop),),
                                details={**v.details, "plate_text": "unreadable", "plate_track": 1})
    return scene, v


def test_composite_has_three_panels_with_the_offender_boxed_where_it_is() -> None:
    scene, v = _crossing()
    made = render_composite(v, scene.cam.camera, T0)
    assert made is not None
    annotated, clean, layout = made
    assert annotated.shape[:2] == (layout.height, layout.width) and layout.width == 1600
    assert set(layout.panels) == {"before", "at", "past"} == set(layout.boxes)
    panels = list(layout.panels.values())
    for i, a in enumerate(panels):  # apart, and between the bands
        assert a[1] >= layout.header[3] and a[3] <= layout.footer[1]
        for b in panels[i + 1:]:
            assert a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1]
    ys = []
    for label, (x1, y1, x2, y2) in layout.boxes.items():
        px1, py1, px2, py2 = layout.panels[label]
        assert px1 <= x1 < x2 <= px2 and py1 <= y1 < y2 <= py2
        inner = annotated[y1 + 6:y2 - 6, x1 + 6:x2 - 6].reshape(-1, 3).mean(axis=0)
        assert np.abs(inner - np.array(GREEN)).max() < 30, (label, inner)  # the drawn vehicle is inside
        edge = annotated[y1 + 1, (x1 + x2) // 2].astype(int)
        assert edge[2] > 180 and edge[1] < 90, (label, edge)  # boxed in red
        ys.append((y2 - py1) / (py2 - py1))
    assert ys[0] > ys[1] > ys[2]  # it moves up the picture: before, at, past
    # The clean copy: the three frames, nothing drawn (no red anywhere).
    assert clean.shape == (450, 3 * 800, 3)  # the kept frames (800 px wide copies), side by side, not resampled
    assert np.array_equal(clean[:, 800:1600], {m.label: m for m in v.moments}["at"].image)
    b, g, r = (clean[..., k].astype(int) for k in range(3))
    assert not np.any((r > 180) & (g < 90) & (b < 90))


def _ocr(line: np.ndarray) -> str:
    """One line of text read by rapidocr's PP-OCR recogniser (shipped in its wheel: offline)."""
    rapidocr = pytest.importorskip("rapidocr")
    engine = rapidocr.RapidOCR(params={"Global.log_level": "warning", "EngineConfig.onnxruntime.intra_op_num_threads": 1})
    return " ".join(engine(line, use_det=False, use_cls=False).txts or ())


def test_stamps_read_at_half_size() -> None:
    """Composite and snapshot, scaled to half: the bands keep their share of the picture, stay
    high-contrast, and OCR (rapidocr's PP-OCR, offline) reads the camera id and the local time."""
    scene, v = _crossing(plate=True)
    annotated, _, layout = render_composite(v, scene.cam.camera, T0)  # type: ignore[misc]
    half = cv2.resize(annotated, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)
    hy = layout.header[3] // 2
    band = half[:hy]
    assert hy >= 0.025 * half.shape[0] and layout.font_px / 2 >= 12  # text >= 12 px at half size
    assert np.percentile(band, 50) < 60 and np.percentile(band, 99.5) > 200  # white on near-black
    header = _ocr(band[: round(layout.font_px * 1.6 / 2)])  # its first line: the camera
    assert "cam-hbt-01" in header, header
    footer = _ocr(half[layout.footer[1] // 2:])
    assert "14:30:02" in footer and "02/12/2026" in footer, footer  # the crossing, local time (UTC+7)
    x1, y1, x2, y2 = layout.plate
    assert (x2 - x1) >= 3 * 150  # the plate zoomed

    img = frame([])
    snap = cv2.imdecode(np.frombuffer(annotated_snapshot(img, v, TrackedObjects.empty(NAMES), "cam-hbt-01", T0), np.uint8),
                        cv2.IMREAD_COLOR)
    assert snap.shape[0] > H and snap.shape[1] == W  # the stamp is a band below the picture
    half = cv2.resize(snap, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)
    stamp = _ocr(half[H // 2:])
    assert "cam-hbt-01" in stamp and "14:30:00" in stamp, stamp


def test_small_frames_keep_a_legible_snapshot_stamp() -> None:
    """A 640x360 frame: the stamp text is still at least 11 px (6 at half size) and wraps rather
    than running off the picture."""
    scene, v = _crossing()
    img = np.full((360, 640, 3), 110, np.uint8)
    stamp = "a-long-camera-identifier-01  2026-12-02 14:30:00 (UTC+7)  red_light  zone=beyond-the-stop-line"
    snap = cv2.imdecode(np.frombuffer(annotated_snapshot(img, v, TrackedObjects.empty(NAMES), stamp.split("  ")[0], T0),
                                      np.uint8), cv2.IMREAD_COLOR)
    band = snap[360:]
    rows = np.where((band > 200).any(axis=(1, 2)))[0]
    assert band.shape[0] >= 2 * 11 and rows.size and rows.max() - rows.min() >= 11
    cols = np.where((band > 200).any(axis=(0, 2)))[0]
    assert cols.max() < 640 - 2  # nothing runs off the right edge
