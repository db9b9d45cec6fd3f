"""The benchmark baseline (issue 7): the naive Ultralytics pipeline a user would write, on live RTSP cameras.

One thread per camera, each with its own model, running

    YOLO(yolo11n.onnx, task="detect").track(source=url, stream=True, imgsz=640,
                                            vid_stride=source_fps // analysis_fps, verbose=False, persist=True)

(the default imgsz, tracker (BoT-SORT), confidence and NMS; no class filter), with every result's tracks
converted to our edge types and fed to the same rules the edge node builds for the camera
(`edge.pipeline.build_zones` / `build_rules`, `Rule.update(Observation(...))`).

Threads, not processes: it is the naive way (one `for r in model.track(...)` loop per camera, started
in a thread) and the one Ultralytics documents for tracking several streams ("Multithreaded
Tracking": a thread per video, a model per thread, as models are not thread-safe). Everything runs
as Ultralytics does by default: its stream loader (one `cv2.VideoCapture` reader thread per camera
that decodes every frame and keeps only the newest of each `vid_stride`), ONNX Runtime and torch
with their default thread counts.

Needs the optional baseline venv (torch + ultralytics): `scripts/setup_baseline.sh`, then

    .venv-baseline/bin/python benchmarks/baseline_ultralytics.py --urls rtsp://127.0.0.1:8554/cam1 \
        --camera-config configs/cameras/hanoi_lythuongkiet_hangbai_intersection_trafficlight.yaml \
        --duration 30 --analysis-fps 5 --source-fps 25 --json

Measured over a window of --duration seconds that starts once every camera has produced results for
--warmup seconds: per camera the analysed fps (results in the window / window), the processing lag
(wall time when the result reached the rules - wall time when the loader decoded that frame) and the
source backlog (how far the loader's decoder has fallen behind the live stream: (decode wall time -
stream timestamp), minus its smallest value in the window; a camera that cannot keep up with
decoding builds a backlog in the socket, which no frame dropping hides). Only for measuring, the
loader's `cv2.VideoCapture` is a subclass that notes the time and stream position of each frame
it retrieves (`TimedCapture`); nothing else of Ultralytics is changed. Rules get the frame's
decode wall time as their clock (epoch seconds).

Real time: every camera's analysed fps >= 95% of the target, its source backlog did not grow
(< 0.5 s between the first and the last quarter of the window) and its lag at the end (median of the
last quarter, processing + backlog) is under 1 s.

Output (--json): one JSON object on the last line of stdout (Ultralytics' own log goes to stderr).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import threading
import time
import weakref
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

# Before Ultralytics is imported: no network probes, settings in a folder of ours.
os.environ.setdefault("YOLO_OFFLINE", "1")
os.environ.setdefault("YOLO_CONFIG_DIR", str(Path.home() / ".cache" / "ioc-edge" / "ultralytics"))
Path(os.environ["YOLO_CONFIG_DIR"]).mkdir(parents=True, exist_ok=True)

import numpy as np  # noqa: E402

from edge.config import CameraConfig, load_camera_config  # noqa: E402
from edge.data import weights_path  # noqa: E402
from edge.detections import Detections, TrackedObjects  # noqa: E402
from edge.pipeline import build_rules, build_zones  # noqa: E402
from edge.rules import Observation, Rule, Violation  # noqa: E402

REALTIME_SHARE = 0.95
MAX_BACKLOG_GROWTH_S = 0.5
MAX_END_LAG_S = 1.0


# ------------------------------------------------------------------------------ tracks -> rules


def tracked_objects(
    xyxy: np.ndarray, conf: np.ndarray, cls: np.ndarray, ids: np.ndarray | None, names: tuple[str, ...]
) -> tuple[TrackedObjects, Detections]:
    """Ultralytics' tracked boxes (numpy) as our TrackedObjects (boxes with an id) and Detections (all)."""
    xyxy = np.asarray(xyxy, np.float32).reshape(-1, 4)
    conf = np.asarray(conf, np.float32).reshape(-1)
    cls = np.asarray(cls).reshape(-1).astype(np.int32)
    detections = Detections(xyxy, conf, cls, names)
    if ids is None:
        return TrackedObjects.empty(names), detections
    ids = np.asarray(ids).reshape(-1).astype(np.int64)
    keep = ids >= 0
    return TrackedObjects(xyxy[keep], conf[keep], cls[keep], ids[keep], names), detections


