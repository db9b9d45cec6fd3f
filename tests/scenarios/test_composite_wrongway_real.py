"""Composite evidence on the real wrong-way clip (a rider coming down the one-way boulevard's kerb
lane): its wrong-way event carries composite + composite_clean, and the act's "before" and "past"
moments lie on the two sides of the line across the lane where the act was established (checked
against the lane's configured direction, not eyeballed)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from edge.analyze import analyze_video
from edge.composite import render_composite
from edge.config import DetectorConfig, load_camera_config
from edge.data import video_path
from edge.pipeline import CameraAnalyzer
from tests.scenarios.traffic_labels import video_start

HERE = Path(__file__).parent
ROOT = HERE.parent.parent
LABELS = yaml.safe_load((HERE / "labels" / "vn_road_motorbikes_wrongway_screencap.yaml").read_text())
CONFIG = ROOT / "configs" / "cameras" / "vn_road_motorbikes_wrongway_screencap.yaml"


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """The clip through the full pipeline (detector at 1280 px, as the config says), with the
    violations the evidence stage was handed."""
    out = tmp_path_factory.mktemp("wrongway-composite")
    video = video_path(LABELS["video"])
    seen = []
    original = CameraAnalyzer._evidence

    def spy(self, v, image, when, tracks):
        seen.append((v, image.shape[1], image.shape[0]))
        return original(self, v, image, when, tracks)

    mp = pytest.MonkeyPatch()
    mp.setattr(CameraAnalyzer, "_evidence", spy)
    try:
        cam = load_camera_config(CONFIG)
        analyze_video(video, cam, out, detector_config=DetectorConfig(long_side=1280), start_time=video_start(video))
    finally:
        mp.undo()
    events = [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]
    return cam, out, events, seen


def _ground(box) -> np.ndarray:
    return np.array([(box[0] + box[2]) / 2, box[3]], np.float64)


def test_wrong_way_event_has_a_composite_before_and_past_the_line(run):
    cam, out, events, seen = run
    wrong = [e for e in events if e["type"] == "wrong_way"]
    assert len(wrong) == 1, wrong  # the one labelled act (test_traffic_real checks where and when)
    e = wrong[0]
    assert {"composite", "composite_clean"} <= {x["kind"] for x in e["evidence"]}
    img = cv2.imread(str(out / "evidence" / e["id"] / "composite.jpg"))
    assert img is not None and img.shape[1] == 1600
    if os.environ.get("COMPOSITE_PNG"):  # to look at it
        cv2.imwrite(os.environ["COMPOSITE_PNG"], img)

    acts = [(v, w, h) for v, w, h in seen if v.type.value == "wrong_way"]
    assert len(acts) == 1
    v, w, h = acts[0]
    m = {x.label: x for x in v.moments}
    assert list(m) == ["before", "at", "past"], list(m)  # the rider is followed before and after
    assert m["at"].t == pytest.approx(v.ended_at) and m["before"].t < m["at"].t < m["past"].t
    assert m["past"].t - m["at"].t <= 1.0 + 1e-6  # the event waited at most a second
    # The lane's allowed direction in frame pixels; the line across the lane through the rider's
    # ground point when the act was established.
    lane = next(ln for ln in cam.scene.lanes if ln.id == cam.rules.wrong_way.lanes[0])
    sx, sy = w / cam.scene.reference_size[0], h / cam.scene.reference_size[1]
    (ax, ay), (bx, by) = lane.direction
    unit = np.array([(bx - ax) * sx, (by - ay) * sy])
    unit /= np.linalg.norm(unit)
    at = _ground(m["at"].box)
    before, past = (float((_ground(m[k].box) - at) @ unit) for k in ("before", "past"))
    print(f"wrong way: before {before:+.0f} px, past {past:+.0f} px along the lane from where the act was established;"
          f" {m['past'].t - m['at'].t:.1f} s to 'past'")
    assert before > 0 > past  # upstream (the lane's way) before, further against it past
    # The composite shows all three, the rider boxed in each.
    made = render_composite(v, cam.camera, video_start(video_path(LABELS["video"])))
    assert made is not None
    _, _, layout = made
    assert set(layout.boxes) == {"before", "at", "past"}
