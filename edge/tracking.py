"""Multi-object tracking: an adapter over Roboflow's `trackers` ByteTrack (a well-kept library).

ByteTrack suits dense motorbike traffic: it matches low-confidence boxes (occluded riders) in a
second pass instead of dropping them. Only confirmed tracks come out.
"""

from __future__ import annotations

import numpy as np
import supervision as sv
from trackers import ByteTrackTracker

from edge.detections import Detections, TrackedObjects


class ObjectTracker:
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
