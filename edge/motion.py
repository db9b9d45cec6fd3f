"""Motion gating: skip detection on frames where nothing moved since the last detection.

As Frigate does, a cheap difference on a small grey copy of the frame decides whether the costly
detector runs. Unlike a plain skip, the previous detections are handed on for a skipped frame, so
the tracker keeps every stationary object at its place and the rules keep timing it (a parked car
stays parked; an illegal-stopping timer keeps running). A refresh every `max_skip_s` runs the
detector anyway: slow changes (a shadow, dusk) and confidence drift never go stale for long.

The comparison is against the frame the detector last ran on, not the previous frame, so a slow
walker who moves a few pixels per frame still triggers detection once the change adds up.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import cv2
import numpy as np

if TYPE_CHECKING:
    from edge.config import CameraConfig


@dataclass
class MotionStats:
    frames: int = 0
    detected: int = 0  # frames the detector ran on
    gated: int = 0  # frames that reused the previous detections


class MotionGate:
    def __init__(
        self,
        *,
        width: int = 192,
        pixel_threshold: int = 20,
        min_changed_fraction: float = 0.0015,
        max_skip_s: float = 2.0,
    ) -> None:
        self.width = width
        self.pixel_threshold = pixel_threshold
        self.min_changed_fraction = min_changed_fraction
        self.max_skip_s = max_skip_s
        self._reference: np.ndarray | None = None
        self._reference_t = 0.0
        self.stats = MotionStats()
        self.last_changed_fraction = 0.0

    def _small(self, image: np.ndarray) -> np.ndarray:
        h, w = image.shape[:2]
        small = cv2.resize(image, (self.width, max(1, round(h * self.width / w))), interpolation=cv2.INTER_AREA)
        grey = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY) if small.ndim == 3 else small
        return cv2.GaussianBlur(grey, (5, 5), 0)

    def should_detect(self, image: np.ndarray, t: float) -> bool:
        """True when the detector must run on this frame (and it becomes the new reference)."""
        self.stats.frames += 1
        small = self._small(image)
        ref = self._reference
        run = ref is None or ref.shape != small.shape or t - self._reference_t >= self.max_skip_s or t < self._reference_t
        if not run:
            assert ref is not None
            changed = cv2.absdiff(small, ref) > self.pixel_threshold
            self.last_changed_fraction = float(np.count_nonzero(changed)) / changed.size
            run = self.last_changed_fraction >= self.min_changed_fraction
        if run:
            self._reference, self._reference_t = small, t
            self.stats.detected += 1
        else:
            self.stats.gated += 1
        return run


def motion_gate_for(camera: CameraConfig) -> MotionGate | None:
    """The gate a camera config asks for (None when gating is off)."""
    mg = camera.motion_gating
    if not mg.enabled:
        return None
    return MotionGate(
        min_changed_fraction=mg.min_changed_fraction, pixel_threshold=mg.pixel_threshold, max_skip_s=mg.max_skip_s
    )
