"""Traffic rules on scripted tracks (pure: no detector, no video)."""

from __future__ import annotations

import numpy as np

from edge.config import CameraConfig
from edge.detections import TrackedObjects
from edge.pipeline import build_rules, build_zones
from edge.rules import Observation
from edge.rules.signals import SignalState

NAMES = ("person", "bicycle", "car", "motorcycle", "bus", "truck")
CLS = {n: i for i, n in enumerate(NAMES)}


def camera(rules: dict, **scene) -> CameraConfig:
    return CameraConfig.model_validate({
        "camera": {"id": "cam", "analysis_fps": 5},
        "scene": {
            "reference_size": [640, 480],
            "zones": [{"id": "beyond", "kind": "other", "polygon": [[100, 300], [500, 300], [500, 220], [100, 220]]}],
            # Drawn right to left: 'forward' is upwards in the picture.
            "lines": [{"id": "stop", "points": [[500, 300], [100, 300]]},
                      {"id": "entry", "points": [[300, 400], [300, 200]]},
                      {"id": "exit", "points": [[600, 100], [400, 100]]}],
            "signals": [{"id": "head", "source": "controller", "controller_timeout_s": 100}],
            "lanes": [{"id": "up", "polygon": [[100, 480], [500, 480], [500, 0], [100, 0]],
                       "direction": [[300, 400], [300, 100]], "allowed_classes": ["motorcycle", "bicycle"]}],
            **scene,
        },
        "rules": rules,
    })


def tracks(objs: list[tuple[int, str, float, float]], size: float = 40) -> TrackedObjects:
    """(track id, class, ground x, ground y) -> boxes standing on those points."""
    if not objs:
        return TrackedObjects.empty(NAMES)
    xyxy = np.array([[x - size / 2, y - size, x + size / 2, y] for _, _, x, y in objs], np.float32)
    return TrackedObjects(xyxy, np.full(len(objs), 0.8, np.float32), np.array([CLS[c] for _, c, _, _ in objs], np.int32),
                          np.array([t for t, _, _, _ in objs], np.int64), NAMES)


class Runner:
    def __init__(self, cam: CameraConfig) -> None:
        self.rules = build_rules(cam, build_zones(cam, (640, 480)), (640, 480))
        self.events = []

    def signal(self, state: str, t: float) -> None:
        board = next(r.board for r in self.rules if hasattr(r, "board"))
        board.set_external("head", SignalState(state), t)

    def step(self, t: float, objs) -> list:
        out = []
        for rule in self.rules:
            out.extend(rule.update(Observation(t, tracks(objs))))
        self.events.extend(out)
        return out


RED = {"red_light": {"line": "stop", "signal": "head"}}


def drive(run: Runner, tid: int, ys, t0=0.0, x=300.0, cls="motorcycle", dt=0.2):
    for i, y in enumerate(ys):
        run.step(t0 + i * dt, [(tid, cls, x, y)])


def test_red_light_crossing_is_one_event_with_signal_details():
    run = Runner(camera(RED))
    run.signal("red", 0.0)
    drive(run, 1, [360, 340, 320, 305, 290, 270, 250, 230], t0=1.0)
    assert len(run.events) == 1
    v = run.events[0]
    assert v.type.value == "red_light" and v.details["signal_state"] == "red" and v.details["red_seconds"] >= 1.0
    assert v.overlay.lines and v.overlay.lines[0][0] == "stop"


def test_green_yellow_and_unknown_never_accuse():
    for state in ("green", "yellow", None):
        run = Runner(camera(RED))
        if state:
            run.signal(state, 0.0)
        drive(run, 1, [360, 330, 310, 290, 270, 250])
        assert run.events == [], state


def test_jitter_on_the_line_and_backward_crossing_are_not_crossings():
    run = Runner(camera(RED))
    run.signal("red", 0.0)
    drive(run, 1, [340, 320, 302, 299, 301, 298, 302, 300, 301])  # waits on the line
    drive(run, 2, [250, 270, 300, 330, 360], t0=3.0)  # reverses over it (downwards)
    assert run.events == []


def test_track_break_at_the_line_is_still_one_event():
    run = Runner(camera(RED))
    run.signal("red", 0.0)
    drive(run, 1, [380, 360, 340, 320, 305])
    run.step(1.0, [])
    run.step(1.2, [])
    drive(run, 7, [265, 245, 225, 205], t0=1.4)  # new id, beyond the line
    assert len(run.events) == 1
    drive(run, 9, [190, 170], t0=2.2)  # and another switch after the event
    assert len(run.events) == 1


def test_stop_line_encroachment_after_crossing_on_yellow():
    rules = {**RED, "stop_line": {"line": "stop", "signal": "head", "zone": "beyond", "still_seconds": 1.0}}
    run = Runner(camera(rules))
    run.signal("yellow", 0.0)
    drive(run, 1, [340, 320, 300, 280, 270])
    run.signal("red", 1.0)
    for i in range(10):
        run.step(1.0 + i * 0.2, [(1, "motorcycle", 300, 270), (2, "motorcycle", 450, 260)])  # 2: cross traffic
    assert [v.type.value for v in run.events] == ["stop_line"]
    assert run.events[0].offenders[0].track_id == 1


