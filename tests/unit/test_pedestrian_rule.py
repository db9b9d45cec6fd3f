"""Pedestrian on the carriageway (the worked example of a rule plug-in), on scripted tracks."""

import numpy as np
import pytest

from edge.config import CameraConfig
from edge.detections import TrackedObjects
from edge.geometry import PolygonZone
from edge.rules import Observation
from edge.rules.pedestrian import PedestrianOnCarriagewayConfig, PedestrianOnCarriagewayRule, riding
from edge.rules.registry import build_rules

NAMES = ("person", "bicycle", "car", "motorcycle")
ROAD = PolygonZone("road", "other", np.array([[0, 200], [640, 200], [640, 400], [0, 400]], np.float32))
ZEBRA = PolygonZone("zebra", "other", np.array([[300, 200], [380, 200], [380, 400], [300, 400]], np.float32))
FPS = 5.0


def frame(objs: list[tuple[int, str, float, float, float]]) -> TrackedObjects:
    """objs: (track id, class, ground x, ground y, box height); boxes stand on the ground point."""
    if not objs:
        return TrackedObjects.empty(NAMES)
    xyxy = np.array([[x - h / 4, y - h, x + h / 4, y] for _, _, x, y, h in objs], np.float32)
    return TrackedObjects(
        xyxy=xyxy,
        confidence=np.full(len(objs), 0.8, np.float32),
        class_id=np.array([NAMES.index(c) for _, c, _, _, _ in objs], np.int32),
        track_id=np.array([t for t, _, _, _, _ in objs], np.int64),
        names=NAMES,
    )


def run(script, seconds: float, **cfg):
    config = PedestrianOnCarriagewayConfig(zones=["road"], crossings=["zebra"], **cfg)
    rule = PedestrianOnCarriagewayRule(config, [ROAD, ZEBRA])
    events = []
    for k in range(int(seconds * FPS)):
        t = k / FPS
        events += [(t, v) for v in rule.update(Observation(t, frame(script(t))))]
    return events


def test_walking_along_the_road_is_one_event_after_min_seconds():
    events = run(lambda t: [(1, "person", 50 + 10 * t, 300.0, 60.0)], 20)
    assert len(events) == 1
    t, v = events[0]
    assert t == pytest.approx(3.0) and v.type == "pedestrian_on_carriageway"
    assert v.offenders[0].track_id == 1 and v.zone.id == "road"
    assert v.details["on_carriageway_seconds"] == pytest.approx(3.0)


def test_crossing_on_the_zebra_and_waiting_on_the_kerb_are_not_offences():
    on_zebra = run(lambda t: [(1, "person", 340.0, 400 - 15 * t, 60.0)], 13)  # walks the crossing
    on_kerb = run(lambda t: [(2, "person", 100.0, 190.0, 60.0)], 20)  # beside the road
    brief = run(lambda t: [(3, "person", 100.0, 210.0 if t < 2 else 150.0, 60.0)], 10)  # one step in
    assert on_zebra == [] and on_kerb == [] and brief == []


def test_a_rider_on_a_motorcycle_is_not_a_pedestrian():
    def script(t):
        x = 50 + 40 * t
        return [(1, "person", x, 290.0, 60.0), (2, "motorcycle", x, 300.0, 40.0)]

    assert run(script, 10) == []
    people = np.array([[40, 230, 70, 290]], np.float32)
    assert riding(people, np.array([[35, 260, 75, 300]], np.float32), 0.3).tolist() == [True]
    assert riding(people, np.array([[200, 260, 240, 300]], np.float32), 0.3).tolist() == [False]


def test_an_id_switch_on_a_standing_person_is_not_a_second_event():
    events = run(lambda t: [(1 if t < 6 else 7, "person", 100.0, 300.0, 60.0)], 20)
    assert len(events) == 1


def test_the_rule_builds_from_a_camera_config_through_the_registry():
    """Nothing but its module names the rule: the camera config's `rules:` key and the scene
    references it uses come from its spec."""
    camera = CameraConfig.model_validate(
        {
            "camera": {"id": "cam"},
            "scene": {
                "reference_size": [640, 480],
                "zones": [
                    {"id": "road", "kind": "other", "polygon": [[0, 200], [640, 200], [640, 400], [0, 400]]},
                    {"id": "zebra", "kind": "other", "polygon": [[300, 200], [380, 200], [380, 400], [300, 400]]},
                ],
            },
            "rules": {"pedestrian_on_carriageway": {"zones": ["road"], "crossings": ["zebra"]}},
        }
    )
    rules = build_rules(camera, [ROAD, ZEBRA], (640, 480))
    assert [type(r).__name__ for r in rules] == ["PedestrianOnCarriagewayRule"]
    with pytest.raises(ValueError, match=r"pedestrian_on_carriageway\.crossings\[0\]: no zone 'zebr' in scene\.zones"):
        CameraConfig.model_validate(
            {**camera.model_dump(), "rules": {"pedestrian_on_carriageway": {"zones": ["road"], "crossings": ["zebr"]}}}
        )
