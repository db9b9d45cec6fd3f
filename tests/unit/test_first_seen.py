""""When it started" (issue 16, item 6): a long sidewalk incident carries the frame its first
occupant appeared in, boxed and time-stamped, as `first_seen` evidence on every phase (the same
bytes, so central stores it once); a littering event carries the drop (owner and object together).

Real pixels (a frame of a real street clip, shifted a little every analysed frame so that each
frame is its own), scripted tracks and detections, the rule's own clock."""

from __future__ import annotations

import hashlib
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import cv2
import numpy as np
import pytest

from edge.config import LitteringConfig, SidewalkEncroachmentConfig, load_camera_config
from edge.data import data_dir
from edge.detections import Detections, TrackedObjects
from edge.evidence import EvidenceFile, evidence_image_jpeg
from edge.geometry import PolygonZone
from edge.pipeline import CameraAnalyzer
from edge.retention import enforce_quota
from edge.rules import Observation, Violation
from edge.rules.littering import LitteringRule
from edge.rules.sidewalk import SidewalkEncroachmentRule, time_stamp

REPO = Path(__file__).resolve().parents[2]
NAMES = ("person", "bicycle", "car", "motorcycle", "chair", "bottle")
WALK = PolygonZone("walk", "sidewalk", np.array([[100, 300], [700, 300], [700, 560], [100, 560]], np.float32))
FLOOR = PolygonZone("floor", "littering_watch", np.array([[0, 200], [768, 200], [768, 576], [0, 576]], np.float32))
FPS = 2.0
NOON_HANOI = datetime(2026, 5, 4, 5, 0, tzinfo=UTC)  # 12:00 in Hanoi
HANOI = ZoneInfo("Asia/Ho_Chi_Minh")
BIKE = (300.0, 420.0, 380.0, 500.0)  # where the motorbike comes to rest
OBJ = (400, 430, 450, 490)  # where the dropped object lies


@pytest.fixture(scope="module")
def street() -> tuple[np.ndarray, np.ndarray]:
    cap = cv2.VideoCapture(str(data_dir() / "videos" / "opencv_vtest_pedestrians.avi"))
    ok, frame = cap.read()
    cap.release()
    if not ok:
        pytest.skip("sample clip missing (set EDGE_DATA_DIR)")
    bus = cv2.imread(str(data_dir() / "images" / "ultralytics_bus.jpg"))
    assert bus is not None
    return frame, bus[700:760, 300:350].copy()


def frame_at(street, k: int) -> np.ndarray:
    return np.roll(street[0], 2 * k, axis=1)  # every analysed frame differs from every other


def tracks(objs: list[tuple[int, str, tuple[float, float, float, float]]]) -> TrackedObjects:
    if not objs:
        return TrackedObjects.empty(NAMES)
    return TrackedObjects(
        xyxy=np.array([b for _, _, b in objs], np.float32),
        confidence=np.full(len(objs), 0.8, np.float32),
        class_id=np.array([NAMES.index(c) for _, c, _ in objs], np.int32),
        track_id=np.array([t for t, _, _ in objs], np.int64),
        names=NAMES,
    )


def dets(objs: list[tuple[str, tuple[float, float, float, float]]]) -> Detections:
    if not objs:
        return Detections.empty(NAMES)
    return Detections(
        np.array([b for _, b in objs], np.float32), np.full(len(objs), 0.6, np.float32),
        np.array([NAMES.index(c) for c, _ in objs], np.int32), NAMES,
    )


def bike_parks_all_afternoon(t: float):
    """A motorbike rests in the zone from t=5 s to t=400 s; a vendor's chair joins it at t=100 s,
    the bike shuffles half a metre at t=200 s (a new rest for it). A person walks past throughout."""
    tr = [(1, "person", (600 - t % 500, 380.0, 640 - t % 500, 480.0))]
    if 5 <= t < 400:
        dx = 60.0 if t >= 200 else 0.0
        tr.append((7, "motorcycle", (BIKE[0] + dx, BIKE[1], BIKE[2] + dx, BIKE[3])))
    de = [("chair", (500.0, 470.0, 540.0, 520.0))] if 100 <= t < 380 else []
    return tr, de