class BaselineRules:
    """The edge's rules for one camera, fed from Ultralytics results (what `CameraAnalyzer.process`
    does after its own detector and tracker; the rules are built by the same functions)."""

    def __init__(self, camera: CameraConfig) -> None:
        self.camera = camera
        self.rules: list[Rule] | None = None  # built on the first frame, when its size is known
        self.names: tuple[str, ...] = ()

    def update(self, result: Any, t: float) -> list[Violation]:
        """One `ultralytics.engine.results.Results` at frame wall time t (epoch seconds)."""
        image = result.orig_img
        if self.rules is None:
            h, w = image.shape[:2]
            clock = lambda s: datetime.fromtimestamp(s, UTC)  # noqa: E731 (rules' local-time hook)
            self.rules = build_rules(self.camera, build_zones(self.camera, (w, h)), (w, h), clock)
            names = result.names
            self.names = tuple(names[i] for i in range(len(names)))
        boxes = result.boxes
        ids = None if boxes.id is None else boxes.id.cpu().numpy()
        tracks, detections = tracked_objects(
            boxes.xyxy.cpu().numpy(), boxes.conf.cpu().numpy(), boxes.cls.cpu().numpy(), ids, self.names
        )
        obs = Observation(t, tracks, image, detections)
        out: list[Violation] = []
        for rule in self.rules:
            out.extend(rule.update(obs))
        return out


# ------------------------------------------------------------------------------ measuring only


class _Captures:
    """Frame -> (decode wall time, stream seconds), noted by TimedCapture, looked up by the frame object."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_id: dict[int, tuple[weakref.ref, float, float | None]] = {}

    def note(self, image: np.ndarray, wall: float, pts: float | None) -> None:
        with self._lock:
            if len(self._by_id) > 256:  # the loader keeps only the newest frame: drop the dead ones
                self._by_id = {k: v for k, v in self._by_id.items() if v[0]() is not None}
            self._by_id[id(image)] = (weakref.ref(image), wall, pts)

    def take(self, image: np.ndarray) -> tuple[float, float | None] | None:
        with self._lock:
            entry = self._by_id.pop(id(image), None)
        if entry is None or entry[0]() is not image:
            return None
        return entry[1], entry[2]


CAPTURES = _Captures()


def install_capture_clock() -> None:
    """Make Ultralytics' stream loader note when it decoded each frame and at which stream time."""
    import cv2
    from ultralytics.data import loaders

    class TimedCapture(cv2.VideoCapture):
        def retrieve(self, *args: Any) -> tuple[bool, np.ndarray | None]:
            ok, image = super().retrieve(*args)
            if ok and image is not None:
                pos = self.get(cv2.CAP_PROP_POS_MSEC)
                CAPTURES.note(image, time.time(), pos / 1000 if pos and pos > 0 else None)
            return ok, image

    class Cv2WithTimedCapture:
        VideoCapture = TimedCapture

        def __getattr__(self, name: str) -> Any:
            return getattr(cv2, name)

    loaders.cv2 = Cv2WithTimedCapture()


