"""Detector candidates against the default (yolo11n, long side 640) on real footage
(docs/benchmarks.md, "Model candidates").

    EDGE_DATA_DIR=/work/shared/data PYTHONPATH=. .venv/bin/python benchmarks/model_candidates.py \\
        [--every 3] [--rules] [--heads] [--no-detections] [--json var/bench/model_candidates.json] [CANDIDATE ...]

Detection level: the same sampled frames of each clip go through every candidate in turn (frame by
frame, so the box's load is shared alike by all of them), and per candidate it reports the ms per
frame, the boxes per class, the riders (persons standing on a motorcycle box), and its agreement
with the default: the share of the default's boxes it also finds (same class, IoU >= 0.5) and the
boxes it finds that the default does not. There are no box labels for these clips, so "finds more
of what the default finds, plus more riders" is the evidence, and the rule-level run (--rules:
benchmarks/rules_accuracy.py's labelled real clips with the candidate as the camera's detector) is
the judge. --heads: the helmet model on each candidate's rider crops of the Hanoi clip.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from edge.analyze import make_detector
from edge.config import DetectorConfig
from edge.data import video_path
from edge.detections import Detections

REPO_ROOT = Path(__file__).resolve().parent.parent
OUT = REPO_ROOT / "var" / "bench" / "model_candidates"
CLASSES = ("person", "bicycle", "car", "motorcycle", "bus", "truck")
# name -> the detector config a camera would give (`detector:` in its camera config)
CANDIDATES: dict[str, dict[str, Any]] = {
    "yolo11n@640": {"model": "yolo11n"},  # the default
    "yolov8n@640x640": {"model": "yolov8n"},
    "yolo11n@960": {"model": "yolo11n", "long_side": 960},
    "yolo11n@1280": {"model": "yolo11n", "long_side": 1280},
}
DEFAULT = "yolo11n@640"
CLIPS = (
    "hanoi_lythuongkiet_hangbai_intersection_trafficlight.mp4",  # 640x480, dense, pillion passengers
    "vn_haiphong_intersection_cctv_signals_stopline.mp4",  # 1006x720, wide junction
    "id_cilacap_etle_ptz_stopline_helmet.mp4",  # 640x360, riders at a stop line
    "motorcyclist_without_helmet.mp4",  # 1054x586, one rider close
)


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if not len(a) or not len(b):
        return np.zeros((len(a), len(b)))
    x0 = np.maximum(a[:, None, 0], b[None, :, 0])
    y0 = np.maximum(a[:, None, 1], b[None, :, 1])
    x1 = np.minimum(a[:, None, 2], b[None, :, 2])
    y1 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-9)


def boxes_of(d: Detections, cls: str) -> np.ndarray:
    idx = [i for i in range(len(d)) if d.class_name(i) == cls]
    return np.array([d.xyxy[i] for i in idx], dtype=np.float64).reshape(-1, 4)


def matched(ref: np.ndarray, other: np.ndarray, thr: float = 0.5) -> int:
    """Greedy one-to-one matches of `ref` boxes in `other` at IoU >= thr."""
    m = iou_matrix(ref, other)
    n = 0
    while m.size and m.max() >= thr:
        i, j = np.unravel_index(m.argmax(), m.shape)
        m[i, :] = 0
        m[:, j] = 0
        n += 1
    return n


def riders(d: Detections) -> int:
    """Persons whose feet (box bottom centre) stand inside a motorcycle box: riders and passengers."""
    bikes = boxes_of(d, "motorcycle")
    people = boxes_of(d, "person")
    n = 0
    for p in people:
        fx, fy = (p[0] + p[2]) / 2, p[3]
        if any(b[0] <= fx <= b[2] and b[1] - 0.2 * (b[3] - b[1]) <= fy <= b[3] for b in bikes):
            n += 1
    return n


def sample_frames(video: Path, every: int) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(video))
    frames, i = [], 0
    while True:
        ok, img = cap.read()
        if not ok:
            break
        if i % every == 0:
            frames.append(img)
        i += 1
    cap.release()
    return frames


def detection_level(names: list[str], every: int) -> dict[str, dict[str, Any]]:
    detectors = {n: make_detector(DetectorConfig(**CANDIDATES[n])) for n in names}
    out: dict[str, dict[str, Any]] = {}
    for clip in CLIPS:
        frames = sample_frames(video_path(clip), every)
        stats: dict[str, dict[str, Any]] = {n: {"ms": [], "boxes": dict.fromkeys(CLASSES, 0), "riders": 0,
                     "found_of_default": dict.fromkeys(CLASSES, 0), "extra": dict.fromkeys(CLASSES, 0)}
                 for n in names}
        default_boxes = dict.fromkeys(CLASSES, 0)
        for img in frames:
            dets: dict[str, Detections] = {}
            for n, det in detectors.items():
                det(img)  # warm caches for this input shape; the timed run follows
                t0 = time.perf_counter()
                dets[n] = det(img)
                stats[n]["ms"].append(1000 * (time.perf_counter() - t0))
            ref = dets[DEFAULT]
            for cls in CLASSES:
                default_boxes[cls] += len(boxes_of(ref, cls))
            for n, d in dets.items():
                s = stats[n]
                s["riders"] += riders(d)
                for cls in CLASSES:
                    mine, theirs = boxes_of(d, cls), boxes_of(ref, cls)
                    s["boxes"][cls] += len(mine)
                    k = matched(theirs, mine)
                    s["found_of_default"][cls] += k
                    s["extra"][cls] += len(mine) - k
        h, w = frames[0].shape[:2]
        out[clip] = {"frames": len(frames), "size": f"{w}x{h}", "default_boxes": default_boxes, "candidates": {}}
        for n, s in stats.items():
            out[clip]["candidates"][n] = {
                "ms_median": round(float(np.median(s["ms"])), 1),
                "boxes": s["boxes"],
                "riders": s["riders"],
                "found_of_default": s["found_of_default"],
                "extra": s["extra"],
            }
        print(f"  {clip}: {len(frames)} frames", flush=True)
    return out


def rule_level(names: list[str]) -> dict[str, dict[str, str]]:
    """benchmarks/rules_accuracy.py's labelled real clips, each candidate as the camera's detector."""
    from benchmarks.rules_accuracy import REAL, fmt
    from edge.analyze import analyze_video
    from edge.config import load_camera_config
    from tests.scenarios.traffic_labels import load_labels, read_events, score_events, video_start

    out: dict[str, dict[str, str]] = {}
    for n in names:
        cand = CANDIDATES[n]
        for label_name, config, long_side in REAL:
            labels = load_labels(label_name)
            folder = OUT / n / label_name
            cam = load_camera_config(REPO_ROOT / "configs" / "cameras" / f"{config}.yaml")
            video = video_path(labels["video"])
            # The clip's own long side as rules_accuracy.py runs it, unless the candidate sets one.
            cfg = DetectorConfig(**{"long_side": long_side, **cand})
            t0 = time.perf_counter()
            analyze_video(video, cam, folder, detector_config=cfg, start_time=video_start(video))
            scores = score_events(read_events(folder), labels)
            for ty, s in scores.items():
                out.setdefault(f"{label_name} {ty}", {})[n] = fmt(s)
            print(f"  rules {n} {label_name}: {time.perf_counter() - t0:.0f} s", flush=True)
    return out


def head_level(names: list[str], every: int, input_size: int) -> dict[str, dict[str, Any]]:
    """The helmet role on each candidate's riders: on the Hanoi clip (pillion passengers, ~10 px
    heads), rider crops as the no-helmet rule cuts them (the motorcycle with the people seated on it,
    at least `min_rider_share` of the frame tall) from each candidate's boxes on the same frames, and
    in how many the helmet model finds a rider's head (at one input size, frame by frame: no tracking)."""
    from edge.crops import clip_box
    from edge.rules.helmet import NoHelmetConfig, rider_heads, rider_region
    from edge.secondary import CropDetector

    rule = NoHelmetConfig()
    helmet = CropDetector(rule.model, input_size, rule.confidence)
    detectors = {n: make_detector(DetectorConfig(**CANDIDATES[n])) for n in names}
    frames = sample_frames(video_path(CLIPS[0]), every)
    out: dict[str, dict[str, Any]] = {n: {"crops": 0, "with_head": 0, "heads": 0, "without_helmet": 0} for n in names}
    for img in frames:
        for n, det in detectors.items():
            d = det(img)
            people = boxes_of(d, "person").astype(np.float32)
            bikes = boxes_of(d, "motorcycle").astype(np.float32)
            for k in range(len(bikes)):
                moto = bikes[k]
                region = rider_region(moto, people)
                _, ry1, _, ry2 = clip_box(region, img.shape[:2])
                if ry2 - ry1 < rule.min_rider_share * img.shape[0]:
                    continue
                heads = rider_heads(moto, helmet(img, clip_box(region, img.shape[:2], margin=0.1)))
                s = out[n]
                s["crops"] += 1
                s["with_head"] += bool(heads)
                s["heads"] += len(heads)
                s["without_helmet"] += sum(1 for h in heads if h.label == "Without Helmet")
    print(f"  heads: {len(frames)} frames of {CLIPS[0]}", flush=True)
    return out