def run_sidewalk(street, script, seconds: float) -> tuple[list[tuple[float, Violation]], dict[float, np.ndarray]]:
    config = SidewalkEncroachmentConfig(zones=["walk"], static_change={"enabled": False})  # 60 s, updates every 60 s
    rule = SidewalkEncroachmentRule(config, [WALK], clock=lambda t: NOON_HANOI + timedelta(seconds=t))
    out, frames = [], {}
    for k in range(int(seconds * FPS)):
        t = k / FPS
        img = frame_at(street, k)
        frames[t] = img
        tr, de = script(t)
        out += [(t, v) for v in rule.update(Observation(t, tracks(tr), img, dets(de)))]
    return out, frames


def decoded(data: bytes) -> np.ndarray:
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    assert img is not None
    return img


def yellow_top_edge(img: np.ndarray, box) -> bool:
    """The box's top edge drawn in the object colour (BGR 0, 220, 255)."""
    x1, y1, x2, _ = (int(c) for c in box)
    edge = img[y1, x1 + 3 : x2 - 3].astype(int)
    return abs(edge[:, 0].mean() - 0) < 60 and abs(edge[:, 2].mean() - 255) < 60


def test_long_incident_carries_the_first_appearance_on_every_phase(street):
    events, frames = run_sidewalk(street, bike_parks_all_afternoon, 460)
    phases = [v.phase for _, v in events]
    assert phases[0] == "start" and phases[-1] == "end" and phases.count("update") >= 5  # minutes of updates
    pictures = []
    for _, v in events:
        first = [p for p in v.images if p.kind == "first_seen"]
        assert len(first) == 1, (v.phase, [p.kind for p in v.images])
        pictures.append(first[0])
    # The same bytes every phase, so the same sha256: central keeps one file for the incident.
    jpegs = [evidence_image_jpeg(p) for p in pictures]
    assert len({hashlib.sha256(j).hexdigest() for j in jpegs}) == 1
    # It is the frame the motorbike came to rest in (t=5 s), not the start (t=65 s) nor any later one,
    # although the bike moved at 200 s and a chair joined: the incident started with the bike at 5 s.
    assert np.array_equal(pictures[0].image, frames[5.0])
    assert not np.array_equal(pictures[0].image, frames[65.0])
    (mark,) = pictures[0].marks
    assert mark.role == "object" and mark.box == BIKE
    assert mark.label == "2026-05-04 12:00:05 (UTC+7)"  # its local time, as the snapshot stamp writes it
    drawn = decoded(jpegs[0])
    assert yellow_top_edge(drawn, BIKE) and not yellow_top_edge(decoded(cv2.imencode(".jpg", frames[5.0])[1].tobytes()), BIKE)
    # The event's start is that moment too (the report's "when it started").
    assert {v.started_at for _, v in events} == {5.0}
    if os.environ.get("FIRST_SEEN_RENDER"):  # look at it: FIRST_SEEN_RENDER=folder
        out_dir = Path(os.environ["FIRST_SEEN_RENDER"])
        out_dir.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(out_dir / "unit_sidewalk_first_seen.png"), drawn)


def test_no_first_seen_for_an_incident_that_never_starts(street):
    events, _ = run_sidewalk(street, lambda t: ([(7, "motorcycle", BIKE)] if t < 40 else [], []), 120)
    assert events == []  # 40 s at rest is under min_seconds: nothing, and no picture kept


def test_time_stamp_matches_the_snapshot_stamp_offsets():
    when = datetime(2026, 5, 4, 5, 0, 5, tzinfo=UTC)
    assert time_stamp(when.astimezone(HANOI)) == "2026-05-04 12:00:05 (UTC+7)"
    assert time_stamp(when.astimezone(ZoneInfo("Asia/Kolkata"))) == "2026-05-04 10:30:05 (UTC+5:30)"
    assert time_stamp(when) == "2026-05-04 05:00:05 (UTC+0)"
    assert time_stamp(None) == ""


class _NoDetector:
    model_name, model_version = "none", "0"


