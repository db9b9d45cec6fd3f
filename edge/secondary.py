"""Secondary models run on crops, a few times per track (never per frame): heads with or without a
helmet, licence plates. Both are Ultralytics YOLO exports read by `edge.detector.YoloDetector`.

Measured on one CPU thread (docs/platform-notes): helmet_yolo12m ~40 ms at 160, ~170 ms at 320;
the plate model ~6 ms at 160, ~22 ms at 320 (square inputs).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import numpy as np

from edge.crops import CropDetection, clip_box, cut
from edge.data import weights_path
from edge.detections import Detections
from edge.detector import YoloDetector

__all__ = ["CropDetection", "CropDetector", "ModelRunner", "RunnerFactory", "clip_box", "cut", "local_runner"]


class ModelRunner(Protocol):
    """Runs one model on an image (a crop): the node's shared inference pool
    (`InferencePool.runner`) or, offline, a local session."""

    names: tuple[str, ...]

    def __call__(self, image: np.ndarray) -> Detections: ...


# (model file, square input size, confidence) -> a runner for it; BuildContext.crop_models.
RunnerFactory = Callable[[str, int, float], ModelRunner]


def local_runner(model: str, input_size: int, confidence: float, threads: int = 1) -> ModelRunner:
    return crop_model(model, input_size, confidence, threads)


def crop_model(model: str, input_size: int, confidence: float, threads: int = 1) -> YoloDetector:
    """A crop model on the engine `backend: auto` picks for its file (models/backends.yaml holds
    crop-level verdicts for the helmet and plate models: benchmarks/crop_agreement.py), else ONNX Runtime."""
    from edge.analyze import auto_engine

    path = weights_path(model)
    backend, precision = auto_engine(path)
    return YoloDetector(
        path, input_size=(input_size, input_size), confidence=confidence, threads=threads, backend=backend,
        precision=precision,
    )


class CropDetector:
    """A YOLO model applied to one region of a frame; boxes come back in frame pixels."""

    def __init__(
        self, model: str, input_size: int, confidence: float, threads: int = 1, runners: RunnerFactory | None = None
    ) -> None:
        self.detector = (runners or local_runner)(model, input_size, confidence)
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
