"""Multi-object tracking: an adapter over Roboflow's `trackers` ByteTrack (a well-kept library).

ByteTrack suits dense motorbike traffic: it matches low-confidence boxes (occluded riders) in a
second pass instead of dropping them. Only confirmed tracks come out.

ByteTrack itself ignores classes, and a rider's box overlaps their motorbike's almost entirely, so
one track would flip between "person" and "motorcycle". Each class group (vehicles, people, other
objects) therefore gets its own tracker; track ids are made unique across groups.
"""

from __future__ import annotations

import numpy as np
import supervision as sv
from trackers import ByteTrackTracker

from edge.detections import VEHICLES, Detections, TrackedObjects

PEOPLE = frozenset({"person"})
_ID_STRIDE = 3  # group g's ids are g, g+3, g+6, ...


def class_group(name: str) -> int:
    return 0 if name in VEHICLES else 1 if name in PEOPLE else 2


class _GroupTracker:
    def __init__(
        self,
        *,
        analysis_fps: float,
        lost_track_seconds: float = 2.0,
        activation_confidence: float = 0.35,
        high_confidence: float = 0.5,
        min_iou: float = 0.1,
        min_consecutive_frames: int = 2,
    ) -> None:
        self._tracker = ByteTrackTracker(
            lost_track_buffer=max(1, round(lost_track_seconds * analysis_fps)),
            frame_rate=analysis_fps,
            track_activation_threshold=activation_confidence,
            minimum_consecutive_frames=min_consecutive_frames,
            minimum_iou_threshold=min_iou,
            high_conf_det_threshold=high_confidence,
        )

    def update(self, detections: Detections) -> TrackedObjects:
        sv_dets = sv.Detections(
            xyxy=detections.xyxy.astype(np.float32),
            confidence=detections.confidence.astype(np.float32),
            class_id=detections.class_id.astype(np.int64),
        )
        out = self._tracker.update(sv_dets)
        if out.tracker_id is None or len(out) == 0:
            return TrackedObjects.empty(detections.names)
        confirmed = out.tracker_id >= 0
        return TrackedObjects(
            xyxy=out.xyxy[confirmed].astype(np.float32),
            confidence=out.confidence[confirmed].astype(np.float32),
            class_id=out.class_id[confirmed].astype(np.int32),
            track_id=out.tracker_id[confirmed].astype(np.int64),
            names=detections.names,
        )


class ObjectTracker:
    """One ByteTrack per class group; the union of their confirmed tracks, with unique ids."""

    def __init__(self, **params: float) -> None:
        self._params = params
        self._groups: dict[int, _GroupTracker] = {}
        self._group_of_class: np.ndarray | None = None

    def update(self, detections: Detections) -> TrackedObjects:
        if self._group_of_class is None:
            self._group_of_class = np.array([class_group(n) for n in detections.names] or [2], np.int32)
        groups = self._group_of_class[detections.class_id] if len(detections) else np.zeros(0, np.int32)
        parts: list[TrackedObjects] = []
        for g in (0, 1, 2):
            mask = groups == g
            if g not in self._groups:
                if not mask.any():
                    continue
                self._groups[g] = _GroupTracker(**self._params)
            # Every existing group tracker sees every frame (even empty) so its tracks age correctly.
            part = self._groups[g].update(detections.select(mask))
            if len(part):
                parts.append(
                    TrackedObjects(part.xyxy, part.confidence, part.class_id, part.track_id * _ID_STRIDE + g, part.names)
                )
        if not parts:
            return TrackedObjects.empty(detections.names)
        return TrackedObjects(
            xyxy=np.concatenate([p.xyxy for p in parts]),
            confidence=np.concatenate([p.confidence for p in parts]),
            class_id=np.concatenate([p.class_id for p in parts]),
            track_id=np.concatenate([p.track_id for p in parts]),
            names=detections.names,
        )
