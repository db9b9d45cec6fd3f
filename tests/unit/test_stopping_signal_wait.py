"""Waiting for a signal is not illegal stopping: in a zone a controlled stop line reaches, time at
rest under red or amber (and the queue's discharge after it) does not count; a vehicle parked
there still collects its time between reds, and zones the line does not reach are unchanged.

The Hanoi intersection's own scene is the geometry (its right-kerb no-parking strip runs past the
stop line's right end, where riders wait for the red: the false event the regions pass exposed on
that clip, docs/benchmarks.md "Regions-of-interest pass")."""

from __future__ import annotations

import numpy as np
import pytest

from edge.config import load_camera_config
from edge.detections import TrackedObjects
from edge.pipeline import build_zones
from edge.rules import Observation
from edge.rules.registry import build_rules
from edge.rules.signals import SignalState
from edge.rules.stopping import IllegalStoppingRule
from tests.support import REPO_ROOT

CONFIG = REPO_ROOT / "configs" / "cameras" / "hanoi_lythuongkiet_hangbai_intersection_trafficlight.yaml"
NAMES = ("person", "bicycle", "car", "motorcycle")
FPS = 6.0
KERB = (520.0, 420.0)  # ground point in the right-kerb strip, just before the stop line
BOX = (300.0, 260.0)  # ground point in the intersection box (the stop line does not reach it)


def tracks(objs: list[tuple[int, str, float, float]]) -> TrackedObjects:
    if not objs:
        return TrackedObjects.empty(NAMES)
    return TrackedObjects(
        xyxy=np.array([[x - 12, y - 30, x + 12, y] for _, _, x, y in objs], np.float32),
        confidence=np.full(len(objs), 0.8, np.float32),
        class_id=np.array([NAMES.index(c) for _, c, _, _ in objs], np.int32),
        track_id=np.array([i for i, _, _, _ in objs], np.int64),
        names=NAMES,
    )


def stopping_rule() -> IllegalStoppingRule:
    cam = load_camera_config(CONFIG)
    rules = build_rules(cam, build_zones(cam, (640, 480)), (640, 480))
    rule = next(r for r in rules if isinstance(r, IllegalStoppingRule))
    return rule


def run(rule: IllegalStoppingRule, seconds: float, objs, phase) -> list[tuple[float, object]]:
    """`phase(t)`: the head's state at t, as a signal controller would publish it."""
    events = []
    for k in range(int(seconds * FPS)):
        t = k / FPS
        assert rule.board is not None
        rule.board.set_external("head-right", phase(t), t)
        events += [(t, v) for v in rule.update(Observation(t, tracks(objs(t))))]
    return events


@pytest.fixture()
def controlled(monkeypatch):
    """The Hanoi head read from a controller feed instead of the video (no image in these tests)."""
    cam = load_camera_config(CONFIG)
    head = cam.scene.signals[0]
    monkeypatch.setattr(head, "source", "controller", raising=False)
    return cam


def test_the_kerb_strip_waits_for_the_stop_lines_head_and_the_box_does_not():
    rule = stopping_rule()
    assert rule.waits_for == {"right-kerb": ["head-right"]}
    assert rule.board is not None


def _controller_rule(cam) -> IllegalStoppingRule:
    rules = build_rules(cam, build_zones(cam, (640, 480)), (640, 480))
    return next(r for r in rules if isinstance(r, IllegalStoppingRule))


def test_a_rider_waiting_through_a_long_red_is_not_stopping(controlled):
    rule = _controller_rule(controlled)
    # Red for 30 s (well over the 8 s limit), then green; the rider rides off 4 s after the green.
    phase = lambda t: SignalState.RED if t < 30 else SignalState.GREEN  # noqa: E731
    objs = lambda t: [(7, "motorcycle", *KERB)] if t < 34 else [(7, "motorcycle", 520.0, 250.0)]  # noqa: E731
    assert run(rule, 40, objs, phase) == []


def test_amber_and_unreadable_frames_in_the_red_count_as_waiting(controlled):
    rule = _controller_rule(controlled)

    # Amber, then red read with unknown frames in it (a lamp the camera loses for a moment).
    def phase(t: float) -> SignalState:
        if t < 3:
            return SignalState.YELLOW
        if 12 <= t < 15 or 20 <= t < 22:
            return SignalState.UNKNOWN
        return SignalState.RED if t < 28 else SignalState.GREEN

    objs = lambda t: [(7, "motorcycle", *KERB)] if t < 31 else []  # noqa: E731
    assert run(rule, 36, objs, phase) == []


def test_staying_after_the_queue_has_gone_is_reported_and_the_wait_is_not_counted(controlled):
    rule = _controller_rule(controlled)
    phase = lambda t: SignalState.RED if t < 20 else SignalState.GREEN  # noqa: E731
    events = run(rule, 60, lambda t: [(7, "car", *KERB)], phase)
    assert len(events) == 1
    t, v = events[0]
    # Red until 20 s, 10 s of discharge, then the 8 s limit: reported at ~38 s, not at 8 s.
    assert t == pytest.approx(38.0, abs=0.4)
    assert v.details["stopped_seconds"] == pytest.approx(8.0, abs=0.4)
    assert v.details["waited_for_signal_seconds"] == pytest.approx(30.0, abs=0.4)


def test_a_car_parked_across_signal_cycles_still_collects_its_time(controlled):
    rule = _controller_rule(controlled)
    # A 30 s cycle: 12 s red, 18 s green. Between reds (after the 10 s discharge) 8 s count per cycle.
    phase = lambda t: SignalState.RED if (t % 30) < 12 else SignalState.GREEN  # noqa: E731
    events = run(rule, 90, lambda t: [(7, "car", *KERB)], phase)
    assert len(events) == 1
    assert events[0][1].details["stopped_seconds"] >= 8.0


def test_the_intersection_box_ignores_the_signal(controlled):
    rule = _controller_rule(controlled)
    events = run(rule, 12, lambda t: [(8, "car", *BOX)], lambda t: SignalState.RED)
    assert len(events) == 1 and events[0][1].zone.id == "intersection-box"
    assert "waited_for_signal_seconds" not in events[0][1].details
    assert events[0][0] == pytest.approx(8.0, abs=0.2)


def test_a_zone_can_name_its_heads_or_none(controlled):
    data = controlled.model_dump()
    data["rules"]["illegal_stopping"]["zone_rules"] = {
        "right-kerb": {"waits_for": []},
        "intersection-box": {"waits_for": ["head-right"]},
    }
    cam = type(controlled).model_validate(data)
    rule = _controller_rule(cam)
    assert rule.waits_for == {"intersection-box": ["head-right"]}
    events = run(rule, 12, lambda t: [(7, "car", *KERB), (8, "car", *BOX)], lambda t: SignalState.RED)
    assert [v.zone.id for _, v in events] == ["right-kerb"]


def test_an_unknown_head_in_waits_for_is_refused_naming_the_key(tmp_path):
    from edge.config import ConfigError

    text = CONFIG.read_text(encoding="utf-8").replace(
        "    max_stop_seconds: 8\n",
        "    max_stop_seconds: 8\n    zone_rules:\n      right-kerb: {waits_for: [head-left]}\n",
        1,
    )
    bad = tmp_path / "cam.yaml"
    bad.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as e:
        load_camera_config(bad)
    assert "waits_for" in str(e.value) and "head-left" in str(e.value)
