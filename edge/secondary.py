"""Secondary models run on crops, a few times per track (never per frame): heads with or without a
helmet, licence plates. Both are Ultralytics YOLO exports read by `edge.detector.YoloDetector`.

Measured on one CPU thread (docs/platform-notes): helmet_yolo12m ~40 ms at 160, ~170 ms at 320;
the plate model ~6 ms at 160, ~22 ms at 320 (square inputs).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edge.data import weights_path
from edge.detector import YoloDetector


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


class CropDetector:
    """A YOLO model applied to one region of a frame; boxes come back in frame pixels."""

    def __init__(self, model: str, input_size: int, confidence: float, threads: int = 1) -> None:
        self.detector = YoloDetector(
            weights_path(model), input_size=(input_size, input_size), confidence=confidence, threads=threads
        )
        self.names = self.detector.names
        self.calls = 0

    def __call__(self, image: np.ndarray, region: tuple[int, int, int, int]) -> list[CropDetection]:
        x1, y1, x2, y2 = region
        crop = image[y1:y2, x1:x2]
        if crop.size == 0 or min(crop.shape[:2]) < 8:
            return []
        self.calls += 1
        d = self.detector(crop)
        return [
            CropDetection(
                d.class_name(i),
                (float(d.xyxy[i, 0] + x1), float(d.xyxy[i, 1] + y1), float(d.xyxy[i, 2] + x1), float(d.xyxy[i, 3] + y1)),
                float(d.confidence[i]),
            )
            for i in range(len(d))
        ]


def cut(image: np.ndarray, box, margin: float = 0.0, min_height: int = 0) -> np.ndarray:
    """A crop for evidence, enlarged (nearest-free, cubic) to at least `min_height` pixels."""
    import cv2

    x1, y1, x2, y2 = clip_box(box, image.shape[:2], margin)
    crop = image[y1:y2, x1:x2].copy()
    if min_height and 0 < crop.shape[0] < min_height:
        k = min_height / crop.shape[0]
        crop = cv2.resize(crop, None, fx=k, fy=k, interpolation=cv2.INTER_CUBIC)
    return crop
