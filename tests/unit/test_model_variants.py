"""Model variants: static input shapes, a tiny built variant against its registry entry, the variant
named in a detector config, and the choice of execution providers (models/, edge/detector.py)."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import onnx
import pytest

import models
from contract.configfile import ConfigError
from edge.analyze import make_detector
from edge.config import DetectorConfig, load_node_config
from edge.detector import PROVIDER_ORDER, DetectorError, YoloDetector, choose_providers
from models import variants as v

TINY = (128, 224)  # a small input keeps the build fast; the code path is the one of 384x640
ANCHORS_TINY = (128 // 8) * (224 // 8) + (128 // 16) * (224 // 16) + (128 // 32) * (224 // 32)


def _dims(value_info) -> list:
    return [d.dim_value if d.HasField("dim_value") else d.dim_param for d in value_info.type.tensor_type.shape.dim]


def test_fixing_the_shape_gives_a_static_input_and_output():
    base = onnx.load(str(models.verify("yolo11n")))
    assert _dims(base.graph.input[0]) == ["batch", 3, "height", "width"]
    fixed = v.fix_input_shape(base, TINY)
    assert _dims(fixed.graph.input[0]) == [1, 3, *TINY]
    assert _dims(fixed.graph.output[0]) == [1, 84, ANCHORS_TINY]
    assert v.static_input_hw(fixed) == TINY
    meta = {p.key: p.value for p in fixed.metadata_props}
    assert meta["imgsz"] == "[128, 224]" and "'person'" in meta["names"]
    with pytest.raises(ValueError, match="already|fixed at"):
        v.fix_input_shape(fixed, (256, 416))  # a static model cannot be re-sized


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """FP32 and INT8 variants at 128x224 (INT8 calibrated on 4 frames), registered in a temporary file."""
    out = tmp_path_factory.mktemp("variants")
    specs = [v.VariantSpec("yolo11n", TINY, "fp32"), v.VariantSpec("yolo11n", TINY, "int8")]
    entries = v.build_variants(specs, out, calibration_frames=4)
    registry = v.write_registry(entries, out / "variants.yaml")
    return out, registry, entries


def test_built_variants_match_their_registry_entries(built):
    out, registry, entries = built
    registered = models.registered_variants(registry)
    assert sorted(registered) == ["yolo11n-128x224", "yolo11n-128x224-int8"]
    for name, entry in registered.items():
        path = models.verify_variant(name, folder=out, registry_path=registry)
        assert entry["sha256"] == models.file_sha256(path) and re.fullmatch(r"[0-9a-f]{64}", entry["sha256"])
        assert entry["input"] == list(TINY) and entry["classes"] == "coco80"
        assert entry["base_sha256"] == models.registry()["yolo11n"]["sha256"]
        assert entry["kept"] is None  # not measured yet: a config cannot select it
        det = YoloDetector(path, input_size=(640, 640))
        assert det.static_size == TINY and det.input_size_for((1080, 1920)) == TINY  # the model's own size wins
        assert len(det.names) == 80 and det.names[0] == "person"
    int8 = registered["yolo11n-128x224-int8"]
    assert int8["precision"] == "int8" and int8["calibration"]["frames"] == 4
    assert re.fullmatch(r"[0-9a-f]{64}", int8["calibration"]["sha256"])
    model = onnx.load(str(out / int8["file"]))
    assert any(n.op_type == "QuantizeLinear" for n in model.graph.node)
    assert {p.key: p.value for p in model.metadata_props}["variant"] == "yolo11n-128x224-int8"


def test_a_rebuild_gives_the_same_bytes(built, tmp_path):
    out, registry, _ = built
    again = v.build_variants([v.VariantSpec("yolo11n", TINY, "int8")], tmp_path, calibration_frames=4)
    assert v.check_against_registry(again, registry) == []


def test_a_changed_file_is_refused(built, tmp_path):
    out, registry, entries = built
    name = "yolo11n-128x224"
    data = bytearray((out / entries[name]["file"]).read_bytes())
    data[-1] ^= 1
    (tmp_path / entries[name]["file"]).write_bytes(bytes(data))
    with pytest.raises(ValueError, match="sha256"):
        models.verify_variant(name, folder=tmp_path, registry_path=registry)
    with pytest.raises(FileNotFoundError, match="build-variants"):
        models.verify_variant(name, folder=tmp_path / "empty", registry_path=registry)


def test_a_config_selects_a_kept_variant_from_the_cache(built, monkeypatch):
    out, registry, entries = built
    text = registry.read_text(encoding="utf-8").replace("kept: null", "kept: true")
    kept = out / "variants-kept.yaml"
    kept.write_text(text, encoding="utf-8")
    monkeypatch.setattr(models, "VARIANTS_PATH", kept)
    monkeypatch.setenv(models.CACHE_ENV, str(out))
    det = make_detector(DetectorConfig(model="yolo11n-128x224-int8", input_size=(384, 640)))
    assert det.static_size == TINY and det.model_name == "yolo11n-128x224-int8"
    # The file in the cache no longer matches the registry: refused before loading.
    monkeypatch.setenv(models.CACHE_ENV, str(out / "elsewhere"))
    with pytest.raises(DetectorError, match="not found"):
        make_detector(DetectorConfig(model="yolo11n-128x224-int8"))


NODE = """
node: {id: node-1}
detector:
  model: MODEL
cameras:
  - config: cam.yaml
    source: rtsp://127.0.0.1:8554/x
