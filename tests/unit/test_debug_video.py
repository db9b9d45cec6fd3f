"""The debug seam on its own: rules' optional `debug_state()` (plain data, no effect on decisions),
the trace writers, the H.264 writer (browser-playable) and the overlay's pixels on a blank frame."""

from __future__ import annotations

import csv
import json
import struct
from pathlib import Path

import av
import numpy as np
import pytest

from edge.config import IllegalStoppingConfig, load_camera_config
from edge.debug_video import LINE_COLOR, ZONE_COLORS, DebugOverlay, H264Writer, TraceWriter
from edge.detections import Detections, TrackedObjects
from edge.rules import Observation
from edge.rules.base import Debuggable, rule_debug_state
from edge.rules.stopping import IllegalStoppingRule
from tests.unit.test_stopping_rule import NAMES, ZONE, frame

ROOT = Path(__file__).resolve().parents[2]


class _Plain:
    def update(self, obs):
        return []


class _Wrapper:
    def __init__(self, rule):
        self.rule = rule

    def update(self, obs):
        return self.rule.update(obs)


def _stopping() -> IllegalStoppingRule:
    return IllegalStoppingRule(IllegalStoppingConfig(zones=["box"], max_stop_seconds=2.0), [ZONE])


def test_rules_without_debug_state_show_nothing_and_wrappers_are_seen_through():
    assert rule_debug_state(_Plain()) is None
    rule = _stopping()
    assert isinstance(rule, Debuggable) and not isinstance(_Plain(), Debuggable)
    assert rule_debug_state(_Wrapper(rule)) == {"rule": "illegal_stopping", "dwell": []}


def test_dwell_timer_is_plain_data_and_asking_changes_no_decision():
    watched, alone = _stopping(), _stopping()
    events_watched, events_alone, states = [], [], []
    for k in range(20):
        t = k / 5
        objs = frame([(7, "car", 200.0, 200.0)] if k < 15 else [])
        events_watched += watched.update(Observation(t, objs))
        states.append(json.loads(json.dumps(watched.debug_state())))  # JSON-able
        events_alone += alone.update(Observation(t, objs))
    assert [(v.started_at, v.ended_at, v.offenders) for v in events_watched] == [
        (v.started_at, v.ended_at, v.offenders) for v in events_alone
    ]
    assert len(events_watched) == 1
    dwell = states[10]["dwell"][0]
    assert dwell["track"] == 7 and dwell["zone"] == "box" and dwell["limit"] == 2.0 and dwell["reported"]
    assert dwell["seconds"] == pytest.approx(2.0)
    assert dwell["box"] == [180.0, 170.0, 220.0, 200.0]
    assert states[3]["dwell"][0]["seconds"] == pytest.approx(0.6) and not states[3]["dwell"][0]["reported"]


