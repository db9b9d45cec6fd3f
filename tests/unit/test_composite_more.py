"""Composite evidence of wrong-way, lane and forbidden-turn acts (edge/rules/traffic.py keeps the
moments, edge/composite.py draws them): scripted vehicles on drawn frames, no detector, no video."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import cv2
import numpy as np
import pytest

from edge.composite import render_composite
from edge.config import CameraConfig
from edge.detections import TrackedObjects
from edge.pipeline import build_rules, build_zones
from edge.rules import Observation
from edge.rules.traffic import GRID_KEPT, MOMENT_LONG_SIDE, PAST_SECONDS, ForbiddenTurnRule, LaneClassRule, WrongWayRule

NAMES = ("person", "bicycle", "car", "motorcycle", "bus", "truck")
W, H = 1280, 720
SIZE = 120.0  # box height of the drawn vehicles
GREEN = (40, 200, 40)  # BGR of the drawn vehicles
T0 = datetime(2026, 12, 2, 7, 30, tzinfo=UTC)
LANE = [[200, 0], [700, 0], [700, 720], [200, 720]]  # x 200-700, the whole height
ENTRY_Y = 500.0  # the turn's entry line (horizontal), crossed going up
EXIT_X = 900.0  # the turn's exit line (vertical, y 100-450), crossed going right


def camera(rules: dict) -> CameraConfig:
    return CameraConfig.model_validate({
        "camera": {"id": "cam-hk-07", "name": "Phố Huế – Hàng Bài", "analysis_fps": 5,
                   "location": {"ward": "Phường Hoàn Kiếm", "address": "Phố Huế, Hà Nội"}},
        "scene": {
            "reference_size": [W, H],
            "lanes": [{"id": "up", "polygon": LANE, "direction": [[450, 650], [450, 100]],
                       "allowed_classes": ["motorcycle", "bicycle"]}],
            "lines": [{"id": "entry", "points": [[150, ENTRY_Y], [750, ENTRY_Y]]},
                      {"id": "exit", "points": [[EXIT_X, 100], [EXIT_X, 450]]}],
        },
        "rules": rules,
    })


def frame(boxes: list[np.ndarray]) -> np.ndarray:
    img = np.full((H, W, 3), 110, np.uint8)
    cv2.line(img, (150, int(ENTRY_Y)), (750, int(ENTRY_Y)), (235, 235, 235), 4)
    for b in boxes:
        x1, y1, x2, y2 = (int(v) for v in b)
        cv2.rectangle(img, (x1, y1), (x2, y2), GREEN, -1)
    return img


class Scene:
    def __init__(self, rules: dict) -> None:
        self.cam = camera(rules)
        self.rules = build_rules(self.cam, build_zones(self.cam, (W, H)), (W, H))
        self.events: list = []
        self.out_at: list[float] = []  # when each event went out

    def step(self, t: float, objs: list[tuple[int, str, float, float]]) -> None:
        """(track id, class, ground x, ground y) -> boxes standing there."""
        xyxy = np.array([[x - SIZE / 3, y - SIZE, x + SIZE / 3, y] for _, _, x, y in objs], np.float32).reshape(-1, 4)
        cls = np.array([NAMES.index(c) for _, c, _, _ in objs], np.int32)
        tracks = TrackedObjects(xyxy, np.full(len(objs), 0.8, np.float32), cls,
                                np.array([tid for tid, _, _, _ in objs], np.int64), NAMES)
        obs = Observation(t, tracks, frame(list(xyxy)), wall_time=T0 + timedelta(seconds=t))
        for rule in self.rules:
            new = rule.update(obs)
            self.events.extend(new)
            self.out_at.extend(t for _ in new)


def moments(v) -> dict:
    return {m.label: m for m in v.moments}


def ground(m) -> tuple[float, float]:
    return (m.box[0] + m.box[2]) / 2, m.box[3]


def check_composite(scene: Scene, v, direction: tuple[float, float]) -> None:
    """Three panels, the drawn vehicle boxed red in each, and it moves along `direction` (frame
    pixels) from panel to panel: before, at, past."""
    made = render_composite(v, scene.cam.camera, T0)
    assert made is not None
    annotated, clean, layout = made
    assert set(layout.panels) == {"before", "at", "past"} == set(layout.boxes)
    pos = []
    for label, (x1, y1, x2, y2) in layout.boxes.items():
        px1, py1, px2, py2 = layout.panels[label]
        assert px1 <= x1 < x2 <= px2 and py1 <= y1 < y2 <= py2
        inner = annotated[y1 + 6:y2 - 6, x1 + 6:x2 - 6].reshape(-1, 3).mean(axis=0)
        assert np.abs(inner - np.array(GREEN)).max() < 30, (label, inner)  # the vehicle is inside its box
        edge = annotated[y1 + 1, (x1 + x2) // 2].astype(int)
        assert edge[2] > 180 and edge[1] < 90, (label, edge)  # boxed in red
        pos.append(((x1 + x2) / 2 - px1, y2 - py1))  # ground point within its panel
    along = [p[0] * direction[0] + p[1] * direction[1] for p in pos]
    assert along[0] < along[1] < along[2], along
    assert clean.shape[1] == 3 * MOMENT_LONG_SIDE  # the three kept frames side by side


def test_wrong_way_before_upstream_at_and_past_further_against_the_lane() -> None:
    scene = Scene({"wrong_way": {"lanes": ["up"], "min_distance": 0.08, "min_seconds": 1.0}})
    rule = next(r for r in scene.rules if isinstance(r, WrongWayRule))
    for i in range(22):  # 1: down the lane (against it), 150 px/s; 2: up it, with the lane
        scene.step(1.0 + 0.2 * i, [(1, "motorcycle", 400.0, 150.0 + 30 * i), (2, "motorcycle", 600.0, 700.0 - 25 * i)])
    assert [(v.type.value, v.offenders[0].track_id) for v in scene.events] == [("wrong_way", 1)]
    v = scene.events[0]
    m = moments(v)
    assert list(m) == ["before", "at", "past"]
    assert v.ended_at == pytest.approx(m["at"].t)  # the act's time is when it was established
    assert m["before"].t <= m["at"].t - 0.4 and m["before"].t >= v.started_at - 1e-6  # earlier, in the ride
    # The line across the lane where the act was established: before upstream of it, past beyond it.
    assert ground(m["before"])[1] < ground(m["at"])[1] < ground(m["past"])[1]
    assert ground(m["past"])[1] - ground(m["at"])[1] >= SIZE  # a box height further against the lane
    assert scene.out_at[0] - m["at"].t <= PAST_SECONDS + 1e-6  # the release waits at most a second
    assert v.offenders[0].box == m["past"].box
    for x in m.values():
        assert x.image is not None and max(x.image.shape[:2]) == MOMENT_LONG_SIDE and x.signal_state is None
        assert x.utc == T0 + timedelta(seconds=x.t)
    assert len(rule.grid.kept) <= GRID_KEPT
    check_composite(scene, v, (0.0, 1.0))


def test_wrong_way_lost_right_after_goes_out_without_past() -> None:
    scene = Scene({"wrong_way": {"lanes": ["up"], "min_distance": 0.08, "min_seconds": 1.0}})
    rule = next(r for r in scene.rules if isinstance(r, WrongWayRule))
    t = 1.0
    while not rule.pending.acts and t < 6:  # rides against the lane until the act is established ...
        scene.step(t, [(1, "motorcycle", 400.0, 150.0 + 150 * (t - 1.0))])
        t += 0.2
    assert rule.pending.acts and scene.events == []  # ... and waits for its 'past' moment
    for _ in range(8):  # ... then is never seen again
        scene.step(t, [])
        t += 0.2
    assert len(scene.events) == 1
    v = scene.events[0]
    assert [m.label for m in v.moments] == ["before", "at"]
    annotated, _, layout = render_composite(v, scene.cam.camera, T0)  # type: ignore[misc]
    assert set(layout.boxes) == {"before", "at"}
    x1, y1, x2, y2 = layout.panels["past"]
    past = annotated[y1:y2, x1:x2].astype(np.float32)
    assert abs(float(past.mean()) - 90) < 25 and float(past.max()) > 200  # a grey panel saying so


def test_lane_act_entering_the_lane_decision_and_after() -> None:
    scene = Scene({"lane": {"lanes": ["up"], "min_seconds": 1.0}})
    rule = next(r for r in scene.rules if isinstance(r, LaneClassRule))
    path = [(900.0 - 60 * i, 600.0) for i in range(8)] + [(480.0, 600.0 - 20 * i) for i in range(1, 15)]
    for i, (x, y) in enumerate(path):  # a car comes in from the right, then drives up the bike lane
        scene.step(1.0 + 0.2 * i, [(3, "car", x, y), (4, "motorcycle", 300.0, 650.0 - 20 * i)])
    assert [(v.type.value, v.offenders[0].track_id) for v in scene.events] == [("lane", 3)]
    v = scene.events[0]
    m = moments(v)
    assert list(m) == ["before", "at", "past"]
    lane = np.array(LANE, np.float32)
    inside = lambda p: cv2.pointPolygonTest(lane, p, False) >= 0  # noqa: E731
    assert not inside(ground(m["before"])) and m["before"].t <= v.started_at  # entering: still outside
    assert inside(ground(m["at"])) and inside(ground(m["past"]))
    assert m["at"].t - v.started_at >= 1.0 - 1e-6 and v.ended_at == pytest.approx(m["at"].t)
    assert m["past"].t - m["at"].t == pytest.approx(PAST_SECONDS)  # the frame it goes out on
    assert scene.out_at[0] - m["at"].t == pytest.approx(PAST_SECONDS)
    assert not rule._entry and not rule.pending.acts
    check_composite(scene, v, (-1.0, -1.0))  # left into the lane, then up it
    # The lane it is judged in is drawn on the moments (magenta), nothing on the clean copy.
    made = render_composite(v, scene.cam.camera, T0)
    assert made is not None
    annotated, clean, layout = made
    x1, y1, x2, y2 = layout.panels["at"]
    panel = annotated[y1:y2, x1:x2].astype(int)
    assert np.count_nonzero((panel[..., 0] > 200) & (panel[..., 2] > 200) & (panel[..., 1] < 80)) > 200
    assert np.count_nonzero((clean[..., 0] > 200) & (clean[..., 2] > 200) & (clean[..., 1] < 80)) == 0


def test_forbidden_turn_at_the_entry_line_across_the_exit_and_after() -> None:
    scene = Scene({"forbidden_turn": {"turns": [{"entry": "entry", "exit": "exit"}], "max_seconds": 10}})
    rule = next(r for r in scene.rules if isinstance(r, ForbiddenTurnRule))
    path = [(450.0, 650.0 - 40 * i) for i in range(9)] + [(450.0 + 60 * i, 330.0) for i in range(1, 16)]
    for i, (x, y) in enumerate(path):  # up over the entry line, then right across the exit line
        scene.step(1.0 + 0.2 * i, [(5, "motorcycle", x, y)])
    assert [(v.type.value, v.offenders[0].track_id) for v in scene.events] == [("forbidden_turn", 5)]
    v = scene.events[0]
    m = moments(v)
    assert list(m) == ["before", "at", "past"]
    assert ground(m["before"])[1] > ENTRY_Y and m["before"].t <= v.started_at  # before the entry line
    assert ground(m["at"])[0] > EXIT_X and v.ended_at == pytest.approx(m["at"].t)  # just across the exit
    assert ground(m["past"])[0] - EXIT_X >= SIZE  # a box height beyond it
    assert scene.out_at[0] - m["at"].t <= PAST_SECONDS + 1e-6
    assert not rule.pending.acts
    check_composite(scene, v, (1.0, -1.0))  # up, then right
    lines = {ln[0] for ln in v.overlay.lines}
    assert lines == {"entry", "exit"}  # both drawn on the moments


def test_a_turn_entered_long_ago_keeps_its_entry_frame_until_max_seconds() -> None:
    """The entry moment stays while the turn may still be made (max_seconds), then goes."""
    scene = Scene({"forbidden_turn": {"turns": [{"entry": "entry", "exit": "exit"}], "max_seconds": 3}})
    rule = next(r for r in scene.rules if isinstance(r, ForbiddenTurnRule))
    t = 1.0
    for i in range(9):
        scene.step(t, [(6, "motorcycle", 450.0, 650.0 - 40 * i)])
        t += 0.2
    assert [lines.get("entry") is not None for lines in rule._entry.values()] == [True]  # over the entry line
    for _ in range(20):  # waits (at a light) past max_seconds
        scene.step(t, [(6, "motorcycle", 450.0, 330.0)])
        t += 0.2
    assert all(not lines for lines in rule._entry.values())
    assert scene.events == []