"""
CAMERA = "camera: {id: cam-1}\nscene: {reference_size: [640, 480]}\n"


def _node(tmp_path: Path, detector_yaml: str) -> Path:
    (tmp_path / "cam.yaml").write_text(CAMERA, encoding="utf-8")
    path = tmp_path / "node.yaml"
    path.write_text(NODE.replace("  model: MODEL", detector_yaml), encoding="utf-8")
    return path


def test_an_unknown_variant_in_a_config_names_the_file_and_key(tmp_path, built, monkeypatch):
    path = _node(tmp_path, "  model: yolo11n-999x999-int8")
    with pytest.raises(ConfigError) as err:
        load_node_config(path)
    msg = str(err.value)
    assert str(path) in msg and "detector.model" in msg and "yolo11n-999x999-int8" in msg
    assert "variants.yaml" in msg
    # Registered but not (yet) kept: refused too, saying why.
    monkeypatch.setattr(models, "VARIANTS_PATH", built[1])
    path = _node(tmp_path, "  model: yolo11n-128x224-int8")
    with pytest.raises(ConfigError, match=r"detector\.model: .*not kept for use"):
        load_node_config(path)


@pytest.mark.parametrize("detector_yaml", ["  model: yolo11n.onnx", "  model: yolo11n", "  model: /models/custom.onnx"])
def test_files_and_registered_models_are_accepted(tmp_path, detector_yaml):
    node, _ = load_node_config(_node(tmp_path, detector_yaml))
    assert node.detector.model == detector_yaml.split(": ")[1]


def test_an_unknown_provider_in_a_config_names_the_key(tmp_path):
    path = _node(tmp_path, "  model: yolo11n.onnx\n  providers: [CudaExecutionProvider]")
    with pytest.raises(ConfigError, match=r"detector\.providers.*unknown execution provider 'CudaExecutionProvider'"):
        load_node_config(path)


ALL = list(PROVIDER_ORDER)
TRT, CUDA, OV, CPU = ALL


@pytest.mark.parametrize(
    ("wanted", "available", "picked", "why"),
    [
        (
            None,
            [CPU],
            [CPU],
            "CPU (order Tensorrt > CUDA > OpenVINO > CPU; not in this onnxruntime build: Tensorrt, CUDA, OpenVINO",
        ),
        (None, ["AzureExecutionProvider", CPU], [CPU], "available: Azure, CPU"),
        (None, [CUDA, CPU], [CUDA, CPU], "CUDA (order"),
        (None, [CPU, OV, CUDA, TRT], [TRT, CUDA, OV, CPU], "Tensorrt (order"),  # the order is ours, not ORT's
        ([OV, CPU], [CUDA, OV, CPU], [OV, CPU], "OpenVINO (order OpenVINO > CPU; fallback for unsupported nodes: CPU"),
        ([CPU], [TRT, CUDA, CPU], [CPU], "CPU (order CPU; available"),
    ],
)
def test_provider_selection(wanted, available, picked, why):
    got, line = choose_providers(wanted, available)
    assert got == picked
    assert why in line


def test_no_wanted_provider_available_is_an_error():
    with pytest.raises(DetectorError, match="none of the execution providers"):
        choose_providers([CUDA], [CPU])


def test_the_detector_logs_one_line_with_its_provider(caplog):
    with caplog.at_level(logging.INFO, logger="edge.detector"):
        YoloDetector(models.verify("yolo11n"))
    lines = [r.getMessage() for r in caplog.records if "execution provider" in r.getMessage()]
    assert len(lines) == 1
    assert "yolo11n.onnx: input long side 640; backend onnxruntime, execution provider CPU (order Tensorrt > CUDA" in lines[0]
    assert "threads=1" in lines[0]


@pytest.mark.parametrize("name", sorted(models.registered_variants()))
def test_registered_variants_are_complete(name):
    e = models.registered_variants()[name]
    assert e["file"] == f"{name}.onnx" and re.fullmatch(r"[0-9a-f]{64}", e["sha256"])
    assert e["base"] in models.registry() and e["base_sha256"] == models.registry()[e["base"]]["sha256"]
    h, w = e["input"]
    assert h % 32 == 0 and w % 32 == 0 and e["precision"] in ("fp32", "int8") and e["classes"]
    assert isinstance(e["kept"], bool) and e["agreement"]["verdict"].startswith("kept" if e["kept"] else "rejected")
    if e["precision"] == "int8":
        assert e["calibration"]["frames"] > 0 and re.fullmatch(r"[0-9a-f]{64}", e["calibration"]["sha256"])
    if not (models.cache_dir() / e["file"]).is_file():
        pytest.skip(f"{name} not built in {models.cache_dir()} (python -m models build-variants)")
    assert models.verify_variant(name).is_file()


def test_agreement_matching():
    import numpy as np

    from models.agreement import match_boxes, match_events

    ref = (np.array([[0, 0, 10, 10], [20, 20, 30, 30]], np.float32), np.array([0, 2]), np.array([0.9, 0.8]))
    # one box moved a little (matched), one of another class at the same place (not), one extra
    test = (
        np.array([[1, 1, 11, 11], [20, 20, 30, 30], [50, 50, 60, 60]], np.float32),
        np.array([0, 3, 2]),
        np.array([0.9, 0.8, 0.7]),
    )
    assert match_boxes(ref, test) == 1

    def ev(t, type_="red_light", zone=None):
        return {"camera": "c", "type": type_, "phase": "point", "zone": zone, "t": t}

    matched, lost, extra = match_events([ev(10.0), ev(20.0), ev(30.0)], [ev(10.8), ev(21.5), ev(30.0, "speeding")])
    assert len(matched) == 1 and [e["t"] for e in lost] == [20.0, 30.0] and [e["t"] for e in extra] == [21.5, 30.0]
