"""The end of a stream loses no act: a crossing judged in the last frames waits for its "past"
moment (the vehicle beyond the line) and, when the stream ends first, goes out without it."""

from __future__ import annotations

from edge.rules.base import flush_rule
from tests.unit.test_traffic_rules import RED, Runner, camera, drive


def _flush(run: Runner, t: float) -> list:
    return [v for rule in run.rules for v in flush_rule(rule, t)]


def test_a_red_light_act_in_the_last_frame_is_released_at_the_end():
    run = Runner(camera(RED))
    run.signal("red", 0.0)
    drive(run, 1, [340, 320, 305, 295], t0=1.0)  # just over the line when the stream ends
    assert run.events == []  # held: not yet past the line
    released = _flush(run, 2.0)
    assert [v.type.value for v in released] == ["red_light"]
    assert released[0].offenders[0].track_id == 1
    assert len(released[0].moments) < 3  # no "past" moment: the stream ended before it
    assert _flush(run, 2.0) == []  # once


def test_an_act_already_out_is_not_released_twice():
    run = Runner(camera(RED))
    run.signal("red", 0.0)
    drive(run, 1, [360, 340, 320, 305, 290, 270, 250, 230], t0=1.0)
    assert len(run.events) == 1
    assert _flush(run, 3.0) == []


def test_held_wrong_way_and_turn_acts_are_released_too():
    rules = {
        "wrong_way": {"lanes": ["up"], "min_distance": 0.1, "min_seconds": 1.0},
        "forbidden_turn": {"turns": [{"entry": "entry", "exit": "exit"}], "max_seconds": 5},
    }
    run = Runner(camera(rules))
    drive(run, 1, [100, 130, 160, 190, 220, 250, 280, 310])  # against the lane
    for i, (x, y) in enumerate([(250, 300), (280, 280), (320, 250), (400, 180), (480, 120), (500, 95)]):
        run.step(5 + i * 0.3, [(5, "motorcycle", x, y)])  # the exit crossed in the last frame
    before = sorted(v.type.value for v in run.events)
    released = sorted(v.type.value for v in _flush(run, 6.6))
    assert sorted(before + released) == ["forbidden_turn", "wrong_way"]
    assert "forbidden_turn" in released
