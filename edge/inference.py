"""Detection for every camera of a node: a fixed pool of inference workers, not one model per camera.

Why: a box watches more cameras than it has cores. One ONNX Runtime session per camera would
oversubscribe the cores (N sessions fighting over 2 cores) and cost a model's memory per camera.
Here `workers` threads (default: one per core) each own a session on one intra-op thread (one
thread per worker uses the cores best, platform notes); cameras hand in frames and wait for their
detections. Requests are served in arrival order, so under overload every camera is slowed alike
and its source drops frames evenly (the node's metrics say so) instead of one camera starving.

Batching: a worker takes up to `max_batch` queued requests of the same input shape into one run.
On a GPU that pays (one launch, full occupancy); on a CPU with one thread per worker it does not
(ORT's batch of N costs N frames), so the default is 1 there.

Models per role: a camera may choose its own detector model (camera config `detector:`);
`for_detector` gives that camera a view of the pool whose `detect` runs it. Every worker holds one
session per model actually used (the node's, each camera's choice, the rules' secondary models), all
behind the same queue, so a second model costs its sessions' memory, not more threads.
"""

from __future__ import annotations

import copy
import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from edge.detections import Detections
from edge.detector import Letterbox, YoloDetector

if TYPE_CHECKING:
    from edge.config import DetectorConfig

log = logging.getLogger(__name__)


class InferenceError(RuntimeError):
    pass


@dataclass(eq=False)
class _Request:
    blob: np.ndarray
    letterbox: Letterbox
    frame_hw: tuple[int, int]
    model: str = ""  # "" the node's detector; else a secondary model added with `runner()`
    done: threading.Event = field(default_factory=threading.Event)
    result: Detections | None = None
    error: BaseException | None = None
    queued_at: float = field(default_factory=time.perf_counter)


@dataclass
class PoolStats:
    requests: int = 0
    runs: int = 0  # ORT runs (a batch is one run)
    busy_s: float = 0.0  # worker time in ORT
    wait_s: float = 0.0  # time requests waited in the queue
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add_run(self, frames: int, busy_s: float, wait_s: float) -> None:
        with self._lock:
            self.requests += frames
            self.runs += 1
            self.busy_s += busy_s
            self.wait_s += wait_s

    def snapshot(self) -> dict[str, float]:
        with self._lock:
            return {
                "requests": self.requests,
                "runs": self.runs,
                "mean_batch": round(self.requests / self.runs, 2) if self.runs else 0.0,
                "busy_s": round(self.busy_s, 2),
                "mean_wait_ms": round(1000 * self.wait_s / self.requests, 1) if self.requests else 0.0,
            }


