"""Traffic rules on the real Hanoi footage against labels made by looking at the frames.

The signal state read from the lamp region must match the labelled phases frame by frame, and the
events of the full pipeline must match the labelled acts (precision / recall floors from the
measurement in docs/benchmarks.md).
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import cv2
import pytest
import yaml

from edge.analyze import analyze_video
from edge.config import DetectorConfig, load_camera_config
from edge.data import video_path
from edge.rules.signals import SignalBoard
from tests.scenarios.synth import Score
from tests.scenarios.traffic_labels import score_events, video_start

HERE = Path(__file__).parent
ROOT = HERE.parent.parent
LABELS = yaml.safe_load((HERE / "labels" / "hanoi_lythuongkiet_hangbai_intersection_trafficlight.yaml").read_text())
CONFIG = ROOT / "configs" / "cameras" / "hanoi_lythuongkiet_hangbai_intersection_trafficlight.yaml"
FPS = 6.017
# measured: precision 1.0, recall 0.75 (9 of 12 with the pink-helmet rider added 2026-12-03; 11 of 12
# with the regions pass at scale 2, docs/benchmarks.md "Regions-of-interest pass")
FLOORS = {"red_light": (0.95, 0.7)}


def labelled_state(frame: int) -> str:
    for span in LABELS["signal"]:
        if span["frames"][0] <= frame <= span["frames"][1]:
            return span["state"]
    raise AssertionError(frame)


def test_signal_state_matches_labels():
    cam = load_camera_config(CONFIG)
    board = SignalBoard.from_config(cam.scene.signals, (640, 480), (640, 480))
    cap = cv2.VideoCapture(str(video_path(LABELS["video"])))
    wrong, unknown, n = [], 0, 0
    while True:
        ok, img = cap.read()
        if not ok:
            break
        board.update(n / FPS, img)
        state = board.reading("head-right").state.value
        # Hysteresis: a change is confirmed 1 frame late, so frames right after a change may lag.
        if state == "unknown":
            unknown += 1
        elif state != labelled_state(n) and state != labelled_state(max(0, n - 2)):
            wrong.append((n, state))
        n += 1
    assert n == 384
    assert wrong == [] and unknown <= 2, (wrong, unknown)


@pytest.fixture(scope="module")
def events(tmp_path_factory):
    out = tmp_path_factory.mktemp("hanoi")
    video = video_path(LABELS["video"])
    analyze_video(video, load_camera_config(CONFIG), out, start_time=video_start(video))
    return [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]


def test_events_match_labelled_acts(events):
    scores = score_events(events, LABELS)
    print("hanoi scores (tp, fp, fn):", {k: (v.tp, v.fp, v.fn) for k, v in scores.items()})
    for ty, (p_floor, r_floor) in FLOORS.items():
        s = scores.get(ty, Score())
        assert s.tp + s.fn > 0 and s.precision >= p_floor and s.recall >= r_floor, (ty, s)
    assert sum(s.fp for s in scores.values()) == 0, scores  # no other traffic rule fired on this clip
    # Unknown or green never accuses: every event happened while the labels say red.
    for e in events:
        if e["type"] in ("red_light", "stop_line"):
            assert e["details"]["signal_state"] == "red"


HELMET_LABELS = yaml.safe_load((HERE / "labels" / "motorcyclist_without_helmet.yaml").read_text())
HELMET_CONFIG = ROOT / "configs" / "cameras" / "motorcyclist_without_helmet.yaml"


def test_bare_headed_rider_reported_once_with_head_and_plate(tmp_path):
    video = video_path(HELMET_LABELS["video"])
    analyze_video(video, load_camera_config(HELMET_CONFIG), tmp_path, start_time=video_start(video))
    events = [json.loads(line) for line in (tmp_path / "events.jsonl").read_text().splitlines()]
    act = HELMET_LABELS["acts"][0]
    helmet = [e for e in events if e["type"] == "no_helmet"]
    assert len(helmet) == 1, helmet  # one rider, one event: pedestrians' heads do not count
    box = helmet[0]["objects"][0]["box"]
    assert act["x_range"][0] <= (box[0] + box[2]) / 2 <= act["x_range"][1]
    kinds = [ev["kind"] for ev in helmet[0]["evidence"]]
    assert "crop" in kinds and "plate" in kinds
    folder = tmp_path / "evidence" / helmet[0]["id"]
    head = cv2.imread(str(folder / "crop-0.jpg"))
    assert head is not None and head.shape[0] >= 96


WRONGWAY_LABELS = yaml.safe_load((HERE / "labels" / "vn_road_motorbikes_wrongway_screencap.yaml").read_text())
WRONGWAY_CONFIG = ROOT / "configs" / "cameras" / "vn_road_motorbikes_wrongway_screencap.yaml"


def test_wrong_way_rider_on_the_boulevard(tmp_path):
    video = video_path(WRONGWAY_LABELS["video"])
    # Small riders: the detector at 1280 px, as the config's comment says.
    start = video_start(video)
    analyze_video(video, load_camera_config(WRONGWAY_CONFIG), tmp_path, detector_config=DetectorConfig(long_side=1280),
                  start_time=start)
    events = [json.loads(line) for line in (tmp_path / "events.jsonl").read_text().splitlines()]
    wrong = [e for e in events if e["type"] == "wrong_way"]
    act = WRONGWAY_LABELS["acts"][0]
    assert len(wrong) == 1, wrong  # precision 1, recall 1 on this clip (measured)
    e = wrong[0]
    frame = (datetime.fromisoformat(e["ended_at"].replace("Z", "+00:00")) - start).total_seconds() * 30
    box = e["objects"][0]["box"]
    assert act["frames"][0] <= frame <= act["frames"][1] + 15
    assert act["x_range"][0] <= (box[0] + box[2]) / 2 <= act["x_range"][1]


CILACAP_LABELS = yaml.safe_load((HERE / "labels" / "id_cilacap_etle_ptz_stopline_helmet.yaml").read_text())
CILACAP_CONFIG = ROOT / "configs" / "cameras" / "id_cilacap_etle_ptz_stopline_helmet.yaml"


@pytest.fixture(scope="module")
def cilacap_scores(tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("cilacap")
    video = video_path(CILACAP_LABELS["video"])
    analyze_video(video, load_camera_config(CILACAP_CONFIG), out, start_time=video_start(video))
    events = [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]
    scores = score_events(events, CILACAP_LABELS)
    print("cilacap scores (tp, fp, fn):", {k: (v.tp, v.fp, v.fn) for k, v in scores.items()})
    return scores


def test_no_helmeted_rider_is_reported_on_an_enforcement_camera(cilacap_scores: dict) -> None:
    """An enforcement PTZ camera never tuned to (project defaults): none of the helmeted adults
    around the bare-headed boy is reported (precision first)."""
    assert sum(s.fp for s in cilacap_scores.values()) == 0, cilacap_scores


@pytest.mark.xfail(strict=True, reason="known miss (issue 14): helmet_yolo12m finds no head of the boy in the "
                   "wide views (whole-region, per-rider and mirrored crops, 96-320 px input), and in the close-up the "
                   "two front scooters are boxed as one, whose crop loses his head too (docs/benchmarks.md, 'No-helmet: "
                   "a head judged as its rider's'); remove this mark when the rule finds a child")
def test_child_passenger_without_helmet_is_reported(cilacap_scores: dict) -> None:
    assert cilacap_scores["no_helmet"].tp >= 1, cilacap_scores


HAIPHONG_LABELS = yaml.safe_load((HERE / "labels" / "vn_haiphong_intersection_cctv_signals_stopline.yaml").read_text())
HAIPHONG_CONFIG = ROOT / "configs" / "cameras" / "vn_haiphong_intersection_cctv_signals_stopline.yaml"


def test_no_helmeted_rider_is_reported_at_the_haiphong_junction(tmp_path):
    """A wide junction the rule was never tuned to (project defaults): riders in dark helmets seen
    from behind and one in a black full-face helmet (read as a bare head, 3 checks of 3, before
    heads had owners and one helmet reading cleared a rider) are not reported."""
    video = video_path(HAIPHONG_LABELS["video"])
    analyze_video(video, load_camera_config(HAIPHONG_CONFIG), tmp_path, start_time=video_start(video))
    events = [json.loads(line) for line in (tmp_path / "events.jsonl").read_text().splitlines()]
    scores = score_events([e for e in events if e["type"] == "no_helmet"], HAIPHONG_LABELS)
    print("haiphong no_helmet (tp, fp, fn):", {k: (v.tp, v.fp, v.fn) for k, v in scores.items()})
    assert scores.get("no_helmet", Score()).fp == 0, scores