def ratio(part: int, whole: int) -> str:
    return f"{part / whole:.2f}" if whole else "–"


def print_tables(det: dict[str, dict[str, Any]], names: list[str]) -> None:
    print("| clip (frames) | candidate | ms/frame | vs default | motorcycles: boxes, found of default, extra "
          "| persons: boxes, found of default, extra | riders |")
    print("|---|---|---|---|---|---|---|")
    for clip, c in det.items():
        base_ms = c["candidates"][DEFAULT]["ms_median"]
        for n in names:
            s = c["candidates"][n]
            cells = []
            for cls in ("motorcycle", "person"):
                cells.append(f"{s['boxes'][cls]}, {ratio(s['found_of_default'][cls], c['default_boxes'][cls])}, "
                             f"{s['extra'][cls]}")
            print(f"| {Path(clip).stem[:28]} ({c['frames']}, {c['size']}) | {n} | {s['ms_median']} | "
                  f"{s['ms_median'] / base_ms:.2f}x | {cells[0]} | {cells[1]} | {s['riders']} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("candidates", nargs="*", help=f"default: all of {', '.join(CANDIDATES)}")
    ap.add_argument("--every", type=int, default=3, help="every Nth decoded frame of each clip")
    ap.add_argument("--rules", action="store_true", help="also the rule-level run on the labelled clips")
    ap.add_argument("--no-detections", action="store_true", help="skip the detection-level run")
    ap.add_argument("--heads", action="store_true", help="also the helmet model on each candidate's rider crops")
    ap.add_argument("--heads-every", type=int, default=12)
    ap.add_argument("--heads-input", type=int, default=160, help="helmet model input (the rule's typical)")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    names = args.candidates or list(CANDIDATES)
    if DEFAULT not in names:
        names.insert(0, DEFAULT)
    result: dict[str, Any] = {}
    t0 = time.perf_counter()
    if not args.no_detections:
        result["detections"] = detection_level(names, args.every)
    if args.heads:
        result["heads"] = head_level(names, args.heads_every, args.heads_input)
    if args.rules:
        result["rules"] = rule_level(names)
    print(f"\n{time.perf_counter() - t0:.0f} s\n")
    if "detections" in result:
        print_tables(result["detections"], names)
    if "heads" in result:
        print("\n| candidate | rider crops | with a rider head | heads | of them Without Helmet |")
        print("|---|---|---|---|---|")
        for n, h in result["heads"].items():
            print(f"| {n} | {h['crops']} | {h['with_head']} | {h['heads']} | {h['without_helmet']} |")
    if "rules" in result:
        print("\n| clip, rule | " + " | ".join(names) + " |")
        print("|---|" + "---|" * len(names))
        for key, cells in result["rules"].items():
            print(f"| {key} | " + " | ".join(cells.get(n, "–") for n in names) + " |")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1), encoding="utf-8")


if __name__ == "__main__":
    OUT.mkdir(parents=True, exist_ok=True)
    main()
