"""A red ball with a green turn arrow (Vietnamese junctions: "đèn mũi tên xanh"): the arrow's lamp
is read apart, so the head is red for the other movements; a crossing on the red ball while the
arrow is lit is an act only if the vehicle did not take the arrow's movement, judged on its path
after the line. Unmarked (the arrow drawn as a plain green lamp) the head stays in doubt, as before."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from edge.config import CameraConfig, SignalHeadConfig
from edge.geometry import DirectedLine
from edge.pipeline import build_rules, build_zones
from edge.rules import Observation
from edge.rules.signals import SignalBoard, SignalState
from edge.rules.traffic import movement
from tests.unit.test_traffic_rules import tracks

# A head on a 640x480 picture: red ball, amber, green ball, and a green right arrow below.
LAMPS = {"red": (600, 10, 620, 30), "yellow": (600, 32, 620, 52), "green": (600, 54, 620, 74)}
ARROW = (600, 76, 620, 96)
BGR = {"red": (30, 30, 240), "yellow": (0, 170, 250), "green": (120, 240, 60)}


def picture(ball: str | None, arrow: bool) -> np.ndarray:
    img = np.full((480, 640, 3), 40, np.uint8)
    for _c, (x1, y1, x2, y2) in [*LAMPS.items(), ("green", ARROW)]:
        img[y1:y2, x1:x2] = (20, 20, 20)
    if ball is not None:
        x1, y1, x2, y2 = LAMPS[ball]
        img[y1 + 3 : y2 - 3, x1 + 3 : x2 - 3] = BGR[ball]
    if arrow:
        x1, y1, x2, y2 = ARROW
        img[y1 + 3 : y2 - 3, x1 + 3 : x2 - 3] = BGR["green"]
    return img


def lamps(marked: bool) -> list[dict]:
    out = [{"color": c, "box": b} for c, b in LAMPS.items()]
    return [*out, {"color": "green", "box": ARROW, **({"arrow": "right"} if marked else {})}]


def test_a_marked_arrow_reads_apart_and_an_unmarked_one_leaves_the_head_in_doubt():
    for marked, state in ((True, SignalState.RED), (False, SignalState.UNKNOWN)):
        cfg = SignalHeadConfig(id="h", lamps=lamps(marked))
        board = SignalBoard.from_config([cfg], (640, 480), (640, 480))
        for i in range(4):
            board.update(i * 0.2, picture("red", arrow=True))
        reading = board.reading("h")
        assert reading.state is state
        assert reading.arrows == (frozenset({"right"}) if marked else frozenset())
    # The arrow dark: red, no arrows; after ARROW_HOLD_S without it, the arrow is gone.
    board = SignalBoard.from_config([SignalHeadConfig(id="h", lamps=lamps(True))], (640, 480), (640, 480))
    board.update(0.0, picture("red", arrow=True))
    board.update(0.2, picture("red", arrow=True))
    for i in range(2, 20):
        board.update(i * 0.2, picture("red", arrow=False))
    assert board.reading("h").state is SignalState.RED and board.reading("h").arrows == frozenset()


def test_only_a_green_lamp_can_be_an_arrow():
    with pytest.raises(ValidationError, match="only a green lamp"):
        SignalHeadConfig(id="h", lamps=[{"color": "red", "box": (0, 0, 10, 10), "arrow": "left"}])


def test_movement_is_the_drivers_whichever_way_the_camera_faces():
    away = DirectedLine("l", np.array([500.0, 300.0]), np.array([100.0, 300.0]))  # forward = up the picture
    o = np.array([300.0, 300.0])
    assert movement(away, 1, o, o + (0, -100), 30, 1.0) == "straight"
    assert movement(away, 1, o, o + (100, -40), 30, 1.0) == "right"  # driving away: right is the picture's right
    assert movement(away, 1, o, o + (-100, -40), 30, 1.0) == "left"
    assert movement(away, -1, o, o + (-100, 40), 30, 1.0) == "right"  # driving toward the camera: mirrored
    assert movement(away, 1, o, o + (3, -10), 30, 1.0) is None  # too little travel to tell


RULES = {"red_light": {"line": "stop", "signal": "head"}}


def camera(marked: bool) -> CameraConfig:
    return CameraConfig.model_validate(
        {
            "camera": {"id": "cam", "analysis_fps": 5},
            "scene": {
                "reference_size": [640, 480],
                "lines": [{"id": "stop", "points": [[500, 300], [100, 300]]}],  # forward: up the picture
                "signals": [{"id": "head", "lamps": lamps(marked)}],
            },
            "rules": RULES,
        }
    )


def ride(marked: bool, path: list[tuple[float, float]], arrow: bool = True, lost_after: int | None = None) -> list:
    """One rider along `path` (ground points, 5 fps) on a red ball, the arrow lit or not; the rules
    flushed at the end (nothing left held)."""
    cam = camera(marked)
    rules = build_rules(cam, build_zones(cam, (640, 480)), (640, 480))
    image = picture("red", arrow)
    events: list = []
    for k in range(3):  # the head confirmed red before anyone comes
        for rule in rules:
            events += rule.update(Observation(k * 0.2, tracks([]), image))
    for i, (x, y) in enumerate(path):
        seen = [] if lost_after is not None and i > lost_after else [(1, "motorcycle", x, y)]
        for rule in rules:
            events += rule.update(Observation(0.6 + i * 0.2, tracks(seen), image))
    t = 0.6 + len(path) * 0.2
    for rule in rules:
        events += rule.flush(t) if hasattr(rule, "flush") else []
    return events


STRAIGHT = [(300, 380 - 20 * i) for i in range(12)]  # over the line at y 300 and on up
RIGHT = [
    (300, 380),
    (300, 360),
    (300, 340),
    (302, 320),
    (305, 305),
    (312, 292),
    (330, 282),
    (360, 276),
    (400, 272),
    (440, 270),
    (480, 268),
    (520, 266),
]


def test_turning_right_on_the_green_arrow_is_no_act():
    assert ride(True, RIGHT) == []


def test_going_straight_on_the_red_ball_is_an_act_even_with_the_arrow_lit():
    events = ride(True, STRAIGHT)
    assert [v.type.value for v in events] == ["red_light"]
    assert events[0].details["movement"] == "straight" and events[0].details["green_arrows"] == "right"


def test_lost_right_after_the_line_under_a_lit_arrow_is_doubt():
    assert ride(True, STRAIGHT, lost_after=5) == []  # over the line (y 280), then gone
    assert len(ride(True, STRAIGHT, lost_after=5, arrow=False)) == 1  # the same without the arrow: an act


def test_the_arrow_dark_is_the_plain_red_light_rule():
    assert [v.type.value for v in ride(True, RIGHT, arrow=False)] == ["red_light"]
    assert [v.type.value for v in ride(True, STRAIGHT, arrow=False)] == ["red_light"]


def test_an_unmarked_arrow_leaves_the_head_in_doubt_and_accuses_no_one():
    assert ride(False, STRAIGHT) == []
    assert ride(False, RIGHT) == []
