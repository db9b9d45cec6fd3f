"""The openvino detector backend: registered beside onnxruntime, the real YOLO11n weights read
directly, boxes that agree with ONNX Runtime's on real frames in FP32 and BF16, precision chosen
by what the CPU has, and clear errors (a missing package, a precision a backend cannot run)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from pydantic import ValidationError

from edge.config import DetectorConfig
from edge.data import data_dir, weights_path
from edge.detect.backends import openvino as ovb
from edge.detect.base import DetectorError, backends
from edge.detect.yolo import YoloDetector
from models.agreement import match_boxes

IMAGES = ("vn_intersection_day_2039.jpg", "vn_intersection_redlight_day_1113.jpg", "ultralytics_bus.jpg")

needs_openvino = pytest.mark.skipif(not ovb.available(), reason="the openvino package is not installed")


def _boxes(det) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return det.xyxy, det.class_id, det.confidence


def test_registered_and_selectable_by_config() -> None:
    assert {"onnxruntime", "openvino"} <= set(backends())
    cfg = DetectorConfig(backend="openvino", precision="bf16")
    assert (cfg.backend, cfg.precision) == ("openvino", "bf16")
    with pytest.raises(ValidationError, match="precision"):
        DetectorConfig(precision="int4")


def test_precision_follows_the_cpu() -> None:
    assert ovb.resolve_precision("auto", bf16=True) == "bf16"
    assert ovb.resolve_precision("auto", bf16=False) == "fp32"
    assert ovb.resolve_precision("fp32", bf16=True) == "fp32"
    with pytest.raises(DetectorError, match="no BF16 units"):
        ovb.resolve_precision("bf16", bf16=False)
    with pytest.raises(DetectorError, match="runs auto, fp32, bf16"):
        ovb.resolve_precision("int4", bf16=True)


def test_onnxruntime_refuses_a_precision_it_cannot_switch_to() -> None:
    with pytest.raises(DetectorError, match="bf16 needs backend openvino"):
        YoloDetector(weights_path("yolo11n.onnx"), precision="bf16")


def test_without_the_package_it_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ovb, "available", lambda: False)
    with pytest.raises(DetectorError, match=r"pip install 'ioc-edge\[openvino\]'"):
        YoloDetector(weights_path("yolo11n.onnx"), backend="openvino")
    assert ovb.cpu_has_bf16() is False


@needs_openvino
@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_boxes_agree_with_onnxruntime_on_real_frames(precision: str) -> None:
    if precision == "bf16" and not ovb.cpu_has_bf16():
        pytest.skip("this CPU has no BF16 units")
    path = weights_path("yolo11n.onnx")
    ort_det = YoloDetector(path)
    ov_det = YoloDetector(path, backend="openvino", precision=precision)
    assert ov_det.engine.precision == precision and ov_det.names == ort_det.names
    ref_n = matched = 0
    for name in IMAGES:
        image = cv2.imread(str(data_dir() / "images" / name))
        assert image is not None, name
        ref, got = ort_det(image), ov_det(image)
        strong = ref.confidence >= 0.5  # the boxes a rule acts on; borderline ones may flip either way
        ref_n += int(strong.sum())
        strong_ref = (ref.xyxy[strong], ref.class_id[strong], ref.confidence[strong])
        matched += match_boxes(strong_ref, _boxes(got), iou_min=0.9)  # one-to-one, same class, IoU >= 0.9
        if strong.any():
            # Every strong reference box has a same-class box in the other engine within a few pixels.
            for box, cls in zip(ref.xyxy[strong], ref.class_id[strong], strict=True):
                same = got.xyxy[got.class_id == cls]
                assert len(same) and np.abs(same - box).max(axis=1).min() < 4.0, (name, box, cls)
    assert ref_n >= 10  # the frames hold enough to compare
    assert matched >= 0.9 * ref_n, (matched, ref_n)


@needs_openvino
def test_a_dynamic_model_is_compiled_once_per_input_shape() -> None:
    det = YoloDetector(weights_path("yolo11n.onnx"), backend="openvino", precision="fp32")
    image = cv2.imread(str(data_dir() / "images" / IMAGES[0]))
    det(image)
    det(image)
    det(cv2.resize(image, (480, 640)))  # portrait: another letterbox shape
    assert len(det.engine._compiled) == 2