def vm_kb(key: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return float(line.split()[1])
    return 0.0


def cpu_s() -> float:
    t = os.times()
    return t.user + t.system


def _median(v: list[float]) -> float | None:
    return statistics.median(v) if v else None


def _pct(v: list[float], p: float) -> float | None:
    if not v:
        return None
    s = sorted(v)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


def _r(v: float | None, nd: int = 1) -> float | None:
    return None if v is None else round(v, nd)


# ------------------------------------------------------------------------------ the per-camera loop


@dataclass
class Sample:
    wall: float  # when the result reached the rules
    frame_wall: float  # when the loader decoded the frame (wall if unknown)
    source_delay: float | None  # frame_wall - stream seconds (constant while the decoder keeps up)
    speed: dict[str, float]
    rules_ms: float


@dataclass
class CameraRun:
    index: int
    url: str
    camera_id: str
    config: CameraConfig
    model_path: str
    imgsz: int
    vid_stride: int
    window: dict[str, float]  # shared: start / end of the measuring window (set by main)
    stop: threading.Event
    events: list[dict[str, Any]]
    events_lock: threading.Lock
    first_result: float | None = None
    results: int = 0
    samples: list[Sample] = field(default_factory=list)
    error: str | None = None

    def run(self) -> None:
        try:
            self._run()
        except Exception as exc:  # reported in the JSON; the other cameras go on
            self.error = f"{type(exc).__name__}: {exc}"
            print(f"baseline: camera {self.camera_id} failed: {self.error}", file=sys.stderr, flush=True)

    def _run(self) -> None:
        from ultralytics import YOLO

        model = YOLO(self.model_path, task="detect")
        rules = BaselineRules(self.config)
        stream = model.track(
            source=self.url, stream=True, imgsz=self.imgsz, vid_stride=self.vid_stride, verbose=False, persist=True
        )
        for result in stream:
            now = time.time()
            cap = CAPTURES.take(result.orig_img)
            frame_wall, pts = cap if cap else (now, None)
            t0 = time.perf_counter()
            violations = rules.update(result, frame_wall)
            rules_ms = 1000 * (time.perf_counter() - t0)
            if self.first_result is None:
                self.first_result = now
            self.results += 1
            start, end = self.window.get("start"), self.window.get("end")
            if start is not None and start <= now and (end is None or now <= end):
                self.samples.append(
                    Sample(now, frame_wall, None if pts is None else frame_wall - pts, dict(result.speed), rules_ms)
                )
                with self.events_lock:
                    self.events.extend(
                        {"type": v.type.value, "camera": self.camera_id, "t": round(frame_wall, 3)} for v in violations
                    )
            if self.stop.is_set():
                break
        stream.close()

    def summary(self, wall: float, target: float) -> dict[str, Any]:
        s = self.samples
        fps = len(s) / wall if wall > 0 else 0.0
        lag = [x.wall - x.frame_wall for x in s]
        delays = [x.source_delay for x in s if x.source_delay is not None]
        base = min(delays) if delays else None
        backlog = [d - base for d in delays] if base is not None else []
        q = max(1, len(s) // 4)
        bq = max(1, len(backlog) // 4)
        backlog_growth = (_median(backlog[-bq:]) - _median(backlog[:bq])) if backlog else None
        end_lag = (_median(lag[-q:]) or 0.0) + (_median(backlog[-bq:]) or 0.0) if s else None
        speed = (
            {k: _r(statistics.mean(x.speed.get(k, 0.0) for x in s)) for k in ("preprocess", "inference", "postprocess")}
            if s
            else {}
        )
        realtime = (
            self.error is None
            and fps >= REALTIME_SHARE * target
            and (backlog_growth is None or backlog_growth < MAX_BACKLOG_GROWTH_S)
            and end_lag is not None
            and end_lag < MAX_END_LAG_S
        )
        return {
            "camera": self.camera_id,
            "url": self.url,
            "analysis_fps": round(fps, 2),
            "frames": len(s),
            "realtime": realtime,
            "lag_ms_p50": _r(1000 * _median(lag)) if lag else None,
            "lag_ms_p95": _r(1000 * _pct(lag, 95)) if lag else None,
            "lag_ms_max": _r(1000 * max(lag)) if lag else None,
            "lag_ms_end": _r(1000 * end_lag) if end_lag is not None else None,
            "source_backlog_ms_max": _r(1000 * max(backlog)) if backlog else None,
            "source_backlog_growth_ms": _r(1000 * backlog_growth) if backlog_growth is not None else None,
            "frames_with_capture_time": sum(1 for x in s if x.source_delay is not None),
            "ultralytics_speed_ms": speed,  # Results.speed per frame: preprocess / inference / postprocess (NMS)
            "rules_ms": _r(statistics.mean(x.rules_ms for x in s), 2) if s else None,
            "error": self.error,
        }


# ------------------------------------------------------------------------------ main


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--urls", nargs="+", required=True, help="the cameras' RTSP URLs (one thread each)")
    ap.add_argument("--camera-config", required=True, help="camera YAML: its scene and rules (used for every URL)")
    ap.add_argument("--duration", type=float, default=30.0, help="measuring window, seconds (default 30)")
    ap.add_argument("--warmup", type=float, default=5.0, help="seconds of results before the window (default 5)")
    ap.add_argument("--analysis-fps", type=float, default=5.0, help="target analysed frames per second per camera")
    ap.add_argument("--source-fps", type=float, default=25.0, help="the cameras' frame rate")
    ap.add_argument("--imgsz", type=int, default=640, help="Ultralytics' imgsz (default 640, its default)")
    ap.add_argument("--model", default=None, help="detector (default $EDGE_DATA_DIR/weights/yolo11n.onnx)")
    ap.add_argument(
        "--start-timeout", type=float, default=120.0, help="seconds to wait for every camera's first result"
    )
    ap.add_argument("--json", action="store_true", help="print one JSON object (else a readable summary)")
    args = ap.parse_args(argv)

    try:
        # Ultralytics logs to stdout (its first import also announces a new settings file): keep
        # stdout for the JSON.
        with contextlib.redirect_stdout(sys.stderr):
            import torch
            import ultralytics
            from ultralytics.utils import LOGGER
    except ImportError as exc:
        print(f"baseline: cannot import torch/ultralytics ({exc}); run scripts/setup_baseline.sh and use "
              ".venv-baseline/bin/python", file=sys.stderr)  # fmt: skip
        return 2
    for handler in LOGGER.handlers:
        if hasattr(handler, "setStream"):
            handler.setStream(sys.stderr)

    model = args.model or str(weights_path("yolo11n.onnx"))
    if not Path(model).is_file():
        print(f"baseline: model not found: {model}", file=sys.stderr)
        return 2
    config = load_camera_config(args.camera_config)
    vid_stride = max(1, int(args.source_fps // args.analysis_fps))
    target = args.source_fps / vid_stride  # what the stride can give (== analysis_fps when it divides)
    install_capture_clock()

    window: dict[str, float] = {}
    stop = threading.Event()
    events: list[dict[str, Any]] = []
    events_lock = threading.Lock()
    runs = [
        CameraRun(
            i,
            url,
            f"{config.camera.id}-{i:02d}",
            config,
            model,
            args.imgsz,
            vid_stride,
            window,
            stop,
            events,
            events_lock,
        )
        for i, url in enumerate(args.urls)
    ]
    threads = [threading.Thread(target=r.run, name=f"cam{r.index:02d}", daemon=True) for r in runs]
    t_launch = time.time()
    for t in threads:
        t.start()
    deadline = t_launch + args.start_timeout
    while time.time() < deadline and any(r.first_result is None and r.error is None for r in runs):
        time.sleep(0.1)
    startup_s = time.time() - t_launch
    time.sleep(args.warmup)
    cpu0, t0 = cpu_s(), time.time()
    window["start"] = t0
    time.sleep(args.duration)
    t1 = time.time()
    window["end"] = t1
    cpu1 = cpu_s()
    rss = vm_kb("VmRSS") / 1024
    rss_peak = vm_kb("VmHWM") / 1024
    stop.set()
    for t in threads:
        t.join(timeout=10)
    wall = t1 - t0
    cameras = [r.summary(wall, target) for r in runs]
    fps = [c["analysis_fps"] for c in cameras]
    frames = sum(c["frames"] for c in cameras)
    evs = sorted(events, key=lambda e: e["t"])
    result = {
        "pipeline": "ultralytics-naive",
        "cameras": len(runs),
        "analysis_fps_target": round(target, 3),
        "analysis_fps": round(statistics.mean(fps), 2) if fps else 0.0,
        "analysis_fps_min": min(fps) if fps else 0.0,
        "per_camera_fps": fps,
        "realtime": all(c["realtime"] for c in cameras),
        "cpu_cores_used": round((cpu1 - cpu0) / wall, 2),
        "cpu_ms_per_analysed_frame": round(1000 * (cpu1 - cpu0) / frames, 1) if frames else None,
        "rss_mb": round(rss, 1),
        "rss_peak_mb": round(rss_peak, 1),
        "duration_s": round(wall, 2),
        "startup_s": round(startup_s, 1),
        "vid_stride": vid_stride,
        "imgsz": args.imgsz,
        "model": Path(model).name,
        "threads": "one per camera, one process",
        "versions": {"ultralytics": ultralytics.__version__, "torch": torch.__version__},
        "torch_threads": torch.get_num_threads(),
        "loadavg_1m": round(os.getloadavg()[0], 2),
        "per_camera": cameras,
        "events": evs,
        "events_count": len(evs),
    }
    if args.json:
        print(json.dumps(result), flush=True)
    else:
        for k, v in result.items():
            print(f"{k:>26}: {v}", flush=True)
    sys.stderr.flush()
    # Ultralytics' loader threads may sit in a blocking read; they are daemons, but OpenCV's FFmpeg
    # reader can crash at interpreter teardown: leave at once, everything is printed.
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main())
