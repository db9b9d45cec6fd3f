"""A camera chooses its detector model (camera config `detector:`); the node's inference pool serves
every model its cameras use (one session per worker per model), and models/registry.yaml stays the
list of what may be loaded."""

from __future__ import annotations

from pathlib import Path

import cv2
import pytest
import yaml

from contract.configfile import ConfigError
from edge.analyze import make_detector
from edge.config import (
    DetectorConfig,
    NodeConfig,
    camera_detector,
    camera_run_problems,
    load_camera_config,
)
from edge.data import data_dir
from edge.inference import InferencePool
from edge.pipeline import CameraAnalyzer

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "configs" / "cameras" / "motorcyclist_without_helmet.yaml"
BUS = data_dir() / "images" / "ultralytics_bus.jpg"


def _camera_file(tmp_path: Path, detector: dict | None) -> Path:
    data = yaml.safe_load(CONFIG.read_text(encoding="utf-8"))
    if detector is not None:
        data["detector"] = detector
    path = tmp_path / "camera.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def _classes(detections) -> list[str]:
    return [detections.class_name(i) for i in range(len(detections))]


def test_camera_override_picks_its_model_and_keeps_the_rest_of_the_nodes(tmp_path):
    node = DetectorConfig(long_side=960, confidence=0.3)
    old = load_camera_config(_camera_file(tmp_path, None))
    assert old.detector is None
    assert camera_detector(node, old) is node  # an old config runs the node's detector, unchanged

    cam = load_camera_config(_camera_file(tmp_path, {"model": "yolov8n", "confidence": 0.4}))
    cfg = camera_detector(node, cam)
    assert (cfg.model, cfg.confidence, cfg.long_side) == ("yolov8n", 0.4, 960)
    assert node.model == "yolo11n.onnx"  # the node's own config is not touched


def test_unknown_model_name_is_refused_with_the_key(tmp_path):
    with pytest.raises(ConfigError) as err:
        load_camera_config(_camera_file(tmp_path, {"model": "yolo99"}))
    text = str(err.value)
    assert "detector.model" in text and "unknown model 'yolo99'" in text
    assert "yolov8n" in text  # the message lists what is registered


def test_check_config_names_a_missing_model_file(tmp_path, monkeypatch):
    path = _camera_file(tmp_path, {"model": "no_such_detector.onnx"})
    problems = camera_run_problems(path, load_camera_config(path))
    assert any("detector.model: model file not found" in p and "no_such_detector.onnx" in p for p in problems)
    # A registered name whose file is not under EDGE_DATA_DIR/weights: the key and the file it looked for.
    path = _camera_file(tmp_path, {"model": "yolov8n"})
    cam = load_camera_config(path)
    assert camera_run_problems(path, cam) == []
    monkeypatch.setenv("EDGE_DATA_DIR", str(tmp_path / "empty"))
    problems = [p for p in camera_run_problems(path, cam) if ": detector.model: " in p]
    assert len(problems) == 1 and "yolov8n.onnx not found" in problems[0], problems


def test_pool_runs_two_models_with_one_session_each_per_worker():
    node_cfg = DetectorConfig()
    pool = InferencePool(lambda: make_detector(node_cfg), workers=2, config=node_cfg)
    try:
        assert pool.for_detector(DetectorConfig()) is pool  # the node's detector: the pool itself
        v8 = pool.for_detector(DetectorConfig(model="yolov8n"))
        assert pool.for_detector(DetectorConfig(model="yolov8n")) is v8  # made once, shared
        assert sorted(pool.sessions().values()) == [2, 2]  # two models x two workers, no more
        assert isinstance(v8, InferencePool)  # a camera's analyzer still finds the rules' crop models on it
        image = cv2.imread(str(BUS))
        assert image is not None
        mine, theirs = pool(image), v8(image)
        assert (pool.model_name, v8.model_name) == ("yolo11n", "yolov8n")
        assert v8.model_version != pool.model_version
        for found in (_classes(mine), _classes(theirs)):
            assert found.count("person") >= 3 and "bus" in found
        # The view runs yolov8n's static 640x640 input; the pool's own detector its long side 640.
        assert v8.detectors[0].input_size_for(image.shape[:2]) == (640, 640)
        assert pool.detectors[0].input_size_for(image.shape[:2]) != (640, 640)
        # Events name the model the camera chose.
        cam = load_camera_config(CONFIG)
        assert CameraAnalyzer("n", cam, v8, deterministic_ids=True).model_ref.name == "yolov8n"
        v8.close()  # a view does not stop the pool's workers
        assert len(pool.detect(image)) == len(mine)
        stats = pool.stats.snapshot()
        assert stats["requests"] == 3 and stats["runs"] == 3
    finally:
        pool.close()


