"""Riders carry their vehicle (pure: scripted tracks, no detector).

A person tracked over a two-wheeler and moving with it is bound to it; when the bike's box drops
the rider's track stands in for it (same vehicle id, ground point predicted from the rider's box);
one act makes one event whoever of bike and riders is seen; a person never seen riding is never a
vehicle.
"""

from __future__ import annotations

import numpy as np

from edge.detections import Detections, TrackedObjects
from edge.rules import Observation
from edge.rules.helmet import NoHelmetConfig
from edge.rules.traffic import VehicleMotion, seated
from tests.unit.test_traffic_rules import CLS, NAMES, RED, Runner, camera

BIKE_H = 40.0


def bike(tid: int, x: float, y: float) -> tuple[int, str, tuple[float, float, float, float]]:
    """A motorbike standing on (x, y)."""
    return (tid, "motorcycle", (x - 15, y - BIKE_H, x + 15, y))


def rider(tid: int, x: float, y: float, dx: float = 0.0) -> tuple[int, str, tuple[float, float, float, float]]:
    """A person seated on the motorbike standing on (x, y): lower body over it, head above it."""
    return (tid, "person", (x + dx - 14, y - 62, x + dx + 14, y - 12))


def walker(tid: int, x: float, y: float) -> tuple[int, str, tuple[float, float, float, float]]:
    """A pedestrian standing on (x, y)."""
    return (tid, "person", (x - 10, y - 55, x + 10, y))


def boxes(objs) -> TrackedObjects:
    if not objs:
        return TrackedObjects.empty(NAMES)
    return TrackedObjects(np.array([b for _, _, b in objs], np.float32), np.full(len(objs), 0.8, np.float32),
                          np.array([CLS[c] for _, c, _ in objs], np.int32), np.array([t for t, _, _ in objs], np.int64),
                          NAMES)


class BoxRunner(Runner):
    def step(self, t: float, objs, dets=None) -> list:
        out = []
        obs = Observation(t, boxes(objs), detections=dets)
        for rule in self.rules:
            out.extend(rule.update(obs))
        self.events.extend(out)
        return out


def red_runner() -> BoxRunner:
    run = BoxRunner(camera(RED))
    run.signal("red", 0.0)
    return run


YS = [420 - 20 * k for k in range(12)]  # upwards at 100 px/s: over the stop line (y 300) at k = 6


def test_seated_is_the_lower_body_over_the_bike():
    b = np.array(bike(1, 300, 400)[2], np.float32)
    assert seated(np.array(rider(2, 300, 400)[2], np.float32), b)
    assert not seated(np.array(walker(3, 300, 415)[2], np.float32), b)  # standing in front of it (nearer)
    # Standing right at it looks the same as riding it on one frame: moving together decides (below).
    assert seated(np.array(walker(3, 300, 400)[2], np.float32), b)
    assert not seated(np.array(walker(3, 340, 400)[2], np.float32), b)  # beside it
    assert not seated(np.array(rider(2, 300, 400, dx=40)[2], np.float32), b)


def test_bike_box_drops_at_the_line_rider_carries_it_over_one_event():
    run = red_runner()
    for k, y in enumerate(YS):
        objs = [rider(2, 300, y)] + ([bike(1, 300, y)] if k < 5 else [])  # the bike's box lost 10 px before the line
        run.step(k * 0.2, objs)
    assert [e.type for e in run.events] == ["red_light"]
    e = run.events[0]
    assert e.offenders[0].track_id == 1 and e.offenders[0].class_name == "motorcycle"  # the bike, not the person
    # The ground point predicted from the rider: the bike's box, 12 px below the rider's feet.
    assert abs(e.offenders[0].box[3] - (e.offenders[0].box[1] + BIKE_H)) < 1.0


def test_predicted_ground_point_follows_the_learned_offset():
    motion = VehicleMotion()
    for k, y in enumerate(YS[:4]):
        motion.update(Observation(k * 0.2, boxes([bike(1, 300, y), rider(2, 300, y)])))
    (veh,) = motion.update(Observation(0.8, boxes([rider(2, 305, 330)])))
    assert veh.vid == 1 and veh.rider == 2 and veh.class_name == "motorcycle"
    assert np.allclose(veh.point, [305, 330], atol=0.5)
    (veh,) = motion.update(Observation(1.0, boxes([bike(7, 305, 310), rider(2, 305, 310)])))  # the bike's box back
    assert veh.vid == 1 and veh.rider is None and veh.track_id == 7