def default_workers() -> int:
    """One per core this process may use (cgroup/affinity aware where the OS says so)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


class InferencePool:
    """`detect(image)` from any thread; `workers` sessions from `make_detector()`."""

    def __init__(
        self,
        make_detector: Callable[[], YoloDetector],
        workers: int | None = None,
        max_batch: int = 1,
        config: DetectorConfig | None = None,
    ) -> None:
        """`config`: what `make_detector` makes (the node's `detector:`), so that a camera choosing the
        same gets the pool itself from `for_detector`."""
        n = workers or default_workers()
        if max_batch < 1:
            raise ValueError("max_batch must be >= 1")
        self.detectors = [make_detector() for _ in range(n)]
        # Every worker holds a session of every model: the node's detector ("") and the secondary
        # models rules ask for (heads, plates), so all of them share the same workers and queue.
        self._models: dict[str, list[YoloDetector]] = {"": self.detectors}
        self._models_lock = threading.Lock()
        first = self.detectors[0]
        # A model exported with a fixed batch of 1 cannot take a batch.
        self.max_batch = max_batch if first.max_batch is None else min(max_batch, first.max_batch)
        self.config = config
        self._key = ""  # the model `detect` runs: "" the node's detector; a view's: its camera's choice
        self._view = False
        self._views: dict[str, InferencePool] = {}
        self._wanted_batch = max_batch
        self._batch: dict[str, int] = {"": self.max_batch}  # detector models batch; secondary ones do not
        self.stats = PoolStats()
        self._queue: queue.Queue[_Request | None] = queue.Queue()
        self._threads = [
            threading.Thread(target=self._work, args=(i,), name=f"inference-{i}", daemon=True)
            for i in range(len(self.detectors))
        ]
        for t in self._threads:
            t.start()
        log.info(
            "inference pool: %d worker(s), one %s session each (%s), max batch %d",
            n,
            first.model_name,
            first.provider,
            self.max_batch,
        )

    # The camera's view of the pool: a detector that happens to be shared.
    @property
    def model_name(self) -> str:
        return self._models[self._key][0].model_name

    @property
    def model_version(self) -> str:
        return self._models[self._key][0].model_version

    @property
    def names(self) -> tuple[str, ...]:
        return self._models[self._key][0].names

    def sessions(self) -> dict[str, int]:
        """Sessions held per model key ("" the node's detector): one per worker for each model in use."""
        with self._models_lock:
            return {k: len(ms) for k, ms in self._models.items()}

    def for_detector(self, config: DetectorConfig, make: Callable[[], YoloDetector] | None = None) -> InferencePool:
        """The pool as a camera whose detector is `config` sees it: the pool itself when that is the
        node's detector, else a view of it whose `detect` runs that model (its sessions made once per
        worker, shared by every camera that chooses the same; queue, workers, secondary models and
        stats stay the pool's). `make` builds one session of it (default: edge.analyze.make_detector)."""
        if self.config is not None and config == self.config:
            return self
        key = "detector:" + config.model_dump_json()
        if make is None:
            from edge.analyze import make_detector

            def make() -> YoloDetector:
                return make_detector(config)

        self.runner(key, make)
        with self._models_lock:
            view = self._views.get(key)
            if view is None:
                first = self._models[key][0]
                limit = self._wanted_batch if first.max_batch is None else min(self._wanted_batch, first.max_batch)
                self._batch[key] = limit
                view = copy.copy(self)
                view._key, view._view, view.max_batch = key, True, limit
                view.detectors = self._models[key]
                self._views[key] = view
        return view

    def __call__(self, image: np.ndarray) -> Detections:
        return self.detect(image)

    def runner(self, key: str, make: Callable[[], YoloDetector]) -> PoolRunner:
        """A secondary model on this pool's workers (made once per worker, shared by every camera
        that asks with the same key)."""
        with self._models_lock:
            if key not in self._models:
                self._models[key] = [make() for _ in self.detectors]
                log.info("inference pool: + %s (%d session(s))", self._models[key][0].model_name, len(self.detectors))
        return PoolRunner(self, key)

    def crop_models(self, model: str, input_size: int, confidence: float) -> PoolRunner:
        """`BuildContext.crop_models` for the rules of a node: a secondary model file at a square
        input size and confidence, run by the pool."""
        from edge.secondary import crop_model

        # On the engine backend auto picks for the model file (crop-level verdicts), else ONNX Runtime.
        return self.runner(f"{model}@{input_size}@{confidence}", lambda: crop_model(model, input_size, confidence))

    def detect(self, image: np.ndarray, model: str | None = None) -> Detections:
        """`model`: a key of `runner()`; None: this pool's (or view's) detector."""
        model = self._key if model is None else model
        # Letterbox + blob on the calling (camera) thread: that work spreads over the cameras.
        blob, lb = self._models[model][0].preprocess(image)
        req = _Request(blob, lb, image.shape[:2], model)
        self._queue.put(req)
        req.done.wait()
        if req.error is not None:
            raise InferenceError(f"inference failed: {req.error}") from req.error
        assert req.result is not None
        return req.result

    def detect_many(self, images: list[np.ndarray], model: str | None = None) -> list[Detections]:
        """Several images of one camera at once (a frame and its region tiles, edge.regions): all
        queued before waiting, so the workers run them side by side and batch those of one shape."""
        model = self._key if model is None else model
        detector = self._models[model][0]
        reqs = []
        for image in images:
            blob, lb = detector.preprocess(image)
            reqs.append(_Request(blob, lb, image.shape[:2], model))
            self._queue.put(reqs[-1])
        out = []
        for req in reqs:
            req.done.wait()
            if req.error is not None:
                raise InferenceError(f"inference failed: {req.error}") from req.error
            assert req.result is not None
            out.append(req.result)
        return out

    def _take_batch(self, first: _Request, limit: int) -> list[_Request]:
        batch = [first]
        held: list[_Request | None] = []
        while len(batch) < limit:
            try:
                nxt = self._queue.get_nowait()
            except queue.Empty:
                break
            if nxt is not None and nxt.model == first.model and nxt.blob.shape == first.blob.shape:
                batch.append(nxt)
            else:
                held.append(nxt)  # another input size (or the stop marker): back in the queue
        for item in held:
            self._queue.put(item)
        return batch

    def _work(self, worker: int) -> None:
        while True:
            req = self._queue.get()
            if req is None:
                return
            detector = self._models[req.model][worker]
            limit = self._batch.get(req.model, 1)
            batch = self._take_batch(req, limit) if limit > 1 else [req]
            t0 = time.perf_counter()
            try:
                blob = batch[0].blob if len(batch) == 1 else np.concatenate([r.blob for r in batch])
                out = detector.infer(blob)
                t1 = time.perf_counter()
                for i, r in enumerate(batch):
                    r.result = detector.decode(out[i], r.letterbox, r.frame_hw)
            except Exception as e:  # the caller raises it; the worker lives on
                t1 = time.perf_counter()
                for r in batch:
                    r.error = e
            self.stats.add_run(len(batch), t1 - t0, sum(t0 - r.queued_at for r in batch))
            for r in batch:
                r.done.set()

    def close(self) -> None:
        if self._view:  # the workers are the pool's: its owner closes them
            return
        for _ in self._threads:
            self._queue.put(None)
        for t in self._threads:
            t.join(timeout=5)


class PoolRunner:
    """One model of an `InferencePool` as a callable detector (`edge.secondary.ModelRunner`)."""

    def __init__(self, pool: InferencePool, key: str) -> None:
        self.pool = pool
        self.key = key
        self.names = pool._models[key][0].names
        self.model_name = pool._models[key][0].model_name

    def __call__(self, image: np.ndarray) -> Detections:
        return self.pool.detect(image, self.key)
