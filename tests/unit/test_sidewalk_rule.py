"""The sidewalk-encroachment rule on scripted tracks and detections: incident phases, hours, negatives."""

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from edge.config import SidewalkEncroachmentConfig
from edge.detections import Detections, TrackedObjects
from edge.geometry import PolygonZone
from edge.rules import Observation
from edge.rules.sidewalk import SidewalkEncroachmentRule, in_hours

NAMES = ("person", "bicycle", "car", "motorcycle", "chair", "umbrella")
ZONE = PolygonZone("walk", "sidewalk", np.array([[100, 100], [400, 100], [400, 300], [100, 300]], np.float32))
FPS = 2.0
NOON_HANOI = datetime(2026, 5, 4, 5, 0, tzinfo=UTC)


def tracks(objs: list[tuple[int, str, float, float]]) -> TrackedObjects:
    """(track id, class, ground x, ground y); boxes 40x30 standing on the ground point."""
    if not objs:
        return TrackedObjects.empty(NAMES)
    return TrackedObjects(
        xyxy=np.array([[x - 20, y - 30, x + 20, y] for _, _, x, y in objs], np.float32),
        confidence=np.full(len(objs), 0.8, np.float32),
        class_id=np.array([NAMES.index(c) for _, c, _, _ in objs], np.int32),
        track_id=np.array([t for t, _, _, _ in objs], np.int64),
        names=NAMES,
    )


def dets(objs: list[tuple[str, float, float]]) -> Detections:
    if not objs:
        return Detections.empty(NAMES)
    return Detections(
        np.array([[x - 15, y - 20, x + 15, y] for _, x, y in objs], np.float32),
        np.full(len(objs), 0.6, np.float32),
        np.array([NAMES.index(c) for c, _, _ in objs], np.int32),
        NAMES,
    )


def run(script, seconds: float, *, clock_start: datetime = NOON_HANOI, **cfg):
    config = SidewalkEncroachmentConfig(
        zones=["walk"], min_seconds=cfg.pop("min_seconds", 10), end_seconds=cfg.pop("end_seconds", 5),
        update_seconds=cfg.pop("update_seconds", 20), static_change={"enabled": False}, **cfg,
    )
    rule = SidewalkEncroachmentRule(config, [ZONE], clock=lambda t: clock_start + timedelta(seconds=t))
    out = []
    for k in range(int(seconds * FPS)):
        t = k / FPS
        tr, de = script(t)
        out += [(t, v) for v in rule.update(Observation(t, tracks(tr), None, dets(de)))]
    return out


def test_parked_motorbike_is_one_incident_start_update_end():
    # Parks at t=5 in the zone, leaves at t=60.
    def script(t):
        return ([(7, "motorcycle", 200.0, 200.0)] if 5 <= t < 60 else []), []

    events = run(script, 80)
    phases = [(t, v.phase) for t, v in events]
    assert [p for _, p in phases] == ["start", "update", "update", "end"]
    start = events[0][1]
    assert events[0][0] == pytest.approx(15.0)  # after min_seconds at rest
    assert start.started_at == pytest.approx(5.0)
    assert {v.started_at for _, v in events} == {5.0}
    assert {v.incident_key for _, v in events} == {"walk"}
    assert start.details["objects"] == 1 and start.details["vehicles"] == 1
    assert start.details["occupied_share"] == pytest.approx(40 * 30 / (300 * 200), abs=0.01)
    end = events[-1][1]
    assert end.ended_at == pytest.approx(59.5) and events[-1][0] >= 59.5 + 5
    assert start.type.value == "sidewalk_encroachment"


def test_vendor_furniture_counts_and_updates_report_how_many():
    def script(t):
        d = [("chair", 150.0, 250.0)] if t >= 2 else []
        if t >= 20:
            d.append(("umbrella", 300.0, 250.0))
        return [], d

    events = run(script, 60, update_seconds=10)
    assert events[0][1].phase == "start" and events[0][1].details["objects"] == 1
    assert max(v.details["objects"] for _, v in events) == 2
    assert all(v.phase != "end" for _, v in events)  # still there at the end of the script


def test_passing_vehicles_and_people_are_not_encroachment():
    def script(t):
        return [
            (1, "motorcycle", 100 + 15 * t, 200.0),  # rides along the sidewalk
            (2, "person", 200.0, 250.0),  # waits the whole time
            (3, "person", 120 + 10 * t, 150.0),  # walks through
        ], []

    assert run(script, 40) == []


def test_outside_active_hours_nothing_and_incident_ends_when_hours_end():
    def script(t):
        return [(7, "car", 200.0, 200.0)], []

    night = datetime(2026, 5, 4, 16, 0, tzinfo=UTC)  # 23:00 in Hanoi
    assert run(script, 60, clock_start=night, active_hours=["06:00-22:00"]) == []
    # 21:59:30 local: starts at once (at rest since before), ends when 22:00 passes.
    late = datetime(2026, 5, 4, 14, 59, 20, tzinfo=UTC)
    events = run(script, 60, clock_start=late, active_hours=["06:00-22:00"], update_seconds=60)
    assert [v.phase for _, v in events] == ["start", "end"]
    assert events[-1][0] == pytest.approx(40.0)


def test_hours_wrap_midnight():
    # The local hour h in Hanoi (UTC+7), as the wall clock of the observation.
    at = lambda h: Observation(0.0, tracks([]), wall_time=datetime(2026, 5, 4, h, 0, tzinfo=UTC) - timedelta(hours=7))  # noqa: E731
    assert in_hours(["22:00-06:00"], at(23), 0) and in_hours(["22:00-06:00"], at(3), 0)
    assert not in_hours(["22:00-06:00"], at(12), 0)
    no_clock = Observation(0.0, tracks([]))
    assert in_hours(None, at(12), 0) and in_hours(["06:00-22:00"], no_clock, 0)


def test_hours_follow_the_cameras_time_zone():
    """The same UTC instant is 23:00 in Hanoi and 18:00 in Paris: the observation's zone decides."""
    from zoneinfo import ZoneInfo

    utc = datetime(2026, 5, 4, 16, 0, tzinfo=UTC)
    hanoi = Observation(0.0, tracks([]), wall_time=utc, tz=ZoneInfo("Asia/Ho_Chi_Minh"))
    paris = Observation(0.0, tracks([]), wall_time=utc, tz=ZoneInfo("Europe/Paris"))
    assert in_hours(["22:00-06:00"], hanoi, 0) and not in_hours(["22:00-06:00"], paris, 0)
