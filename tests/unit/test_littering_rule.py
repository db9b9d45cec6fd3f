"""The littering rule on real pixels (a real background, a real object patch) and scripted tracks:
owner association, left-behind timing, pick-ups, detector classes, evidence images."""

import cv2
import numpy as np
import pytest

from edge.config import LitteringConfig
from edge.data import data_dir
from edge.detections import Detections, TrackedObjects
from edge.evidence import evidence_image_jpeg
from edge.geometry import PolygonZone
from edge.rules import Observation
from edge.rules.littering import LitteringRule

NAMES = ("person", "bicycle", "car", "motorcycle", "bottle")
ZONE = PolygonZone("floor", "littering_watch", np.array([[0, 200], [768, 200], [768, 576], [0, 576]], np.float32))
FPS = 2.0
OBJ = (400, 430, 450, 490)  # x1, y1, x2, y2 where the object lands


@pytest.fixture(scope="module")
def material():
    cap = cv2.VideoCapture(str(data_dir() / "videos" / "opencv_vtest_pedestrians.avi"))
    ok, bg = cap.read()
    cap.release()
    assert ok
    bus = cv2.imread(str(data_dir() / "images" / "ultralytics_bus.jpg"))
    return bg, bus[700:760, 300:350].copy()


def person_at(x: float, tid: int = 5) -> tuple[int, str, tuple[float, float, float, float]]:
    return (tid, "person", (x - 20, 390.0, x + 20, 495.0))


def tracks(objs) -> TrackedObjects:
    if not objs:
        return TrackedObjects.empty(NAMES)
    return TrackedObjects(
        xyxy=np.array([b for _, _, b in objs], np.float32),
        confidence=np.full(len(objs), 0.9, np.float32),
        class_id=np.array([NAMES.index(c) for _, c, _ in objs], np.int32),
        track_id=np.array([t for t, _, _ in objs], np.int64),
        names=NAMES,
    )


def run(material, script, seconds, **cfg):
    bg, patch = material
    rule = LitteringRule(LitteringConfig(zones=["floor"], left_seconds=4, static_seconds=2, **cfg), [ZONE])
    out = []
    for k in range(int(seconds * FPS)):
        t = k / FPS
        objs, object_there, dets = script(t)
        img = bg.copy()
        if object_there:
            img[OBJ[1] : OBJ[3], OBJ[0] : OBJ[2]] = patch
        obs = Observation(t, tracks(objs), img, dets or Detections.empty(NAMES))
        out += [(t, v) for v in rule.update(obs)]
    return rule, out


def walk(t: float, t_stop: float, t_go: float) -> float:
    """x of a person walking in from the left, standing by the object, then walking off right."""
    if t < t_stop:
        return 470 - 30 * (t_stop - t)
    return 470 if t < t_go else 470 + 40 * (t - t_go)


def test_dropped_and_left_is_one_event_naming_the_person(material):
    def script(t):
        x = walk(t, 4, 8)
        objs = [person_at(x)] if x < 760 else []
        return objs, t >= 5, None

    rule, events = run(material, script, 30)
    assert len(events) == 1
    t, v = events[0]
    assert v.type.value == "littering" and v.zone.id == "floor"
    assert v.started_at == pytest.approx(5.0)
    obj, owner = v.offenders
    assert owner.class_name == "person" and owner.track_id == 5
    assert abs(obj.box[0] - OBJ[0]) < 25 and abs(obj.box[3] - OBJ[3]) < 25
    # Reported once the owner has been away left_seconds (gone from near it from about t=9).
    assert 12 <= t <= 16
    kinds = [picture.kind for picture in v.images]
    assert kinds == ["first_seen", "crop"]
    appearance = v.images[0]
    assert appearance.image.shape == material[0].shape
    # The rule marks the object and its owner; the evidence stage draws them (rules never draw).
    assert [m.role for m in appearance.marks] == ["object", "offender"]
    assert appearance.marks[1].label == "#5 person"
    drawn = cv2.imdecode(np.frombuffer(evidence_image_jpeg(appearance), np.uint8), cv2.IMREAD_COLOR)
    x1, y1, x2, y2 = (int(c) for c in appearance.marks[0].box)
    edge = drawn[y1, x1 + 2 : x2 - 2].astype(int)  # the object's box top edge: yellow (BGR 0, 220, 255)
    assert abs(edge[:, 0].mean() - 0) < 60 and abs(edge[:, 2].mean() - 255) < 60
    assert not np.array_equal(drawn, appearance.image)


def test_put_down_and_picked_up_is_not_litter(material):
    def script(t):
        x = walk(t, 4, 14)
        return ([person_at(x)] if x < 760 else []), 5 <= t < 13, None

    rule, events = run(material, script, 30)
    assert events == []
    assert rule.forgotten >= 1  # it was seen, then went away with its owner


def test_object_nobody_was_near_is_ignored_by_default(material):
    # Appears with no one around (a lighting artefact, a thrown shadow): no owner, no event.
    def script(t):
        return [], t >= 5, None

    assert run(material, script, 25)[1] == []
    _, events = run(material, script, 25, require_owner=False)
    assert len(events) == 1 and len(events[0][1].offenders) == 1


def test_detector_class_object_is_used_with_its_name(material):
    # A detected bottle, static-change off: the detector's class names the object.
    def script(t):
        x = walk(t, 4, 8)
        d = None
        if t >= 5:
            d = Detections(np.array([OBJ], np.float32), np.array([0.7], np.float32), np.array([4], np.int32), NAMES)
        return ([person_at(x)] if x < 760 else []), False, d

    _, events = run(material, script, 30, static_change={"enabled": False})
    assert len(events) == 1
    assert events[0][1].offenders[0].class_name == "bottle"


def test_parked_vehicle_is_not_litter(material):
    # A car (its pixels: the patch) parks on the watched floor and stays: its own box masks it.
    car = (7, "car", (OBJ[0] - 5.0, OBJ[1] - 5.0, OBJ[2] + 5.0, OBJ[3] + 5.0))

    def script(t):
        return ([car] if t >= 5 else []), t >= 5, None

    rule, events = run(material, script, 30)
    assert events == [] and rule.items == []
