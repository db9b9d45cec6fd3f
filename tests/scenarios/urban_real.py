"""Real footage with labels made by looking at its frames (tests/scenarios/labels/urban_*.yaml)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import yaml

from edge.config import load_camera_config
from edge.data import video_path
from edge.motion import motion_gate_for
from edge.pipeline import CameraAnalyzer
from edge.sources import VideoFileSource
from tests.scenarios.traffic_labels import video_start
from tests.scenarios.urban_synth import Outcome

REPO = Path(__file__).resolve().parents[2]
LABELS = Path(__file__).resolve().parent / "labels"


def labels() -> list[dict]:
    return [yaml.safe_load(p.read_text(encoding="utf-8")) | {"file": p.name} for p in sorted(LABELS.glob("urban_*.yaml"))]


def evaluate(label: dict, detector) -> list[Outcome]:
    """Run the labelled clip through the real pipeline; count events per rule against the label.
    A label lists, per rule, the events expected (`expected`) with the time window they must fall in;
    `overrides` (optional) replaces settings of the camera's rules, e.g. a dwell shorter than the clip."""
    cam = load_camera_config(REPO / label["config"])
    if label.get("overrides"):
        data = cam.model_dump(mode="json", exclude_unset=True)
        for rule, settings in label["overrides"].items():
            data["rules"][rule] = {**data["rules"][rule], **settings}
        cam = type(cam).model_validate(data)
    video = video_path(label["video"])
    analyzer = CameraAnalyzer("real", cam, detector, deterministic_ids=True, motion=motion_gate_for(cam))
    base = video_start(video)
    events = []
    last = 0.0
    for frame in VideoFileSource(video, cam.camera.analysis_fps).frames():
        last = frame.pts
        events += [r.event for r in analyzer.process(frame, base + timedelta(seconds=frame.pts))]
    rows = []
    for rule, spec in label["rules"].items():
        mine = [e for e in events if e.type.value == rule and e.phase in ("point", "start")]
        expected = spec.get("expected", [])
        matched, fp = set(), 0
        for e in mine:
            t = (e.ended_at - base).total_seconds() if e.phase == "point" else (e.started_at - base).total_seconds()
            hit = next((i for i, x in enumerate(expected) if i not in matched and x["from_s"] <= t <= x["to_s"]), None)
            if hit is None:
                fp += 1
            else:
                matched.add(hit)
        seconds = max(last, float(label.get("seconds", last)))
        rows.append(Outcome(f"real:{label['file']}", rule, len(matched), fp, len(expected) - len(matched), seconds,
                            tuple(mine)))
    return rows


def evaluate_all(detector) -> list[Outcome]:
    return [row for label in labels() for row in evaluate(label, detector)]