def test_wrong_way_needs_distance_and_time():
    rules = {"wrong_way": {"lanes": ["up"], "min_distance": 0.1, "min_seconds": 1.0}}
    run = Runner(camera(rules))
    drive(run, 1, [100, 130, 160, 190, 220, 250, 280, 310])  # downwards: against the lane
    drive(run, 2, [400, 370, 340, 310, 280, 250, 220], x=200)  # with the lane
    drive(run, 3, [100, 104, 100, 104, 100, 104, 100], x=450)  # jitter, no travel
    assert [(v.type.value, v.offenders[0].track_id) for v in run.events] == [("wrong_way", 1)]


def test_lane_class_and_forbidden_turn():
    rules = {"lane": {"lanes": ["up"], "min_seconds": 0.5},
             "forbidden_turn": {"turns": [{"entry": "entry", "exit": "exit"}], "max_seconds": 5}}
    run = Runner(camera(rules))
    drive(run, 1, [400, 380, 360, 340, 320], cls="car", x=250)  # a car in the motorbike lane
    for i, (x, y) in enumerate([(250, 300), (280, 280), (320, 250), (400, 180), (480, 120), (500, 90), (510, 60)]):
        run.step(5 + i * 0.3, [(5, "motorcycle", x, y)])  # crosses entry, then exit
    run.step(8.0, [])  # acts go out with their 'past' moment: once past, or a second on
    types = sorted(v.type.value for v in run.events)
    assert types == ["forbidden_turn", "lane"]


def test_speeding_needs_calibration_and_reports_kmh():
    rules = {"speeding": {"limit_kmh": 40, "tolerance_kmh": 0, "window_seconds": 1.0, "min_seconds": 0.4}}
    # 1 px = 0.1 m: 100 px / s = 10 m/s = 36 km/h; 150 px/s = 54 km/h.
    calib = {"calibration": {"image_points": [[0, 0], [640, 0], [640, 480], [0, 480]],
                             "ground_points_m": [[0, 0], [64, 0], [64, 48], [0, 48]]}}
    run = Runner(camera(rules, **calib))
    drive(run, 1, [470 - 20 * i for i in range(15)], dt=0.2)  # 100 px/s
    assert run.events == []
    drive(run, 2, [470 - 30 * i for i in range(15)], dt=0.2, t0=10, x=200)  # 150 px/s
    assert len(run.events) == 1 and abs(run.events[0].details["speed_kmh"] - 54) < 2


def test_config_errors_name_the_key(tmp_path):
    import pytest
    import yaml

    from contract.configfile import ConfigError
    from edge.config import load_camera_config

    base = camera(RED).model_dump(mode="json")
    for rules, needle in [
        ({"speeding": {"limit_kmh": 50}}, "calibration"),
        ({"red_light": {"line": "nope", "signal": "head"}}, "red_light.line"),
        ({"stop_line": {"line": "stop", "signal": "head", "zone": "zz"}}, "stop_line.zone"),
        ({"wrong_way": {"lanes": ["x"]}}, "wrong_way.lanes[0]"),
    ]:
        path = tmp_path / "cam.yaml"
        path.write_text(yaml.safe_dump({**base, "rules": rules}))
        with pytest.raises(ConfigError, match=r"cam\.yaml") as err:
            load_camera_config(path)
        assert needle in str(err.value)


def test_long_occlusion_new_id_is_not_a_second_event():
    # Lost for 3 s (beyond stitching) and found again where it would be by now: the same rider.
    rules = {"wrong_way": {"lanes": ["up"], "min_distance": 0.1, "min_seconds": 1.0}}
    run = Runner(camera(rules))
    drive(run, 1, [100 + 5 * i for i in range(13)])  # 25 px/s downwards, against the lane, for 2.4 s
    for k in range(15):
        run.step(2.6 + k * 0.2, [])
    assert len(run.events) == 1  # out once lost (it waits up to 1 s for its 'past' moment)
    drive(run, 8, [240 + 5 * i for i in range(20)], t0=5.6)  # new id, where it would be, 4 s more
    assert [v.offenders[0].track_id for v in run.events] == [1]
    drive(run, 9, [100 + 5 * i for i in range(13)], t0=10, x=450)  # another rider: reported
    run.step(14.0, [])
    assert [v.offenders[0].track_id for v in run.events] == [1, 9]


def test_reported_sets_stay_as_small_as_the_scene_on_a_long_run():
    """Hours of red-light runners: every one reported once, and what the rules remember about
    reported vehicles does not grow with the camera's uptime (state pruned with the vehicles)."""
    rules = {**RED, "wrong_way": {"lanes": ["up"]}, "speeding": {"limit_kmh": 500}}
    calibration = {"image_points": [[100, 480], [500, 480], [500, 0], [100, 0]],
                   "ground_points_m": [[0, 0], [8, 0], [8, 40], [0, 40]]}
    run = Runner(camera(rules, calibration=calibration))
    run.signal("red", 0.0)
    t = 1.0
    for k in range(60):  # a runner every 10 s, the controller saying "red" each time
        run.signal("red", t - 0.5)
        drive(run, 1000 + k, [360, 340, 320, 305, 290, 270, 250, 230], t0=t)
        t += 10.0
        run.step(t - 0.2, [])
    assert len(run.events) == 60 and {e.type for e in run.events} == {"red_light"}
    red = next(r for r in run.rules if type(r).__name__ == "RedLightRule")
    assert len(red.reported_vids) <= 2 and len(red.motion.vehicles) <= 2
