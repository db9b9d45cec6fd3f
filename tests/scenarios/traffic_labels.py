"""Labels of the real footage (tests/scenarios/labels/*.yaml) and scoring events against them.

An act is {type, frame, x} (matched within the file's `tolerance: {frames, x}`),
{type, frames: [first, last], x_range: [x0, x1]} (the event's end frame in the span, give or take
`tolerance.frames`, and its offender's centre x in the range), or, for one rider through a clip
whose view changes, {type, seen: [[first, last, [x1, y1, x2, y2]], ...]}: the frame spans where
that rider is in view, each with the box of their vehicle and its riders in that span (the event's
end frame in a span, give or take `tolerance.frames`, and its offender's box centre inside that
span's box grown by `tolerance.x`). Each act matches one event at most; an event matching no act
is a false positive. Types with neither acts nor events are left out.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import yaml

from edge.analyze import EPOCH, creation_time
from edge.data import video_path
from tests.scenarios.synth import Score

LABELS_DIR = Path(__file__).parent / "labels"
TRAFFIC_TYPES = ("red_light", "stop_line", "wrong_way", "lane", "forbidden_turn", "speeding", "no_helmet")


def load_labels(name: str) -> dict:
    return yaml.safe_load((LABELS_DIR / f"{name}.yaml").read_text(encoding="utf-8"))


def read_events(out_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (out_dir / "events.jsonl").read_text(encoding="utf-8").splitlines()]


def video_start(video: Path) -> datetime:
    """The time labelled runs put a clip's first frame at, passed to the analysis explicitly: its
    creation_time tag, else the Unix epoch (labels count frames from the first one, so any fixed time
    does; the epoch keeps the measured results and event ids of before)."""
    return creation_time(video) or EPOCH


def video_fps(video: Path) -> float:
    import cv2

    cap = cv2.VideoCapture(str(video))
    try:
        return float(cap.get(cv2.CAP_PROP_FPS))
    finally:
        cap.release()


def score_events(events: list[dict], labels: dict) -> dict[str, Score]:
    video = video_path(labels["video"])
    start, fps = video_start(video), video_fps(video)
    tol = labels.get("tolerance", {"frames": 8, "x": 45})
    acts = list(labels.get("acts", []))
    matched: set[int] = set()
    scores: dict[str, Score] = {}
    for e in events:
        ty = e["type"]
        if ty not in TRAFFIC_TYPES:
            continue
        end = datetime.fromisoformat(e["ended_at"].replace("Z", "+00:00"))
        frame = (end - start).total_seconds() * fps
        box = e["objects"][0]["box"]
        x = (box[0] + box[2]) / 2
        hit = None
        for i, a in enumerate(acts):
            if i in matched or a["type"] != ty:
                continue
            if "frame" in a:
                ok = abs(a["frame"] - frame) <= tol["frames"] and abs(a["x"] - x) <= tol["x"]
            elif "seen" in a:
                y = (box[1] + box[3]) / 2
                ok = any(
                    f0 - tol["frames"] <= frame <= f1 + tol["frames"]
                    and b[0] - tol["x"] <= x <= b[2] + tol["x"] and b[1] - tol["x"] <= y <= b[3] + tol["x"]
                    for f0, f1, b in a["seen"]
                )
            else:
                ok = a["frames"][0] - tol["frames"] <= frame <= a["frames"][1] + tol["frames"]
                ok = ok and a["x_range"][0] <= x <= a["x_range"][1]
            if ok:
                hit = i
                break
        s = scores.setdefault(ty, Score())
        if hit is None:
            s.fp += 1
        else:
            matched.add(hit)
            s.tp += 1
    for i, a in enumerate(acts):
        if i not in matched:
            scores.setdefault(a["type"], Score()).fn += 1
    return scores
