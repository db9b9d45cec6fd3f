"""How much a model variant agrees with the FP32 model it was made from, on the sample footage.

For each variant the reference is the registered FP32 model (dynamic input) run at the variant's
input size, so the numbers measure what the static shape and the quantization change, nothing else:

- detections: per analysed frame, boxes of the classes the rules use matched one-to-one (same class,
  IoU >= 0.5, greedy by confidence); precision and recall of the variant against FP32;
- events: every camera config in configs/cameras with a source video is analysed offline exactly as
  `python -m edge analyze` does (clips off); an FP32 event is matched by a variant event of the same
  camera, type, phase and zone starting within +-1 s. A variant is kept if it loses at most 2% of
  FP32's events;
- speed: ms per frame (pre- and post-processing included, one ONNX Runtime thread, CPU) on 1080p
  frames (sample frames resized to 1920x1080), median of the timed calls.
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import cv2
import numpy as np

import models
from contract.paths import packaged_config
from edge.config import ClipsConfig, load_camera_config
from edge.data import video_path
from edge.detections import Detections
from edge.detector import YoloDetector

RULE_CLASSES = ("person", "bicycle", "car", "motorcycle", "bus", "truck")
IOU_MATCH = 0.5
EVENT_TIME_TOLERANCE_S = 1.0
MAX_EVENTS_LOST = 0.02
CAMERA_CONFIGS = packaged_config("cameras")


class _Recorder:
    """A detector that keeps what it returned, frame by frame (rule classes only)."""

    def __init__(self, detector: YoloDetector) -> None:
        self._detector = detector
        self.frames: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []  # xyxy, class id, confidence
        keep = [detector.names.index(c) for c in RULE_CLASSES if c in detector.names]
        self._keep = np.array(keep, dtype=np.int32)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._detector, name)

    def __call__(self, image: np.ndarray) -> Detections:
        d = self._detector(image)
        m = np.isin(d.class_id, self._keep)
        self.frames.append((d.xyxy[m].copy(), d.class_id[m].copy(), d.confidence[m].copy()))
        return d


@dataclass
class FootageRun:
    """One model over every sample camera: its events and its per-frame detections, by camera config."""

    events: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    detections: dict[str, list[tuple[np.ndarray, np.ndarray, np.ndarray]]] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def n_events(self) -> int:
        return sum(len(v) for v in self.events.values())


def camera_configs(folder: Path = CAMERA_CONFIGS) -> list[Path]:
    """The camera configs that name a sample video."""
    out = []
    for path in sorted(folder.glob("*.yaml")):
        cam = load_camera_config(path)
        if cam.camera.source and video_path(cam.camera.source).is_file():
            out.append(path)
    return out


def analyze_events(video: Path, camera: Any, out_dir: Path, detector: Any) -> list[dict[str, Any]]:
    """The events `python -m edge analyze` writes for one video (clips off), as dicts."""
    from edge.analyze import EPOCH, analyze_video, creation_time

    # Both sides of a comparison start at the same fixed time; a file without a creation_time tag at
    # the epoch, as before (analyze_video no longer picks one by itself).
    start = creation_time(video) or EPOCH
    analyze_video(video, camera, out_dir, detector=detector, clips=ClipsConfig(enabled=False), start_time=start)
    lines = (out_dir / "events.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


ExtraEvents = Callable[[YoloDetector], dict[str, list[dict[str, Any]]]]


def run_footage(
    detector: YoloDetector, configs: Sequence[Path], work_dir: Path, extra_events: ExtraEvents | None = None
) -> FootageRun:
    """`extra_events(detector)`: more event sets by name (e.g. "synthetic/<scene>"), each event a dict
    with camera, type, phase and `t` (seconds) or `started_at`."""
    run = FootageRun()
    t0 = time.perf_counter()
    for path in configs:
        cam = load_camera_config(path)
        rec = _Recorder(detector)
        run.events[path.stem] = analyze_events(video_path(cam.camera.source), cam, work_dir / path.stem, rec)
        run.detections[path.stem] = rec.frames
    if extra_events is not None:
        run.events.update(extra_events(detector))
    run.seconds = time.perf_counter() - t0
    return run


# ------------------------------------------------------------------------------------ comparing


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)), np.float32)
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-9)


def match_boxes(ref: tuple, test: tuple, iou_min: float = IOU_MATCH) -> int:
    """Boxes of `test` matched one-to-one to boxes of `ref` (same class, IoU >= iou_min), by confidence."""
    ref_xyxy, ref_cls, _ = ref
    xyxy, cls, conf = test
    ious = iou_matrix(xyxy, ref_xyxy)
    ious[cls[:, None] != ref_cls[None, :]] = 0
    taken = np.zeros(len(ref_xyxy), bool)
    matched = 0
    for i in np.argsort(-conf, kind="stable"):
        if len(ref_xyxy) == 0:
            break
        cand = np.where(taken, -1.0, ious[i])
        j = int(cand.argmax())
        if cand[j] >= iou_min:
            taken[j] = True
            matched += 1
    return matched


def _event_key(ev: dict[str, Any]) -> tuple:
    return (ev["camera"], ev["type"], ev.get("phase", "point"), (ev.get("zone") or {}).get("id"))


def _event_time(ev: dict[str, Any]) -> float:
    if "t" in ev:
        return float(ev["t"])
    return datetime.fromisoformat(ev["started_at"].replace("Z", "+00:00")).timestamp()


def match_events(ref: list[dict[str, Any]], test: list[dict[str, Any]], tol: float = EVENT_TIME_TOLERANCE_S):
    """(matched, lost, extra): FP32 events found again, FP32 events missing, variant events FP32 lacks."""
    free = list(test)
    matched, lost = [], []
    for ev in sorted(ref, key=_event_time):
        key, t = _event_key(ev), _event_time(ev)
        cands = [(abs(_event_time(o) - t), k) for k, o in enumerate(free) if _event_key(o) == key]
        cands = [c for c in cands if c[0] <= tol]
        if cands:
            matched.append((ev, free.pop(min(cands)[1])))
        else:
            lost.append(ev)
    return matched, lost, free


@dataclass
class Agreement:
    variant: str
    input_hw: tuple[int, int]
    precision: str
    fp32_boxes: int
    variant_boxes: int
    matched_boxes: int
    fp32_events: int
    variant_events: int
    events_lost: int
    events_extra: int
    ms_per_frame: float | None = None
    fp32_ms_per_frame: float | None = None
    reference: str = ""
    footage: str = "configs/cameras/*.yaml with a sample video (python -m edge analyze, clips off)"
    lost_detail: list[str] = field(default_factory=list)
    extra_detail: list[str] = field(default_factory=list)
    by_set: dict[str, dict[str, int]] = field(default_factory=dict)  # "footage" / "synthetic": fp32, lost, extra

    @property
    def det_precision(self) -> float:
        return self.matched_boxes / self.variant_boxes if self.variant_boxes else 1.0

    @property
    def det_recall(self) -> float:
        return self.matched_boxes / self.fp32_boxes if self.fp32_boxes else 1.0

    @property
    def lost_fraction(self) -> float:
        return self.events_lost / self.fp32_events if self.fp32_events else 0.0

    @property
    def kept(self) -> bool:
        return self.lost_fraction <= MAX_EVENTS_LOST

    @property
    def verdict(self) -> str:
        word = "kept" if self.kept else "rejected"
        return (
            f"{word}: lost {self.events_lost} of {self.fp32_events} FP32 events ({100 * self.lost_fraction:.1f}%, "
            f"limit {100 * MAX_EVENTS_LOST:.0f}%)"
        )

    def record(self) -> dict[str, Any]:
        """What goes into variants.yaml."""
        return {
            "measured": datetime.now().date().isoformat(),
            "reference": f"FP32 (dynamic input) at {self.input_hw[0]}x{self.input_hw[1]}",
            "footage": self.footage,
            "detections": {
                "classes": list(RULE_CLASSES),
                "fp32_boxes": self.fp32_boxes,
                "precision": round(self.det_precision, 4),
                "recall": round(self.det_recall, 4),
            },
            "events": {
                "fp32": self.fp32_events,
                "variant": self.variant_events,
                "lost": self.events_lost,
                "extra": self.events_extra,
                "lost_pct": round(100 * self.lost_fraction, 2),
                "by_set": self.by_set,
            },
            "ms_per_frame_1080p": {"variant": self.ms_per_frame, "fp32": self.fp32_ms_per_frame},
            "verdict": self.verdict,
        }


def compare(name: str, spec: dict[str, Any], ref: FootageRun, test: FootageRun) -> Agreement:
    fp32_boxes = variant_boxes = matched = 0
    lost_detail_boxes: list[str] = []
    for cam, frames in ref.detections.items():
        other = test.detections[cam]
        if len(other) != len(frames):
            # The motion gate decides on each run's own boxes, so the detector may run on a frame more
            # or less; frames cannot be paired then, and this camera's boxes are left out (said so).
            lost_detail_boxes.append(f"{cam}: boxes not compared ({len(frames)} detector runs vs {len(other)})")
            continue
        for r, t in zip(frames, other, strict=True):
            fp32_boxes += len(r[0])
            variant_boxes += len(t[0])
            matched += match_boxes(r, t)
    lost_n = extra_n = 0
    lost_detail, extra_detail = [], []
    by_set: dict[str, dict[str, int]] = {}
    for cam, events in ref.events.items():
        _, lost, extra = match_events(events, test.events.get(cam, []))
        lost_n += len(lost)
        extra_n += len(extra)
        counts = by_set.setdefault(cam.split("/")[0] if "/" in cam else "footage", {"fp32": 0, "lost": 0, "extra": 0})
        counts["fp32"] += len(events)
        counts["lost"] += len(lost)
        counts["extra"] += len(extra)
        lost_detail += [f"{cam}: {e['type']} {e.get('phase')} at {e.get('started_at', e.get('t'))}" for e in lost]
        extra_detail += [f"{cam}: {e['type']} {e.get('phase')} at {e.get('started_at', e.get('t'))}" for e in extra]
    return Agreement(
        variant=name,
        input_hw=tuple(spec["input"]),
        precision=spec["precision"],
        fp32_boxes=fp32_boxes,
        variant_boxes=variant_boxes,
        matched_boxes=matched,
        fp32_events=ref.n_events,
        variant_events=test.n_events,
        events_lost=lost_n,
        events_extra=extra_n,
        lost_detail=lost_detail_boxes + lost_detail,
        extra_detail=extra_detail,
        by_set=by_set,
    )


# ------------------------------------------------------------------------------------ timing


def timing_frames(n: int = 20) -> list[np.ndarray]:
    """n frames spread over the sample camera videos, resized to 1920x1080 (a 1080p camera's cost)."""
    from edge.sources import VideoFileSource

    configs = camera_configs()
    frames: list[np.ndarray] = []
    per = max(1, -(-n // len(configs)))
    for path in configs:
        source = VideoFileSource(video_path(load_camera_config(path).camera.source), analysis_fps=1.0)
        for k, frame in enumerate(source.frames()):
            frames.append(cv2.resize(frame.image, (1920, 1080), interpolation=cv2.INTER_LINEAR))
            if k + 1 == per:
                break
        source.stop()
    return frames[:n]


def ms_per_frame(detectors: dict[str, YoloDetector], frames: Sequence[np.ndarray], rounds: int = 5) -> dict[str, float]:
    """Median ms per call of each detector; rounds interleave the detectors so that load from other
    jobs on the machine spreads over all of them alike."""
    times: dict[str, list[float]] = {name: [] for name in detectors}
    for det in detectors.values():
        for f in frames[:3]:
            det(f)  # warm-up
    for _ in range(rounds):
        for name, det in detectors.items():
            for f in frames:
                t0 = time.perf_counter()
                det(f)
                times[name].append(time.perf_counter() - t0)
    return {name: round(1000 * statistics.median(t), 1) for name, t in times.items()}


# ------------------------------------------------------------------------------------ the whole run


def measure(
    names: Sequence[str] | None = None,
    *,
    cache: Path | None = None,
    configs: Sequence[Path] | None = None,
    work_dir: Path | None = None,
    timing: bool = True,
    baseline: bool = True,
    extra_events: ExtraEvents | None = None,
    footage_label: str = "configs/cameras/*.yaml with a sample video (python -m edge analyze, clips off)",
    log=print,
) -> list[Agreement]:
    """Agreement of each registered variant (default: all in variants.yaml) with FP32 at its input size."""
    registered = models.registered_variants()
    names = list(names or registered)
    unknown = [n for n in names if n not in registered]
    if unknown:
        raise KeyError(f"not in models/{models.VARIANTS_PATH.name}: {', '.join(unknown)}")
    configs = list(configs or camera_configs())
    frames = timing_frames() if timing else []
    results: list[Agreement] = []
    with tempfile.TemporaryDirectory(prefix="ioc-agreement-") as tmp:
        work = Path(work_dir or tmp)
        if baseline:
            # For scale: the events of the FP32 model as the cameras run it by default (long side 640).
            det = YoloDetector(models.verify("yolo11n"))
            run = run_footage(det, configs, work / "yolo11n-fp32-auto", extra_events)
            log(f"FP32 yolo11n, input long side 640 (default): {run.n_events} events, {run.seconds:.0f} s")
        by_size: dict[tuple[str, tuple[int, int]], list[str]] = {}
        for n in names:
            by_size.setdefault((registered[n]["base"], tuple(registered[n]["input"])), []).append(n)
        detectors: dict[str, YoloDetector] = {}
        for (base, hw), group in sorted(by_size.items()):
            ref_name = f"{base}-fp32-{hw[0]}x{hw[1]}"
            detectors[ref_name] = ref_det = YoloDetector(models.verify(base), input_size=hw)
            log(f"FP32 {base} at {hw[0]}x{hw[1]}: analysing {len(configs)} camera configs ...")
            ref = run_footage(ref_det, configs, work / ref_name, extra_events)
            log(f"  {ref.n_events} events, {ref.seconds:.0f} s")
            for n in sorted(group):
                detectors[n] = det = YoloDetector(models.verify_variant(n, cache))
                log(f"{n}: analysing ...")
                run = run_footage(det, configs, work / n, extra_events)
                a = compare(n, registered[n], ref, run)
                a.reference = ref_name
                a.footage = footage_label
                log(f"  {run.n_events} events, {run.seconds:.0f} s; {a.verdict}")
                results.append(a)
        if frames:
            log(f"timing {len(detectors)} models on {len(frames)} 1080p frames, one thread ...")
            ms = ms_per_frame(detectors, frames)
            for a in results:
                a.ms_per_frame, a.fp32_ms_per_frame = ms[a.variant], ms[a.reference]
    return results


def measure_backends(
    engines: Sequence[str],
    *,
    base: str = "yolo11n",
    input_hw: tuple[int, int] = (384, 640),
    configs: Sequence[Path] | None = None,
    work_dir: Path | None = None,
    timing: bool = True,
    extra_events: ExtraEvents | None = None,
    footage_label: str = "configs/cameras/*.yaml with a sample video (python -m edge analyze, clips off)",
    reference_cache: Path | None = None,
    analyse: bool = True,
    log=print,
) -> list[Agreement]:
    """Each `backend:precision` (e.g. `openvino:bf16`) running the registered FP32 model against
    ONNX Runtime FP32 on the same model and input: what another runtime and its arithmetic change
    (the model file is the same, so this is the verdict on the backend, not on a variant file)."""
    configs = list(configs or camera_configs())
    frames = timing_frames() if timing else []
    path = models.verify(base)
    results: list[Agreement] = []
    with tempfile.TemporaryDirectory(prefix="ioc-agreement-") as tmp:
        work = Path(work_dir or tmp)
        ref_name = "onnxruntime:fp32"
        detectors: dict[str, YoloDetector] = {ref_name: YoloDetector(path, input_size=input_hw)}
        ref = _load_reference(reference_cache, footage_label, path, input_hw)
        if ref is None:
            log(f"{ref_name} {base} at {input_hw[0]}x{input_hw[1]}: analysing {len(configs)} camera configs ...")
            ref = run_footage(detectors[ref_name], configs, work / "onnxruntime-fp32", extra_events)
            if reference_cache is not None:
                _save_reference(reference_cache, ref, footage_label, path, input_hw)
        else:
            log(f"{ref_name}: the reference run from {reference_cache} (same set, model and input)")
        log(f"  {ref.n_events} events, {ref.seconds:.0f} s")
        for name in engines if analyse else []:
            backend, _, precision = name.partition(":")
            det = detectors[name] = YoloDetector(
                path, input_size=input_hw, backend=backend, precision=precision or "auto"
            )
            log(f"{name}: analysing ...")
            run = run_footage(det, configs, work / name.replace(":", "-"), extra_events)
            a = compare(name, {"input": input_hw, "precision": getattr(det.engine, "precision", precision)}, ref, run)
            a.reference, a.footage = ref_name, footage_label
            log(f"  {run.n_events} events, {run.seconds:.0f} s; {a.verdict}")
            results.append(a)
        if frames:
            if not analyse:  # timing only: every engine in the same interleaved rounds
                for name in engines:
                    backend, _, precision = name.partition(":")
                    detectors[name] = YoloDetector(path, input_size=input_hw, backend=backend, precision=precision)
            log(f"timing {len(detectors)} engines on {len(frames)} 1080p frames, one thread ...")
            ms = ms_per_frame(detectors, frames)
            for a in results:
                a.ms_per_frame, a.fp32_ms_per_frame = ms[a.variant], ms[a.reference]
            if not analyse:
                log("ms per 1080p frame: " + ", ".join(f"{k} {v}" for k, v in ms.items()))
                results = [Agreement(n, input_hw, n.partition(":")[2], 0, 0, 0, 0, 0, 0, 0, ms[n], ms[ref_name],
                                     ref_name) for n in engines]
    return results


# The reference run (ONNX Runtime FP32 over the whole set) is the longest part; engines measured in
# separate runs share one, recorded with what it was run on so that a changed set is not reused.
def _reference_key(label: str, path: Path, input_hw: tuple[int, int]) -> dict[str, Any]:
    from contract.paths import file_sha256

    return {"set": label, "model_sha256": file_sha256(path), "input": list(input_hw)}


def _save_reference(cache: Path, ref: FootageRun, label: str, path: Path, input_hw: tuple[int, int]) -> None:
    import pickle

    cache.parent.mkdir(parents=True, exist_ok=True)
    with open(cache, "wb") as f:
        pickle.dump({"key": _reference_key(label, path, input_hw), "run": ref}, f)


def _load_reference(cache: Path | None, label: str, path: Path, input_hw: tuple[int, int]) -> FootageRun | None:
    import pickle

    if cache is None or not cache.is_file():
        return None
    with open(cache, "rb") as f:
        data = pickle.load(f)  # noqa: S301 - a file this harness wrote on this machine
    if data.get("key") != _reference_key(label, path, input_hw):
        raise ValueError(f"{cache} holds a reference run of another set, model or input: delete it")
    run: FootageRun = data["run"]
    return run


def table(results: Sequence[Agreement]) -> str:
    head = (
        "| variant | input | precision | det. precision vs FP32 | det. recall vs FP32 | FP32 events | variant events "
        "| lost | extra | events lost | ms/frame (FP32 same size) | kept |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|---|\n"
    )
    rows = []
    for a in results:
        ms = f"{a.ms_per_frame} ({a.fp32_ms_per_frame})" if a.ms_per_frame is not None else "–"
        rows.append(
            f"| {a.variant} | {a.input_hw[0]}x{a.input_hw[1]} | {a.precision.upper()} | {a.det_precision:.3f} "
            f"| {a.det_recall:.3f} | {a.fp32_events} | {a.variant_events} | {a.events_lost} | {a.events_extra} "
            f"| {100 * a.lost_fraction:.1f}% | {ms} | {'yes' if a.kept else 'no'} |"
        )
    return head + "\n".join(rows)


def write_results(results: Sequence[Agreement], path: Path | None = None) -> None:
    """Record each variant's agreement and `kept` in variants.yaml."""
    import yaml

    path = path or models.VARIANTS_PATH
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    for a in results:
        entry = data["variants"][a.variant]
        entry["agreement"] = a.record()
        entry["kept"] = a.kept
    from models.variants import dump_registry

    path.write_text(dump_registry(data), encoding="utf-8")


def to_json(results: Sequence[Agreement]) -> str:
    return json.dumps(
        [{**asdict(a), "det_precision": a.det_precision, "det_recall": a.det_recall, "kept": a.kept} for a in results],
        indent=2,
    )


# ------------------------------------------------------------------------------------ backend verdicts

BACKENDS_PATH = Path(__file__).with_name("backends.yaml")
BACKENDS_HEADER = """\
# Detector engines (backend:precision) against ONNX Runtime FP32 on the same model file, per model:
# written by `benchmarks/model_agreement.py --backends ... --write` (docs/benchmarks.md); do not edit by
# hand. `detector.backend: auto` (the default) runs the fastest engine here that is kept (lost at most
# 2% of the reference's events on at least 100 of them) and that the machine supports
# (edge/detect/choice.py); speed is ms per frame divided by the reference's in the same run.
"""


def machine_note() -> str:
    """The CPU the numbers were measured on (model name, cores, matrix-unit flags)."""
    import os

    name, flags = "", set()
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="ascii", errors="replace").splitlines():
            if line.startswith("model name") and not name:
                name = line.split(":", 1)[1].strip()
            elif line.startswith("flags") and not flags:
                flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    units = [f for f in ("amx_bf16", "amx_int8", "avx512_bf16", "avx512_vnni") if f in flags]
    return f"{name or 'unknown CPU'}, {os.cpu_count()} cores, {' '.join(units) or 'no AMX/VNNI'}"


def write_backend_results(
    results: Sequence[Agreement],
    *,
    base: str = "yolo11n",
    command: str = "",
    path: Path | None = None,
    timing_only: bool = False,
) -> Path:
    """Record each engine's agreement with onnxruntime:fp32 and `kept` in models/backends.yaml (merged
    with what is there: engines measured in separate runs on one cached reference; `timing_only`
    updates only the speeds, all of them from one interleaved run)."""
    import yaml

    path = path or BACKENDS_PATH
    data = (yaml.safe_load(path.read_text(encoding="utf-8")) if path.is_file() else None) or {}
    entry = data.setdefault("models", {}).setdefault(base, {})
    entry["sha256"] = models.registry()[base]["sha256"]
    if results:
        entry["input"] = list(results[0].input_hw)
        entry["reference"] = results[0].reference
    entry["machine"] = machine_note()
    engines = entry.setdefault("engines", {})
    ref_name = results[0].reference if results else "onnxruntime:fp32"
    ref = engines.setdefault(ref_name, {"reference": True, "kept": True, "speed": 1.0})
    ref_ms = next((a.fp32_ms_per_frame for a in results if a.fp32_ms_per_frame), None)
    if ref_ms is not None:
        ref["ms_per_frame"] = ref_ms
    for a in results:
        row = engines.setdefault(a.variant, {})
        if a.ms_per_frame is not None and a.fp32_ms_per_frame:
            row.update(
                ms_per_frame=a.ms_per_frame,
                reference_ms_per_frame=a.fp32_ms_per_frame,
                speed=round(a.ms_per_frame / a.fp32_ms_per_frame, 3),
            )
            if timing_only:
                row["timed"] = f"{datetime.now().date().isoformat()}: benchmarks/model_agreement.py {command}".strip()
        if timing_only:
            # An engine timed before (or without) its agreement run is not kept until it has one.
            row.setdefault("kept", False)
            row.setdefault("verdict", "agreement not measured")
            continue
        rec = a.record()
        ref["fp32_events"] = a.fp32_events
        row.update(
            kept=a.kept,
            fp32_events=a.fp32_events,
            events_lost=a.events_lost,
            events_extra=a.events_extra,
            box_precision=rec["detections"]["precision"],
            box_recall=rec["detections"]["recall"],
            by_set=a.by_set,
            verdict=a.verdict,
            measured=f"{datetime.now().date().isoformat()}: benchmarks/model_agreement.py {command}".strip(),
        )
    path.write_text(BACKENDS_HEADER + yaml.safe_dump(data, sort_keys=False, width=110), encoding="utf-8")
    return path
