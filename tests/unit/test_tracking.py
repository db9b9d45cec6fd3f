import numpy as np

from edge.detections import Detections
from edge.tracking import ObjectTracker

NAMES = ("person", "bicycle", "car", "motorcycle")


def test_rider_and_motorbike_keep_separate_tracks_and_classes():
    """A rider's box covers their motorbike's; each must keep its own id and class."""
    tracker = ObjectTracker(analysis_fps=5.0)
    seen: dict[int, set[str]] = {}
    for k in range(20):
        x = 100 + 4 * k
        dets = Detections(
            xyxy=np.array([[x, 50, x + 40, 130], [x - 5, 80, x + 45, 140]], np.float32),  # rider, motorbike
            confidence=np.array([0.9, 0.85], np.float32),
            class_id=np.array([0, 3], np.int32),
            names=NAMES,
        )
        tracks = tracker.update(dets)
        for i in range(len(tracks)):
            seen.setdefault(int(tracks.track_id[i]), set()).add(tracks.class_name(i))
    assert len(seen) == 2, seen
    assert sorted(next(iter(v)) for v in seen.values()) == ["motorcycle", "person"]
    assert all(len(v) == 1 for v in seen.values())


def test_empty_frames_are_fine():
    tracker = ObjectTracker(analysis_fps=5.0)
    assert len(tracker.update(Detections.empty(NAMES))) == 0