def test_bike_and_rider_both_seen_are_one_vehicle_one_event():
    run = red_runner()
    for k, y in enumerate(YS):
        run.step(k * 0.2, [bike(1, 300, y), rider(2, 300, y), rider(3, 300, y, dx=4)])  # rider and pillion
    assert [e.type for e in run.events] == ["red_light"]
    assert run.events[0].offenders[0].track_id == 1


def test_two_riders_of_a_dropped_bike_stand_in_once():
    run = red_runner()
    for k, y in enumerate(YS):
        objs = [rider(2, 300, y), rider(3, 300, y, dx=5)] + ([bike(1, 300, y)] if k < 4 else [])
        run.step(k * 0.2, objs)
    assert len(run.events) == 1 and run.events[0].offenders[0].track_id == 1


def test_bike_seen_only_as_detections_binds_its_pair_once():
    """Distant riders: the bike is detected but never tracked. Its two riders make one vehicle
    (where the camera opts in: wrong_way.riders)."""
    run = BoxRunner(camera({**RED, "wrong_way": {"lanes": ["up"], "riders": True}}))
    run.signal("red", 0.0)
    for k, y in enumerate(YS):
        b = bike(0, 300, y)[2]
        dets = Detections(np.array([b], np.float32), np.array([0.3], np.float32), np.array([CLS["motorcycle"]]), NAMES)
        run.step(k * 0.2, [rider(2, 300, y), rider(3, 300, y, dx=5)], dets)
    assert len(run.events) == 1 and run.events[0].offenders[0].class_name == "motorcycle"


def test_pedestrian_crossing_on_foot_is_never_a_vehicle():
    run = red_runner()
    for k, y in enumerate(YS):
        run.step(k * 0.2, [walker(5, 300, y)])
    assert run.events == []


def test_pedestrian_by_a_parked_bike_then_walking_over_the_line_is_never_a_vehicle():
    run = red_runner()
    t = 0.0
    for _ in range(10):  # standing at a parked motorbike, leaning over it: the bike does not move
        run.step(t, [bike(1, 300, 330), rider(5, 300, 330)])
        t += 0.2
    for y in range(330, 240, -15):  # the bike's box lost; the person walks on over the line
        run.step(t, [walker(5, 300, y)])
        t += 0.2
    assert run.events == []


def test_pedestrian_walking_beside_a_moving_bike_is_not_its_rider():
    run = red_runner()
    for k, y in enumerate(YS):
        objs = [walker(5, 345, y)] + ([bike(1, 300, y)] if k < 5 else [])
        run.step(k * 0.2, objs)
    assert run.events == []  # the bike vanished before the line; the walker beside it is nobody's rider


def test_a_rider_stands_in_for_wrong_way_too():
    run = BoxRunner(camera({"wrong_way": {"lanes": ["up"], "min_distance": 0.1, "min_seconds": 1.0}}))
    for k in range(16):  # downwards, against the lane; the bike's box lost after 0.6 s
        y = 100 + 12 * k
        run.step(k * 0.2, [rider(2, 300, y)] + ([bike(1, 300, y)] if k < 4 else []))
    assert len(run.events) == 1 and run.events[0].offenders[0].track_id == 1


def test_a_walker_whose_legs_the_detector_calls_a_motorbike_is_not_a_rider():
    """Seen on the synthetic scenes: a pedestrian sprite's lower body detected as a motorbike at
    0.26-0.53, moving with the person. No track follows such boxes, so by default they bind nobody."""
    run = red_runner()
    for k, y in enumerate(YS):
        legs = np.array([[290, y - 45, 310, y]], np.float32)
        dets = Detections(legs, np.array([0.3], np.float32), np.array([CLS["motorcycle"]]), NAMES)
        run.step(k * 0.2, [(5, "person", (288, y - 70, 312, y - 8))], dets)
    assert run.events == []