def test_trace_writers_jsonl_and_csv(tmp_path):
    records = [
        {"frame": k, "t": k / 6, "signals": {"h1": {"state": "red", "since": 0.0, "lit": {"red": 0.5, "green": 0.0}}},
         "rules": [{"rule": "x", "dwell": []}], "events": []}
        for k in range(3)
    ]
    for name in ("t.jsonl", "t.csv"):
        w = TraceWriter(tmp_path / name)
        for r in records:
            w.write(r)
        w.close()
    assert [json.loads(x) for x in (tmp_path / "t.jsonl").read_text().splitlines()] == records
    with open(tmp_path / "t.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 3
    assert rows[2]["h1.state"] == "red" and rows[2]["h1.lit.red"] == "0.5" and rows[2]["h1.lit.green"] == "0.0"
    assert json.loads(rows[0]["rules"]) == [{"rule": "x", "dwell": []}]


def test_h264_writer_makes_a_faststart_yuv420p_mp4_of_every_frame(tmp_path):
    path = tmp_path / "v.mp4"
    w = H264Writer(path, fps=6)
    for k in range(9):  # odd size: cut to even for yuv420p; irregular times
        img = np.full((75, 101, 3), 20 * k, np.uint8)
        w.write(img, k * 0.166 + (0.05 if k % 3 == 0 else 0.0))
    w.close()
    data = path.read_bytes()
    assert data[4:8] == b"ftyp"
    first = struct.unpack(">I", data[:4])[0]
    assert data[first + 4 : first + 8] == b"moov"  # right after ftyp: before mdat
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        assert s.codec_context.name == "h264" and s.codec_context.pix_fmt == "yuv420p"
        frames = [f.to_ndarray(format="bgr24") for f in c.decode(s)]
    assert len(frames) == 9 and frames[0].shape == (74, 100, 3)
    assert abs(int(frames[8].mean()) - 160) <= 3


def test_overlay_draws_zone_and_line_in_their_colours():
    cam = load_camera_config(ROOT / "configs" / "cameras" / "hanoi_lythuongkiet_hangbai_intersection_trafficlight.yaml")
    img = np.zeros((480, 640, 3), np.uint8)
    record = {"frame": 0, "t": 0.0, "signals": {}, "rules": [], "events": []}
    out = DebugOverlay(cam).draw(img, Detections.empty(NAMES), TrackedObjects.empty(NAMES), record, None)
    assert tuple(out[200, 300]) == ZONE_COLORS["no_stopping"]  # the intersection box's far edge
    assert tuple(out[390, 360]) == LINE_COLOR  # the stop line, (536, 394) -> (188, 387)
    assert img.max() == 0  # the analysed frame itself is untouched


def test_red_light_and_stop_line_states_follow_a_vehicle_over_the_line():
    from tests.unit.test_traffic_rules import Runner, camera

    run = Runner(camera({"red_light": {"line": "stop", "signal": "head"},
                         "stop_line": {"line": "stop", "signal": "head", "zone": "beyond"}}))
    run.signal("red", 0.0)
    states = []
    for i, y in enumerate([360, 340, 320, 290, 270, 270, 270, 270, 270, 270, 270, 270]):
        run.step(1.0 + i * 0.2, [(4, "motorcycle", 300.0, y)])
        states.append({s["rule"]: s for s in (rule_debug_state(r) for r in run.rules) if s})
    before, after, end = states[1]["red_light"], states[4]["red_light"], states[-1]
    assert before["signal_state"] == "red" and before["want"] == 1
    assert before["sides"] == [{"vehicle": 1, "track": 4, "box": [280.0, 300.0, 320.0, 340.0], "seen": True,
                                "side": -1, "crossed": False, "reported": False}]
    assert after["sides"][0]["side"] == 1 and after["sides"][0]["crossed"] and after["sides"][0]["reported"]
    assert len(run.events) == 1 and run.events[0].type.value == "red_light"
    # At rest beyond the line since y=270 was first reached (t=1.8): the stop-line timer runs.
    dwell = end["stop_line"]["dwell"][0]
    assert dwell["track"] == 4 and dwell["seconds"] == pytest.approx(3.2 - 1.8) and dwell["limit"] == 1.0


def test_helmet_votes_per_motorcycle():
    from edge.config import NoHelmetConfig
    from edge.crops import CropDetection
    from edge.rules.helmet import NoHelmetRule
    from edge.rules.traffic import VehicleMotion
    from tests.unit.test_traffic_rules import tracks

    def heads(image, crop):  # the bare head of the person seated on the motorcycle, every check
        return [CropDetection("Without Helmet", (290.0, 222.0, 310.0, 245.0), 0.9)]

    rule = NoHelmetRule(NoHelmetConfig(min_votes=3, check_interval_s=0.4), VehicleMotion(), detector=heads)
    image = np.zeros((480, 640, 3), np.uint8)
    states, events = [], []
    for k in range(12):
        objs = [(5, "motorcycle", 300.0, 300.0), (6, "person", 300.0, 290.0)]  # its rider seated on it
        events += rule.update(Observation(k * 0.2, tracks(objs, size=80), image))
        states.append(rule.debug_state())
    assert states[0]["votes"] == [{"vehicle": 1, "track": 5, "box": [260.0, 220.0, 340.0, 300.0], "checks": 1,
                                   "without": 1, "with": 0, "reported": False}]
    assert states[-1]["votes"][0]["without"] == 3 and states[-1]["votes"][0]["reported"]
    assert len(events) == 1


def test_debug_tap_records_only_on_request_and_stops_by_itself(tmp_path):
    from edge.debug_video import DebugTap, record_seconds
    from edge.frames import Frame

    cam = load_camera_config(ROOT / "configs" / "cameras" / "hanoi_lythuongkiet_hangbai_intersection_trafficlight.yaml")
    tap = DebugTap(cam, tmp_path)
    empty_d, empty_t = Detections.empty(NAMES), TrackedObjects.empty(NAMES)

    def feed(k0: int, k1: int) -> None:
        for k in range(k0, k1):
            tap(Frame(np.zeros((480, 640, 3), np.uint8), k * 0.1, 0.0, k), empty_d, empty_t, [], [])

    feed(0, 10)
    assert list(tmp_path.iterdir()) == [] and not tap.recording
    assert tap.request(record_seconds(b'{"seconds": 1}'))
    assert not tap.request(5)  # one at a time
    feed(10, 16)
    assert tap.recording
    feed(16, 40)
    assert not tap.recording and len(tap.written) == 1
    video = tap.written[0]
    assert video.name == "hanoi-lythuongkiet-hangbai-1.000.mp4"
    assert len(_frames(video)) == 11  # t = 1.0 ... 2.0
    assert len(video.with_suffix(".jsonl").read_text().splitlines()) == 11
    for bad in (b'{"seconds": 0}', b'{"seconds": 121}', b'"x"', b"{", b'{"seconds": true}'):
        with pytest.raises(ValueError):
            record_seconds(bad)
    assert record_seconds("30") == 30.0


def _frames(path):
    with av.open(str(path)) as c:
        return list(c.decode(video=0))


def test_lane_turn_and_speeding_states_and_every_state_is_drawn():
    from tests.unit.test_traffic_rules import Runner, camera, drive, tracks

    calib = {"calibration": {"image_points": [[0, 0], [640, 0], [640, 480], [0, 480]],
                             "ground_points_m": [[0, 0], [64, 0], [64, 48], [0, 48]]}}
    run = Runner(camera({"lane": {"lanes": ["up"], "min_seconds": 5},
                         "forbidden_turn": {"turns": [{"entry": "entry", "exit": "exit"}], "max_seconds": 5},
                         "speeding": {"limit_kmh": 40, "tolerance_kmh": 0, "min_seconds": 5}}, **calib))
    drive(run, 1, [470 - 30 * i for i in range(8)], x=250, cls="car")  # 54 km/h in the motorbike lane
    drive(run, 1, [260], t0=1.6, x=320, cls="car")  # and over the entry line (x = 300)
    states = {s["rule"]: s for s in (rule_debug_state(r) for r in run.rules) if s}
    lane, over, entered = states["lane"]["dwell"][0], states["speeding"]["dwell"][0], states["forbidden_turn"]["entered"]
    assert lane["track"] == 1 and lane["lane"] == "up" and lane["seconds"] == pytest.approx(1.6) and lane["limit"] == 5
    assert over["track"] == 1 and over["kmh"] is not None and over["kmh"] > 40 and over["seconds"] >= 0
    assert entered == [{**entered[0], "track": 1, "line": "entry", "seconds": 0.0, "limit": 5.0}]
    # Every kind of state renders (with the urban rules' shapes too) without touching the frame.
    cam = load_camera_config(ROOT / "configs" / "cameras" / "hanoi_lythuongkiet_hangbai_intersection_trafficlight.yaml")
    box = [100.0, 100.0, 160.0, 180.0]
    urban = [
        {"rule": "sidewalk_encroachment", "incidents": [{"zone": "z", "since": 0.0, "max_objects": 1}],
         "occupants": [{"id": 1, "track": None, "zone": "z", "kind": "static_object", "class": "static_object",
                        "box": box, "seconds": 70.0, "limit": 60.0}]},
        {"rule": "littering", "items": [{"id": 1, "zone": "z", "class": "bottle", "box": box, "seconds": 3.0,
                                         "owner": 4, "owner_away": 2.0, "left_seconds": 5.0, "reported": False}]},
        {"rule": "no_helmet", "votes": [{"vehicle": 1, "track": 3, "box": box, "checks": 2, "without": 2, "with": 0,
                                         "reported": False}]},
        {"rule": "someone_elses", "anything": [1, 2]},
    ]
    record = {"frame": 3, "t": 1.6, "signals": {}, "rules": [*states.values(), *urban],
              "events": [{"type": "lane", "phase": "point", "tracks": [1]}]}
    img = np.zeros((480, 640, 3), np.uint8)
    out = DebugOverlay(cam).draw(img, Detections.empty(NAMES), tracks([(1, "car", 320.0, 260.0)]), record, None)
    assert img.max() == 0 and out[110:170, 100:160].max() > 0
