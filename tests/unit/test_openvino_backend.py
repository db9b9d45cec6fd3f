"""The openvino detector backend: registered beside onnxruntime, the real YOLO11n weights read
directly, boxes that agree with ONNX Runtime's on real frames in FP32 and BF16, precision chosen
by what the CPU has, and clear errors (a missing package, a precision a backend cannot run)."""

from __future__ import annotations

from pathlib import Path

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


def _ir_in_cache(cache: Path, variant: str) -> Path:
    """An OpenVINO IR of yolo11n where `python -m models build-openvino-int8` puts `variant`, with its
    manifest, written without nncf: OpenVINO's own save of the ONNX (FP32 weights). It exercises what
    the backend does with a built IR (checks, load, run); the INT8 accuracy is the harness's verdict."""
    import openvino as ov

    from contract.paths import file_sha256
    from models import openvino_int8 as ovq

    base = weights_path("yolo11n.onnx")
    xml = ovq.ir_path(base.stem, variant, cache)
    ov.save_model(ov.Core().read_model(str(base)), str(xml), compress_to_fp16=False)
    ovq.write_manifest(xml, {
        "variant": variant,
        "base_sha256": file_sha256(base),
        "xml_sha256": file_sha256(xml),
        "bin_sha256": file_sha256(xml.with_suffix(".bin")),
    })
    return xml


@needs_openvino
def test_a_built_ir_is_checked_then_run_without_nncf(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDGE_MODEL_CACHE", str(tmp_path))
    path = weights_path("yolo11n.onnx")
    with pytest.raises(DetectorError, match=r"int8-head.*not found: build it with `python -m models build-openvino-int8"):
        YoloDetector(path, backend="openvino", precision="int8-head")
    assert not ovb.int8_ir_ready(path, "int8-head")
    xml = _ir_in_cache(tmp_path, "int8-head")
    assert ovb.int8_ir_ready(path, "int8-head") and not ovb.int8_ir_ready(path, "int8-ac")
    det = YoloDetector(path, backend="openvino", precision="int8-head")
    assert det.engine.model_file == xml and "INT8 IR yolo11n-openvino-int8-head.xml" in det.engine.why
    assert det.model_version != YoloDetector(path).model_version  # events name the file that ran
    image = cv2.imread(str(data_dir() / "images" / "ultralytics_bus.jpg"))
    ref, got = YoloDetector(path)(image), det(image)
    assert len(ref) >= 4 and match_boxes(_boxes(ref), _boxes(got), iou_min=0.9) >= 0.9 * len(ref)
    # A changed file is refused, never run.
    with open(xml.with_suffix(".bin"), "r+b") as f:
        f.seek(1000)
        f.write(b"\x00\x01\x02\x03")
    assert not ovb.int8_ir_ready(path, "int8-head")
    with pytest.raises(DetectorError, match="does not match its manifest"):
        YoloDetector(path, backend="openvino", precision="int8-head")


@needs_openvino
def test_the_int8_scopes_name_real_ops_of_the_model() -> None:
    """What int8-decode / int8-head keep floating point exists in YOLO11n as OpenVINO reads it."""
    import re

    import openvino as ov

    from models import openvino_int8 as ovq

    model = ov.Core().read_model(str(weights_path("yolo11n.onnx")))
    head = ovq.head_prefix(model)
    assert head == "/model.23/"
    names = [op.get_friendly_name() for op in model.get_ordered_ops()]
    decode = [n for n in names if re.match(f"^{re.escape(head)}[^/]+$", n) or n.startswith(f"{head}dfl/")]
    whole = [n for n in names if n.startswith(head)]
    assert "/model.23/dfl/conv/Conv" in decode and "/model.23/Sigmoid" in decode
    assert not any("/cv2." in n or "/cv3." in n for n in decode)  # the head's convolutions are quantized
    convs = [n for n in whole if n.endswith("/conv/Conv") or n.endswith("/Conv")]
    assert len([n for n in convs if n not in decode]) >= 12  # int8-head keeps the box/class convs too
