""""When it started" on real footage (issue 16, item 6), through the real pipeline and detector:

- ABODA video4 (a man puts a bag down beside a utility box at 13-15 s and walks off): the littering
  event's `first_seen` picture is a frame of the drop, with the owner next to the bag;
- the Hai Phong vendor clip with a 2 s dwell (the vendor's parked motorbikes are there from the
  first frame): every phase carries one `first_seen` picture, the same file, a frame from the
  clip's first seconds, when the occupation was first seen.

Which frame a picture is: the analysed frame it differs least from (its marks cover little of it).
Labels: tests/scenarios/labels/urban_tw_sidewalk_bag_left_behind.yaml and
urban_vn_haiphong_truccat_vendor_short_dwell.yaml. FIRST_SEEN_RENDER=folder writes the pictures
as PNG to look at."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from edge.analyze import make_detector
from edge.config import DetectorConfig, load_camera_config
from edge.data import video_path
from edge.motion import motion_gate_for
from edge.pipeline import CameraAnalyzer, EventRecord
from edge.sources import VideoFileSource
from tests.scenarios.traffic_labels import video_start

pytestmark = pytest.mark.timeout(600)

REPO = Path(__file__).resolve().parents[2]
LABELS = Path(__file__).resolve().parent / "labels"
SMALL = (180, 120)  # frames compared at this size


@pytest.fixture(scope="module")
def detector():
    return make_detector(DetectorConfig())


def run(label_file: str, detector) -> tuple[dict, list[EventRecord], dict[float, np.ndarray]]:
    """The labelled clip through the real pipeline: its records (events with their files) and every
    analysed frame, small and grey, by its second."""
    label = yaml.safe_load((LABELS / label_file).read_text(encoding="utf-8"))
    cam = load_camera_config(REPO / label["config"])
    if label.get("overrides"):
        data = cam.model_dump(mode="json", exclude_unset=True)
        for rule, settings in label["overrides"].items():
            data["rules"][rule] = {**data["rules"][rule], **settings}
        cam = type(cam).model_validate(data)
    video = video_path(label["video"])
    if not video.is_file():
        pytest.skip(f"{video.name} missing (set EDGE_DATA_DIR)")
    analyzer = CameraAnalyzer("real", cam, detector, deterministic_ids=True, motion=motion_gate_for(cam))
    base = video_start(video)
    records: list[EventRecord] = []
    frames: dict[float, np.ndarray] = {}
    for frame in VideoFileSource(video, cam.camera.analysis_fps).frames():
        frames[frame.pts] = small(frame.image)
        records += analyzer.process(frame, base + timedelta(seconds=frame.pts))
    records += analyzer.finish()
    return label, records, frames


def small(img: np.ndarray) -> np.ndarray:
    return cv2.resize(cv2.cvtColor(img, cv2.COLOR_BGR2GRAY), SMALL, interpolation=cv2.INTER_AREA).astype(np.float32)


def picture(rec: EventRecord, kind: str = "first_seen") -> np.ndarray:
    (f,) = [e for e in rec.evidence if e.kind == kind]
    img = cv2.imdecode(np.frombuffer(f.data, np.uint8), cv2.IMREAD_COLOR)
    assert img is not None
    return img


def frame_second(img: np.ndarray, frames: dict[float, np.ndarray]) -> float:
    """The second of the analysed frame the picture is (least mean absolute difference)."""
    s = small(img)
    diffs = {t: float(np.abs(f - s).mean()) for t, f in frames.items()}
    best = min(diffs, key=diffs.__getitem__)
    assert diffs[best] < 4.0, f"the picture is no analysed frame (closest {best:.1f} s, {diffs[best]:.1f} grey levels)"
    return best


def render(name: str, img: np.ndarray) -> None:
    if os.environ.get("FIRST_SEEN_RENDER"):
        out = Path(os.environ["FIRST_SEEN_RENDER"])
        out.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(out / name), img)


def gap_in_heights(obj, owner) -> float:
    """The gap between two boxes in owner heights (0 when they touch or overlap)."""
    dx = max(0.0, max(obj[0], owner[0]) - min(obj[2], owner[2]))
    dy = max(0.0, max(obj[1], owner[1]) - min(obj[3], owner[3]))
    return float(np.hypot(dx, dy)) / max(1.0, owner[3] - owner[1])


def test_aboda_littering_shows_the_owner_at_the_drop(detector):
    label, records, frames = run("urban_tw_sidewalk_bag_left_behind.yaml", detector)
    litter = [r for r in records if r.event.type.value == "littering"]
    assert len(litter) == 1, [(r.event.type.value, r.event.phase) for r in records]
    rec = litter[0]
    drop = picture(rec)
    render("real_aboda_littering_drop.png", drop)
    render("real_aboda_littering_now.png", picture(rec, "snapshot"))
    t_drop = frame_second(drop, frames)
    # The label: he bends and puts the bag down at 13-15 s (bag_down_s is its end), stands by it,
    # and is gone from it by owner_gone_s. The drop picture is of that act, give or take 2 s.
    down = label["events_of_note"]["bag_down_s"]
    assert down - 2 - 2 <= t_drop <= down + 2, t_drop
    bag, owner = rec.event.objects[0], rec.event.objects[1]
    assert owner.class_name == "person"
    truth = label["rules"]["littering"]["expected"][0]["box"]
    assert abs(bag.box[0] - truth[0]) < 40 and abs(bag.box[3] - truth[3]) < 40, bag.box
    # The owner, as marked on the drop picture, is next to the bag (within the rule's owner radius).
    assert gap_in_heights(bag.box, owner.box) <= 0.6, (bag.box, owner.box)
    # The scene now: the bag left, decided once the owner was gone (at least 10 s later).
    t_now = (rec.event.ended_at - video_start(video_path(label["video"]))).total_seconds()
    assert t_now >= t_drop + 10


def test_vendor_incident_first_seen_is_when_the_occupation_began(detector):
    label, records, frames = run("urban_vn_haiphong_truccat_vendor_short_dwell.yaml", detector)
    mine = [r for r in records if r.event.type.value == "sidewalk_encroachment"]
    phases = [r.event.phase for r in mine]
    assert phases and phases[0] == "start", phases
    shas = {next(e.sha256 for e in r.evidence if e.kind == "first_seen") for r in mine}
    assert all(sum(e.kind == "first_seen" for e in r.evidence) == 1 for r in mine)
    assert len(shas) == 1  # the same file on every phase
    first = picture(mine[0])
    render("real_vendor_first_seen.png", first)
    t_first = frame_second(first, frames)
    expected = label["rules"]["sidewalk_encroachment"]["expected"][0]
    # The vendor's motorbikes are there from the first frame: first seen in the clip's first
    # seconds (the static-change and the 2 s dwell decide the start a couple of seconds later).
    assert expected["from_s"] <= t_first <= expected["from_s"] + 2.0, t_first
    base = video_start(video_path(label["video"]))
    assert abs((mine[0].event.started_at - base).total_seconds() - t_first) <= 1.0
