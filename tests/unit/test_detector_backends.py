"""Detector backends are plug-ins: one module registers one, the runner and the pool use it unchanged."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.config import DetectorConfig
from edge.data import data_dir, weights_path
from edge.detect.backends.onnxruntime import OrtEngine
from edge.detect.base import BackendSpec, DetectorError, backends, open_engine, register_backend
from edge.detector import YoloDetector
from edge.inference import InferencePool


class _NumpyLetterboxCheck:
    """A backend as a third party would write one: here it runs the model through ONNX Runtime but
    checks and counts every blob it is given (what a new engine must accept)."""

    def __init__(self, model_path: Path, *, threads: int = 1, providers: list[str] | None = None) -> None:
        self.inner = OrtEngine(model_path, threads=threads)
        self.input_shape = self.inner.input_shape
        self.metadata = self.inner.metadata
        self.device = "test-device"
        self.why = "test backend"
        self.blobs: list[tuple[int, ...]] = []

    def run(self, blob: np.ndarray) -> np.ndarray:
        assert blob.dtype == np.float32 and blob.ndim == 4 and blob.shape[1] == 3
        assert float(blob.min()) >= 0.0 and float(blob.max()) <= 1.0
        self.blobs.append(blob.shape)
        return self.inner.run(blob)


register_backend(BackendSpec(key="test-checking", open=_NumpyLetterboxCheck, module=__name__))


@pytest.fixture(scope="module")
def bus() -> np.ndarray:
    img = cv2.imread(str(data_dir() / "images" / "ultralytics_bus.jpg"))
    assert img is not None
    return img


def test_built_in_backends_are_found():
    assert "onnxruntime" in backends()


def test_a_registered_backend_runs_the_same_model_with_the_same_detections(bus):
    ref = YoloDetector(weights_path("yolo11n.onnx"))(bus)
    det = YoloDetector(weights_path("yolo11n.onnx"), backend="test-checking")
    got = det(bus)
    assert det.provider == "test-device" and det.engine.blobs == [(1, 3, 640, 480)]
    assert len(got) == len(ref) > 0
    np.testing.assert_allclose(got.xyxy, ref.xyxy, atol=1e-3)
    np.testing.assert_array_equal(got.class_id, ref.class_id)


def test_the_pool_drives_any_backend_through_preprocess_infer_decode(bus):
    made: list[YoloDetector] = []

    def make() -> YoloDetector:
        made.append(YoloDetector(weights_path("yolo11n.onnx"), backend="test-checking"))
        return made[-1]

    pool = InferencePool(make, workers=1)
    try:
        out = pool.detect(bus)
    finally:
        pool.close()
    assert len(out) > 0 and made[0].engine.blobs == [(1, 3, 640, 480)]


def test_unknown_backend_is_a_config_error_naming_the_choices():
    with pytest.raises(ValueError, match="unknown detector backend 'tensorrtt'.*onnxruntime"):
        DetectorConfig(backend="tensorrtt")
    with pytest.raises(DetectorError, match="unknown detector backend"):
        open_engine("nope", weights_path("yolo11n.onnx"))
    with pytest.raises(DetectorError, match="model file not found"):
        open_engine("onnxruntime", Path("/nonexistent/model.onnx"))
