"""Crops of a frame for evidence and for secondary models: pure numpy (OpenCV only to enlarge)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class CropDetection:
    label: str
    box: tuple[float, float, float, float]  # frame pixels
    confidence: float


def clip_box(box, frame_hw: tuple[int, int], margin: float = 0.0) -> tuple[int, int, int, int]:
    """A box grown by `margin` (share of its size) on every side and clipped to the frame."""
    x1, y1, x2, y2 = (float(v) for v in box)
    mx, my = margin * (x2 - x1), margin * (y2 - y1)
    h, w = frame_hw
    return (max(0, int(x1 - mx)), max(0, int(y1 - my)), min(w, int(np.ceil(x2 + mx))), min(h, int(np.ceil(y2 + my))))


def cut(image: np.ndarray, box, margin: float = 0.0, min_height: int = 0) -> np.ndarray:
    """A crop for evidence, enlarged (nearest-free, cubic) to at least `min_height` pixels."""
    import cv2

    x1, y1, x2, y2 = clip_box(box, image.shape[:2], margin)
    crop = image[y1:y2, x1:x2].copy()
    if min_height and 0 < crop.shape[0] < min_height:
        k = min_height / crop.shape[0]
        crop = cv2.resize(crop, None, fx=k, fy=k, interpolation=cv2.INTER_CUBIC)
    return crop
