"""Secondary models (heads, plates) run on the node's shared inference pool, not on the camera's
thread: the same events as a local session, and the pool's workers hold the sessions."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import cv2
import pytest

from edge.config import load_camera_config
from edge.data import data_dir, video_path, weights_path
from edge.detector import YoloDetector
from edge.inference import InferencePool
from edge.pipeline import CameraAnalyzer
from edge.secondary import CropDetector
from edge.sources import VideoFileSource

CONFIG = Path(__file__).resolve().parents[2] / "configs" / "cameras" / "motorcyclist_without_helmet.yaml"


def _events(detector) -> list[tuple[str, float, tuple]]:
    camera = load_camera_config(CONFIG)
    analyzer = CameraAnalyzer("node", camera, detector, deterministic_ids=True, motion=None)
    start = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)
    out = []
    source = VideoFileSource(video_path(camera.camera.source), camera.camera.analysis_fps)
    for frame in source.frames():
        for rec in analyzer.process(frame, start + timedelta(seconds=frame.pts)):
            e = rec.event
            out.append((e.type, round(frame.pts, 2), e.objects[0].box, tuple(x.kind for x in e.evidence)))
    return out


def test_helmet_and_plate_models_run_on_the_pool_with_the_same_events():
    local = _events(YoloDetector(weights_path("yolo11n.onnx")))
    pool = InferencePool(lambda: YoloDetector(weights_path("yolo11n.onnx")), workers=2)
    try:
        pooled = _events(pool)
        keys = set(pool._models)
    finally:
        pool.close()
    assert [e[0] for e in local] == ["no_helmet"]
    assert pooled == local
    # The detector, the head model, the plate model and its text reader, each with a session per worker.
    # (The head model at the input sizes the rider crops asked for: small riders are upscaled.)
    helmet = {k for k in keys if k.startswith("helmet_yolo12m.onnx@")}
    # Plate stage: the plate detector, the text recogniser and its line finder (PP-OCRv6 det).
    plates = {
        "license_plate_yolov8n.onnx@320@0.3", "plate-text@PP-OCRv6_rec_small.onnx", "plate-lines@PP-OCRv6_det_small.onnx"
    }
    assert keys - helmet == {"", *plates} and "helmet_yolo12m.onnx@160@0.35" in helmet
    assert all(160 <= int(k.split("@")[1]) <= 320 for k in helmet), helmet


def test_a_pool_runner_is_the_local_model_run_by_a_pool_worker():
    image = cv2.imread(str(data_dir() / "images" / "ultralytics_bus.jpg"))
    pool = InferencePool(lambda: YoloDetector(weights_path("yolo11n.onnx")), workers=1)
    seen: list[str] = []
    try:
        runner = pool.crop_models("helmet_yolo12m.onnx", 320, 0.35)
        original = pool._models[runner.key][0].infer

        def spy(blob):
            seen.append(threading.current_thread().name)
            return original(blob)

        pool._models[runner.key][0].infer = spy
        local = CropDetector("helmet_yolo12m.onnx", 320, 0.35)
        pooled = CropDetector("helmet_yolo12m.onnx", 320, 0.35, runners=pool.crop_models)
        region = (0, 200, 810, 700)  # the people by the bus
        assert pooled(image, region) == local(image, region)
        assert len(local(image, region)) > 0
    finally:
        pool.close()
    assert seen == ["inference-0"]


@pytest.mark.parametrize("workers", [1])
def test_the_pool_serves_the_detector_and_a_secondary_model_from_one_queue(workers):
    image = cv2.imread(str(data_dir() / "images" / "ultralytics_bus.jpg"))
    pool = InferencePool(lambda: YoloDetector(weights_path("yolo11n.onnx")), workers=workers)
    try:
        heads = pool.crop_models("helmet_yolo12m.onnx", 160, 0.35)
        results: dict[str, int] = {}

        def run(name, fn):
            results[name] = len(fn(image))

        threads = [threading.Thread(target=run, args=(n, f)) for n, f in (("det", pool.detect), ("heads", heads))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
    finally:
        pool.close()
    assert results["det"] > 0 and results["heads"] > 0
    assert pool.stats.snapshot()["requests"] == 2
