"""The illegal-stopping rule on scripted tracks: exact ground truth, hard negatives included."""

import numpy as np
import pytest

from edge.config import IllegalStoppingConfig
from edge.detections import TrackedObjects
from edge.geometry import PolygonZone
from edge.rules import Observation
from edge.rules.stopping import IllegalStoppingRule

NAMES = ("person", "bicycle", "car", "motorcycle")
ZONE = PolygonZone("box", "no_stopping", np.array([[100, 100], [300, 100], [300, 300], [100, 300]], np.float32))
FPS = 5.0


def frame(objs: list[tuple[int, str, float, float]]) -> TrackedObjects:
    """objs: (track id, class, ground x, ground y); boxes 40 wide, 30 tall standing on the ground point."""
    if not objs:
        return TrackedObjects.empty(NAMES)
    xyxy = np.array([[x - 20, y - 30, x + 20, y] for _, _, x, y in objs], np.float32)
    return TrackedObjects(
        xyxy=xyxy,
        confidence=np.full(len(objs), 0.8, np.float32),
        class_id=np.array([NAMES.index(c) for _, c, _, _ in objs], np.int32),
        track_id=np.array([t for t, _, _, _ in objs], np.int64),
        names=NAMES,
    )


def run(script, seconds: float, max_stop: float = 5.0):
    rule = IllegalStoppingRule(IllegalStoppingConfig(zones=["box"], max_stop_seconds=max_stop), [ZONE])
    events = []
    for k in range(int(seconds * FPS)):
        t = k / FPS
        events += [(t, v) for v in rule.update(Observation(t, frame(script(t))))]
    return events


def test_parked_car_gives_exactly_one_event_after_the_limit():
    events = run(lambda t: [(1, "car", 200.0, 200.0)], 30)
    assert len(events) == 1
    t, v = events[0]
    assert t == pytest.approx(5.0)
    assert v.type.value == "illegal_stopping"
    assert v.offenders[0].track_id == 1 and v.offenders[0].class_name == "car"
    assert v.zone.id == "box"
    assert v.details["stopped_seconds"] == pytest.approx(5.0)


def test_jitter_within_tolerance_is_still_stopped():
    rng = np.random.default_rng(0)
    events = run(lambda t: [(1, "car", 200 + rng.normal(0, 2), 200 + rng.normal(0, 2))], 10)
    assert len(events) == 1


def test_moving_vehicle_through_zone_is_not_a_violation():
    events = run(lambda t: [(1, "car", 50 + 20 * t, 200.0)], 20)
    assert events == []


def test_stopped_outside_zone_is_not_a_violation():
    events = run(lambda t: [(1, "car", 400.0, 200.0)], 20)
    assert events == []


def test_pedestrian_standing_in_zone_is_not_a_violation():
    events = run(lambda t: [(1, "person", 200.0, 200.0)], 20)
    assert events == []


def test_short_stop_below_limit_is_not_a_violation():
    # Stops 4 s (limit 5 s) then drives on.
    def script(t):
        x = 150.0 if t < 4 else 150.0 + 30 * (t - 4)
        return [(1, "motorcycle", x, 200.0)]

    assert run(script, 15) == []


def test_queue_creeping_forward_gives_one_event_per_visit():
    # Stops 6 s, creeps forward 40 px over 2 s, stops 6 s again: still one visit, one event.
    def script(t):
        if t < 6:
            x = 150.0
        elif t < 8:
            x = 150.0 + 20 * (t - 6)
        else:
            x = 190.0
        return [(1, "car", x, 200.0)]

    assert len(run(script, 16)) == 1


def test_tracker_id_switch_on_a_parked_car_does_not_duplicate():
    # The same parked car is re-identified as track 2 after 10 s (a tracker id switch).
    events = run(lambda t: [(1 if t < 10 else 2, "car", 200.0, 200.0)], 30)
    assert len(events) == 1


def test_two_vehicles_two_events():
    events = run(lambda t: [(1, "car", 150.0, 200.0), (2, "motorcycle", 250.0, 150.0)], 10)
    assert sorted(v.offenders[0].track_id for _, v in events) == [1, 2]


def test_vehicle_leaving_and_returning_is_a_new_visit():
    def script(t):
        if t < 8:
            return [(1, "car", 200.0, 200.0)]
        if t < 14:
            return [(1, "car", 500.0, 200.0)]  # out of the zone
        return [(1, "car", 200.0, 200.0)]

    assert len(run(script, 25)) == 2