def test_pipeline_files_first_seen_once_per_phase_and_the_edge_quota_cannot_lose_it(street, tmp_path):
    """The pipeline's evidence stage passes the rule's picture through as `first_seen`; a phase
    whose earlier copy the edge quota deleted (delivered, oldest) still brings the same file."""
    camera = load_camera_config(REPO / "configs" / "cameras" / "vn_haiphong_truccat_junction_sidewalk_vendor_elevated.yaml")
    analyzer = CameraAnalyzer("unit", camera, _NoDetector())  # type: ignore[arg-type]
    events, frames = run_sidewalk(street, bike_parks_all_afternoon, 460)
    when = NOON_HANOI + timedelta(minutes=10)
    files = [analyzer._evidence(v, frames[t], when, tracks([])) for t, v in events]
    shas = set()
    for evidence in files:
        kinds = [e.kind for e in evidence]
        assert kinds.count("first_seen") == 1 and kinds.count("snapshot") == 1, kinds
        shas |= {e.sha256 for e in evidence if e.kind == "first_seen"}
    assert len(shas) == 1
    # The start's files were delivered long ago: the quota deletes them.
    start_dir = tmp_path / "ev" / "start"
    for e in files[0]:
        path = e.write(start_dir)
        os.utime(path, (1, 1))
    later_dir = tmp_path / "ev" / "later"
    for e in files[-1]:
        e.write(later_dir)
    undelivered = {str(p) for p in later_dir.iterdir()}  # the end phase is not delivered yet
    status = enforce_quota([tmp_path / "ev"], sum(e.size for e in files[-1]), undelivered)
    assert status.deleted_files == len(files[0]) and not start_dir.exists()
    kept = [p for p in later_dir.iterdir() if p.name.startswith("first_seen")]
    assert len(kept) == 1 and hashlib.sha256(kept[0].read_bytes()).hexdigest() in shas


def person_at(x: float, tid: int = 5) -> tuple[int, str, tuple[float, float, float, float]]:
    return (tid, "person", (x - 20, 390.0, x + 20, 495.0))


def test_littering_shows_the_owner_at_the_drop_and_the_object_left(street, tmp_path):
    bg, patch = street
    rule = LitteringRule(LitteringConfig(zones=["floor"], left_seconds=4, static_seconds=2), [FLOOR],
                         clock=lambda t: NOON_HANOI + timedelta(seconds=t))
    out, frames = [], {}
    for k in range(int(30 * FPS)):
        t = k / FPS
        # walks in from the left, stands by the object from t=4, puts it down at t=5, walks off right at t=8
        x = 470 - 30 * (4 - t) if t < 4 else (470 if t < 8 else 470 + 40 * (t - 8))
        img = bg.copy()
        if t >= 5:
            img[OBJ[1] : OBJ[3], OBJ[0] : OBJ[2]] = patch
        img[0:3, 0:3] = k  # a corner that tells the frames apart (too small to be an object)
        frames[t] = img
        objs = [person_at(x)] if x < 760 else []
        out += [(t, v) for v in rule.update(Observation(t, tracks(objs), img, Detections.empty(NAMES)))]
    assert len(out) == 1
    t_event, v = out[0]
    (drop,) = [p for p in v.images if p.kind == "first_seen"]
    obj_mark, owner_mark = drop.marks
    assert (obj_mark.role, owner_mark.role) == ("object", "offender")
    assert obj_mark.label == ""
    # (a) the person at the drop: the frame is one in which the owner stands by the object, which is there.
    drop_t = next(t for t, f in frames.items() if np.array_equal(f, drop.image))
    assert 5 <= drop_t <= 8
    ox = (owner_mark.box[0] + owner_mark.box[2]) / 2
    assert abs(ox - 470) < 5 and abs(ox - (OBJ[0] + OBJ[2]) / 2) < 60
    # Its local time on the owner's label (drawn last, so no box crosses it).
    assert owner_mark.label == "#5 person  " + time_stamp((NOON_HANOI + timedelta(seconds=drop_t)).astimezone(HANOI))
    drawn = decoded(evidence_image_jpeg(drop))
    assert yellow_top_edge(drawn, obj_mark.box)
    # (b) the object left: the event is decided once the owner has gone, on a frame with the object
    # and no one near it, and its crop is of the object where it lies.
    assert t_event >= 8 + 4
    crop = next(p for p in v.images if p.kind == "crop")
    assert crop.image.shape[0] >= OBJ[3] - OBJ[1]
    camera = load_camera_config(REPO / "configs" / "cameras" / "tw_sidewalk_bag_left_behind_aboda_video4.yaml")
    evidence = CameraAnalyzer("unit", camera, _NoDetector())._evidence(  # type: ignore[arg-type]
        v, frames[t_event], NOON_HANOI + timedelta(seconds=t_event), tracks([]))
    assert [e.kind for e in evidence] == ["snapshot", "snapshot_clean", "first_seen", "crop"]
    assert isinstance(evidence[2], EvidenceFile) and evidence[2].name == "first_seen-0"
    if os.environ.get("FIRST_SEEN_RENDER"):  # look at it: FIRST_SEEN_RENDER=folder
        out_dir = Path(os.environ["FIRST_SEEN_RENDER"])
        out_dir.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(out_dir / "unit_littering_drop.png"), drawn)
