"""The many-camera runtime: the shared inference pool, motion gating, slot accounting, bench search."""

from __future__ import annotations

import threading

import cv2
import numpy as np
import pytest

from edge.bench import largest_realtime
from edge.config import CameraConfig
from edge.data import data_dir, weights_path
from edge.detector import YoloDetector
from edge.frames import Frame
from edge.inference import InferencePool
from edge.motion import MotionGate
from edge.pipeline import CameraAnalyzer
from edge.sources import FrameSelector


@pytest.fixture(scope="module")
def bus() -> np.ndarray:
    img = cv2.imread(str(data_dir() / "images" / "ultralytics_bus.jpg"))
    assert img is not None
    return img


def _same(a, b) -> None:
    assert len(a) == len(b) > 0
    np.testing.assert_allclose(a.xyxy, b.xyxy, atol=0.05)
    np.testing.assert_array_equal(a.class_id, b.class_id)


def test_pool_gives_what_one_detector_gives_from_many_threads(bus: np.ndarray) -> None:
    direct = YoloDetector(weights_path("yolo11n.onnx"))(bus)
    pool = InferencePool(lambda: YoloDetector(weights_path("yolo11n.onnx")), workers=2)
    try:
        results: list = [None] * 6
        small = cv2.resize(bus, (405, 540))  # another input size in the same queue

        def camera(i: int) -> None:
            results[i] = pool.detect(bus if i % 2 == 0 else small)

        threads = [threading.Thread(target=camera, args=(i,)) for i in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        for r in results[::2]:
            _same(r, direct)
        assert all(len(r) > 0 for r in results[1::2])
        assert pool.stats.snapshot()["requests"] == 6
        assert len(pool.detectors) == 2
    finally:
        pool.close()


def test_batched_runs_give_the_same_detections(bus: np.ndarray) -> None:
    direct = YoloDetector(weights_path("yolo11n.onnx"))(bus)
    pool = InferencePool(lambda: YoloDetector(weights_path("yolo11n.onnx")), workers=1, max_batch=4)
    try:
        assert pool.max_batch == 4  # yolo11n.onnx has a dynamic batch dimension
        results: list = [None] * 8
        barrier = threading.Barrier(8)

        def camera(i: int) -> None:
            barrier.wait()
            results[i] = pool.detect(bus)

        threads = [threading.Thread(target=camera, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        for r in results:
            _same(r, direct)
        snap = pool.stats.snapshot()
        assert snap["requests"] == 8 and snap["runs"] < 8, snap  # some frames shared a run
    finally:
        pool.close()


def test_motion_gate_skips_still_frames_and_wakes_on_motion() -> None:
    rng = np.random.default_rng(0)
    scene = rng.integers(60, 200, (1080, 1920, 3), dtype=np.uint8)
    scene = cv2.GaussianBlur(scene, (0, 0), 3)
    gate = MotionGate(max_skip_s=2.0)
    noisy = lambda: np.clip(scene.astype(np.int16) + rng.integers(-3, 4, scene.shape), 0, 255).astype(np.uint8)  # noqa: E731
    assert gate.should_detect(scene, 0.0)  # the first frame always runs
    assert not any(gate.should_detect(noisy(), 0.2 * k) for k in range(1, 9))  # sensor noise is no motion
    assert gate.should_detect(scene, 2.0)  # refreshed at least every max_skip_s
    moved = scene.copy()
    cv2.rectangle(moved, (900, 500), (1000, 600), (255, 255, 255), -1)  # a 100x100 object appears
    assert gate.should_detect(moved, 2.2)
    assert not gate.should_detect(moved, 2.4)
    assert gate.stats.gated == 9 and gate.stats.detected == 3


class _CountingDetector:
    model_name, model_version = "fake", "0"

    def __init__(self, inner: YoloDetector) -> None:
        self.inner, self.calls = inner, 0
        self.names = inner.names

    def __call__(self, image: np.ndarray):
        self.calls += 1
        return self.inner(image)


def test_gated_frames_keep_stationary_objects_tracked(bus: np.ndarray) -> None:
    from datetime import UTC, datetime

    camera = CameraConfig.model_validate(
        {"camera": {"id": "cam", "analysis_fps": 5}, "scene": {"reference_size": [810, 1080], "zones": []}}
    )
    detector = _CountingDetector(YoloDetector(weights_path("yolo11n.onnx")))
    analyzer = CameraAnalyzer("n", camera, detector, motion=MotionGate(max_skip_s=5.0))
    seen: list = []
    update = analyzer.tracker.update
    analyzer.tracker.update = lambda d: seen.append(update(d)) or seen[-1]  # type: ignore[method-assign]
    for k in range(10):  # two seconds of a still scene
        analyzer.process(Frame(image=bus, pts=0.2 * k, wall_time=0.0, index=k), datetime.now(UTC))
    assert detector.calls == 1 and analyzer.stats.gated == 9
    # The bus and the people are tracked on every frame, the gated ones too: nothing "left".
    names = [{t.class_name(i) for i in range(len(t))} for t in seen[2:]]
    assert all("bus" in n and "person" in n for n in names), names
    ids = [set(t.track_id.tolist()) for t in seen[2:]]
    assert all(i == ids[0] for i in ids)  # the same tracks throughout


def test_frame_selector_counts_the_slots_a_late_consumer_missed() -> None:
    sel = FrameSelector(5.0)
    kept = [t for t in [i / 25 for i in range(26)] if sel.keep(t)]
    assert len(kept) == 6 and sel.missed == 0  # 0, 0.2, ... 1.0
    # The consumer was busy: the next frame it sees is 0.9 s later; slots 1.2 .. 1.8 were missed.
    assert sel.keep(1.92)
    assert sel.missed == 3


def test_largest_realtime_search() -> None:
    calls: list[int] = []

    def run(n: int) -> dict:
        calls.append(n)
        return {"realtime": n <= 11}

    best, results = largest_realtime(run, 1, 32, lambda n, r: None)
    assert best == 11
    assert calls[:5] == [1, 2, 4, 8, 16] and set(results) == set(calls)
    assert largest_realtime(lambda n: {"realtime": False}, 1, 32, lambda n, r: None)[0] == 0
    assert largest_realtime(lambda n: {"realtime": True}, 1, 8, lambda n, r: None)[0] == 8
    calls.clear()  # a run already made is not repeated
    assert largest_realtime(run, 4, 32, lambda n, r: None, known={4: {"realtime": True}})[0] == 11
    assert 4 not in calls