def test_node_makes_sessions_only_for_the_models_its_cameras_use(tmp_path):
    from edge.node import EdgeNode

    default = load_camera_config(_camera_file(tmp_path, None))
    chosen = load_camera_config(_camera_file(tmp_path, {"model": "yolov8n"}))
    chosen = chosen.model_copy(update={"camera": chosen.camera.model_copy(update={"id": "cam-v8"})})
    cfg = NodeConfig.model_validate({
        "node": {"id": "n1", "state_dir": str(tmp_path / "state")},
        "cameras": [{"config": "unused.yaml"}],
        "inference": {"workers": 1},
    })
    node = EdgeNode(cfg, [default, chosen])
    try:
        assert sorted(node.inference.sessions().values()) == [1, 1]
        names = {w.camera.camera.id: node.inference.for_detector(camera_detector(cfg.detector, w.camera)).model_name
                 for w in node.workers}
        assert names == {default.camera.id: "yolo11n", "cam-v8": "yolov8n"}
        assert len(node.inference.sessions()) == 2  # asking again made nothing new
    finally:
        node.inference.close()


def test_running_node_analyses_each_camera_with_its_chosen_model(tmp_path, mqtt_broker):
    """The camera workers of a running node (file cameras on the test broker) run their own model."""
    import threading

    from edge.node import EdgeNode
    from tests.services import wait_until

    default = load_camera_config(_camera_file(tmp_path, None))
    chosen = load_camera_config(_camera_file(tmp_path, {"model": "yolov8n"}))
    chosen = chosen.model_copy(update={"camera": chosen.camera.model_copy(update={"id": "cam-v8"})})
    cfg = NodeConfig.model_validate({
        "node": {"id": "roles", "state_dir": str(tmp_path / "state")},
        "mqtt": {"url": f"mqtt://127.0.0.1:{mqtt_broker.port}", "topic_prefix": "roles"},
        "cameras": [{"config": "unused.yaml"}],
        "inference": {"workers": 1},
        "clips": {"enabled": False},
    })
    node = EdgeNode(cfg, [default, chosen])
    runner = threading.Thread(target=node.run, daemon=True)
    runner.start()
    try:
        def analysing() -> bool:
            return all(w.analyzer is not None and w.analyzer.stats.frames >= 2 for w in node.workers)

        wait_until(analysing, timeout=90, what="both cameras analysing")
        used = {w.camera.camera.id: w.analyzer.model_ref.name for w in node.workers if w.analyzer is not None}
        assert used == {default.camera.id: "yolo11n", "cam-v8": "yolov8n"}
        detectors = [k for k in node.inference.sessions() if k == "" or k.startswith("detector:")]
        assert len(detectors) == 2  # the node's model and the one camera's choice, nothing per camera
    finally:
        node.stop()
        runner.join(15)


def test_yolov8n_real_weights_load_and_detect():
    det = make_detector(DetectorConfig(model="yolov8n"))
    assert det.static_size == (640, 640) and det.names[3] == "motorcycle"
    image = cv2.imread(str(BUS))
    assert image is not None
    found = _classes(det(image))
    assert found.count("person") >= 3 and "bus" in found