# ---------------------------------------------------------------------------------- helmet rule


class BareHeads:
    """A head model that sees a bare head on every person whose box is in the crop (their top
    fifth): stands for the real model in rule-logic tests (the real model is tested on real crops
    in tests/scenarios)."""

    def __init__(self, people: list[tuple[float, float, float, float]]) -> None:
        self.people = people
        self.crops: list[tuple[int, int, int, int]] = []

    def __call__(self, image, crop):
        from edge.crops import CropDetection

        self.crops.append(crop)
        out = []
        for x1, y1, x2, y2 in self.people:
            cx = (x1 + x2) / 2
            if crop[0] <= cx <= crop[2] and crop[1] <= y1 <= crop[3]:
                h = 0.2 * (y2 - y1)
                out.append(CropDetection("Without Helmet", (cx - h / 2, y1, cx + h / 2, y1 + h), 0.8))
        return out


def helmet_rule(heads, **cfg):
    from edge.rules.helmet import NoHelmetRule

    config = NoHelmetConfig(min_votes=3, check_interval_s=0.3, **cfg)
    return NoHelmetRule(config, VehicleMotion(), detector=heads, reference_height=480)


def test_helmet_checks_a_pair_whose_bike_went_below_the_frame():
    """Riding toward the camera and off the bottom of the frame: the bike's box is lost first, the
    pair stay in view a moment longer; the rule checks them as their vehicle."""
    image = np.zeros((480, 640, 3), np.uint8)
    events, people_seen = [], []
    heads = BareHeads(people_seen)
    rule = helmet_rule(heads)
    for k in range(14):
        y = 400 + 12 * k  # the bike's ground point; past the frame bottom (480) from k = 7
        pair = [rider(2, 300, y), rider(3, 300, y, dx=6)]
        objs = pair + ([bike(1, 300, y)] if k < 3 else [])
        people_seen[:] = [p[2] for p in pair]
        events += rule.update(Observation(k * 0.2, boxes(objs), image))
    assert len(events) == 1
    assert events[0].offenders[0].track_id == 1  # the pair's motorbike, seen before it left
    # Its third vote (min_votes 3) came while only the riders were seen (bike box gone from t = 0.6).
    assert events[0].ended_at >= 0.6 and events[0].details["votes_without"] == 3


def test_helmet_never_checks_a_pedestrian():
    image = np.zeros((480, 640, 3), np.uint8)
    people = [walker(5, 300, 300 + 10 * k)[2] for k in range(10)]
    heads = BareHeads([])
    rule = helmet_rule(heads)
    events = []
    for k in range(10):
        heads.people[:] = [people[k]]
        events += rule.update(Observation(k * 0.2, boxes([walker(5, 300, 300 + 10 * k)]), image))
    assert events == [] and heads.crops == []


def test_helmet_sizes_are_shares_of_the_frame_and_old_pixel_keys_still_load():
    rule = helmet_rule(BareHeads([]))
    assert rule.min_rider == NoHelmetConfig().min_rider_share and rule.min_head == NoHelmetConfig().min_head_share
    old = helmet_rule(BareHeads([]), min_box_height=40, min_head_height=18)  # v0.1 keys: reference-frame pixels
    assert old.min_rider == 40 / 480 and old.min_head == 18 / 480


def test_the_model_input_brings_an_expected_head_to_the_target_size():
    rule = helmet_rule(BareHeads([]), head_target=40)
    cfg = rule.config
    # A rider region as tall as the crop: the head is HEAD_SHARE of it, whatever the pixels.
    assert rule.input_size((120, 100), 120.0) == 32 * -(-120 * 40 // (0.15 * 120) // 32)  # 288
    assert rule.input_size((600, 400), 600.0) == rule.input_size((60, 40), 60.0)  # scale-free
    assert rule.input_size((40, 40), 400.0) == cfg.input_size  # large heads: the smallest input
    assert rule.input_size((200, 200), 20.0) == cfg.max_input_size
    # The default target (measured, docs/benchmarks.md): typical rider crops stay at input_size.
    assert helmet_rule(BareHeads([])).input_size((120, 95), 110.0) == NoHelmetConfig().input_size
