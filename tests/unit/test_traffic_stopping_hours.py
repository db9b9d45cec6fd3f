"""Illegal stopping: per-zone limits and allowed hours (local time, wrapping midnight)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from pydantic import ValidationError

from edge.config import IllegalStoppingConfig
from edge.geometry import PolygonZone
from edge.rules import Observation
from edge.rules.stopping import IllegalStoppingRule, within_hours
from tests.unit.test_stopping_rule import frame

A = PolygonZone("a", "no_stopping", np.array([[100, 100], [300, 100], [300, 300], [100, 300]], np.float32))
B = PolygonZone("b", "no_parking", np.array([[400, 100], [600, 100], [600, 300], [400, 300]], np.float32))


def run(config: IllegalStoppingConfig, start_utc: datetime, seconds: float, objs):
    rule = IllegalStoppingRule(config, [A, B], clock=lambda t: start_utc + timedelta(seconds=t))
    out = []
    for k in range(int(seconds * 5)):
        t = k / 5
        out += [(t, v) for v in rule.update(Observation(t, frame(objs)))]
    return out


def test_per_zone_limit():
    cfg = IllegalStoppingConfig(zones=["a", "b"], max_stop_seconds=5, zone_rules={"b": {"max_stop_seconds": 20}})
    events = run(cfg, datetime(2026, 1, 1, 3, tzinfo=UTC), 30, [(1, "car", 200, 200), (2, "car", 500, 200)])
    got = {v.zone.id: (t, v.details["max_stop_seconds"]) for t, v in events}
    assert got["a"] == (pytest.approx(5.0), 5) and got["b"] == (pytest.approx(20.0), 20)


def test_allowed_hours_hold_the_clock_until_they_end():
    # Loading allowed 22:00-06:00 local (UTC+7) in zone a; 22:59:50 UTC = 05:59:50 local.
    cfg = IllegalStoppingConfig(zones=["a"], max_stop_seconds=5, zone_rules={"a": {"allowed_hours": ["22:00-06:00"]}})
    events = run(cfg, datetime(2026, 1, 1, 22, 59, 50, tzinfo=UTC), 30, [(1, "car", 200, 200)])
    assert len(events) == 1 and events[0][0] == pytest.approx(15.0, abs=0.25)  # 10 s allowed + the 5 s limit
    # Outside the hours (noon local): the ordinary limit.
    events = run(cfg, datetime(2026, 1, 1, 5, tzinfo=UTC), 30, [(1, "car", 200, 200)])
    assert len(events) == 1 and events[0][0] == pytest.approx(5.0)
    # All afternoon inside the hours: nothing.
    cfg2 = IllegalStoppingConfig(zones=["a"], max_stop_seconds=5, zone_rules={"a": {"allowed_hours": ["12:00-18:00"]}})
    assert run(cfg2, datetime(2026, 1, 1, 7, tzinfo=UTC), 30, [(1, "car", 200, 200)]) == []


def test_within_hours_and_validation():
    assert within_hours(["22:00-06:00"], datetime(2026, 1, 1, 23, 30))
    assert within_hours(["22:00-06:00"], datetime(2026, 1, 1, 5, 59))
    assert not within_hours(["22:00-06:00"], datetime(2026, 1, 1, 6, 0))
    assert within_hours(["07:00-09:00", "17:00-24:00"], datetime(2026, 1, 1, 23, 59))
    with pytest.raises(ValidationError, match="zone_rules.c"):
        IllegalStoppingConfig(zones=["a"], max_stop_seconds=5, zone_rules={"c": {"max_stop_seconds": 3}})
    with pytest.raises(ValidationError):
        IllegalStoppingConfig(zones=["a"], max_stop_seconds=5, zone_rules={"a": {"allowed_hours": ["25:00-26:00"]}})
    with pytest.raises(ValidationError, match="timezone"):
        IllegalStoppingConfig(zones=["a"], max_stop_seconds=5, timezone="Mars/Olympus")
