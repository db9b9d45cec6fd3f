"""Crop models (helmet, plate) on other engines against ONNX Runtime FP32, on real crops
(docs/benchmarks.md, "OpenVINO backend: the agreement set grown").

    EDGE_DATA_DIR=../shared/data PYTHONPATH=. .venv/bin/python benchmarks/crop_agreement.py \\
        [--engines openvino:fp32 openvino:bf16] [--write] [--json FILE]

Crops are cut as the rules cut them, from every camera config's sample video (frames at 2 per
second, YOLO11n on ONNX Runtime FP32 finding the road users): rider regions (a motorcycle joined
with the people seated on it, 10% margin; no-helmet rule) for helmet_yolo12m at the rule's input,
vehicle boxes (10% margin; plate cropper) for license_plate_yolov8n at its input, plus the plate
photos of EDGE_DATA_DIR/plates. Per crop, the reference's *decision* is its most confident box's
class (helmet: With / Without Helmet; plate: found); an engine loses a decision when its boxes have
no same-class box at IoU >= 0.5 with that box. Kept: at most 2% of the reference's decisions lost
(models/agreement.py's rule), recorded per model file in models/backends.yaml with --write, where
`backend: auto` takes the crop models' engine from as it does the detector's.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

import models
from edge.config import PlateConfig, load_camera_config
from edge.crops import clip_box, cut
from edge.data import data_dir, video_path
from edge.detector import YoloDetector
from edge.rules.helmet import NoHelmetConfig, rider_region
from edge.sources import VideoFileSource
from models import agreement as ag

VEHICLES = ("car", "motorcycle", "bus", "truck")
MIN_CROP_PX = 32  # rules skip smaller crops (a head / plate is not readable below this)
PER_VIDEO = 80  # crops per video and kind at most, so that one busy clip does not outweigh the rest


def collect_crops(fps: float = 2.0) -> dict[str, list[np.ndarray]]:
    det = YoloDetector(models.verify("yolo11n"))  # ONNX Runtime FP32, as the cameras ran it
    crops: dict[str, list[np.ndarray]] = {"helmet": [], "plate": []}
    for path in ag.camera_configs():
        cam = load_camera_config(path)
        got = {"helmet": 0, "plate": 0}
        source = VideoFileSource(video_path(cam.camera.source), analysis_fps=fps)
        for frame in source.frames():
            img = frame.image
            d = det(img)
            names = [d.class_name(i) for i in range(len(d))]
            people = np.array([d.xyxy[i] for i, n in enumerate(names) if n == "person"], np.float32).reshape(-1, 4)
            for i, n in enumerate(names):
                if n not in VEHICLES:
                    continue
                if n == "motorcycle" and got["helmet"] < PER_VIDEO:
                    x1, y1, x2, y2 = clip_box(rider_region(d.xyxy[i], people), img.shape[:2], margin=0.1)
                    if y2 - y1 >= MIN_CROP_PX and x2 - x1 >= 8:
                        crops["helmet"].append(img[y1:y2, x1:x2].copy())
                        got["helmet"] += 1
                if got["plate"] < PER_VIDEO:
                    crop = cut(img, d.xyxy[i], margin=0.1)
                    if crop.shape[0] >= MIN_CROP_PX and crop.shape[1] >= 8:
                        crops["plate"].append(crop)
                        got["plate"] += 1
            if got["helmet"] >= PER_VIDEO and got["plate"] >= PER_VIDEO:
                break
        source.stop()
        print(f"  {path.stem}: {got['helmet']} rider crops, {got['plate']} vehicle crops", flush=True)
    photos = sorted((data_dir() / "plates").rglob("*.jpg"))
    crops["plate"] += [im for p in photos if (im := cv2.imread(str(p))) is not None]
    print(f"  + {len(photos)} plate photos", flush=True)
    return crops


def boxes(det: YoloDetector, crops: list[np.ndarray]) -> tuple[list[tuple], list[float]]:
    out, ms = [], []
    for c in crops:
        t0 = time.perf_counter()
        d = det(c)
        ms.append(1000 * (time.perf_counter() - t0))
        out.append((d.xyxy, d.class_id, d.confidence))
    return out, ms


def compare(ref: list[tuple], test: list[tuple]) -> dict[str, Any]:
    ref_n = test_n = matched = decisions = lost = 0
    for r, t in zip(ref, test, strict=True):
        ref_n += len(r[0])
        test_n += len(t[0])
        matched += ag.match_boxes(r, t)
        if len(r[0]):
            decisions += 1
            top = int(np.argmax(r[2]))
            one = (r[0][top : top + 1], r[1][top : top + 1], r[2][top : top + 1])
            if ag.match_boxes(one, t) == 0:
                lost += 1
    return {
        "fp32_events": decisions,
        "events_lost": lost,
        "events_extra": sum(1 for r, t in zip(ref, test, strict=True) if not len(r[0]) and len(t[0])),
        "box_precision": round(matched / test_n, 4) if test_n else 1.0,
        "box_recall": round(matched / ref_n, 4) if ref_n else 1.0,
        "kept": decisions > 0 and lost <= ag.MAX_EVENTS_LOST * decisions,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--engines", nargs="+", default=["openvino:fp32", "openvino:bf16"])
    ap.add_argument("--write", action="store_true", help="record the verdicts in models/backends.yaml")
    ap.add_argument("--json", help="also write the results as JSON to this file")
    args = ap.parse_args()
    t0 = time.perf_counter()
    print("collecting crops ...", flush=True)
    crops = collect_crops()
    helmet, plate = NoHelmetConfig(), PlateConfig()
    specs = {
        "helmet_yolo12m": ("helmet", helmet.input_size, helmet.confidence),
        "license_plate_yolov8n": ("plate", plate.input_size, plate.confidence),
    }
    results: dict[str, dict[str, Any]] = {}
    for name, (kind, size, conf) in specs.items():
        path = models.verify(name)
        engines = {"onnxruntime:fp32": YoloDetector(path, input_size=(size, size), confidence=conf)}
        for e in args.engines:
            backend, _, precision = e.partition(":")
            engines[e] = YoloDetector(path, input_size=(size, size), confidence=conf, backend=backend,
                                      precision=precision or "auto")
        runs = {e: boxes(d, crops[kind]) for e, d in engines.items()}
        # Timing: interleaved rounds over the first 40 crops, median ms per crop.
        sample = crops[kind][:40]
        times: dict[str, list[float]] = {e: [] for e in engines}
        for _ in range(3):
            for e, d in engines.items():
                times[e] += boxes(d, sample)[1]
        ms = {e: round(statistics.median(t), 2) for e, t in times.items()}
        ref = runs["onnxruntime:fp32"][0]
        rows = {"onnxruntime:fp32": {"reference": True, "kept": True, "ms_per_frame": ms["onnxruntime:fp32"],
                                     "speed": 1.0}}
        for e in args.engines:
            row = compare(ref, runs[e][0])
            row.update(ms_per_frame=ms[e], reference_ms_per_frame=ms["onnxruntime:fp32"],
                       speed=round(ms[e] / ms["onnxruntime:fp32"], 3))
            row["verdict"] = (
                f"{'kept' if row['kept'] else 'rejected'}: lost {row['events_lost']} of {row['fp32_events']} "
                f"crop decisions ({100 * row['events_lost'] / max(1, row['fp32_events']):.1f}%, limit 2%)"
            )
            rows[e] = row
        results[name] = {"crops": len(crops[kind]), "input": [size, size], "confidence": conf, "engines": rows}
    print(f"\n{time.perf_counter() - t0:.0f} s\n")
    print("| model | input | crops | engine | ref. decisions | lost | extra | boxes: precision / recall | ms/crop (ORT FP32) | kept |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, r in results.items():
        for e, row in r["engines"].items():
            if row.get("reference"):
                continue
            print(f"| {name} | {r['input'][0]} | {r['crops']} | {e} | {row['fp32_events']} | {row['events_lost']} "
                  f"| {row['events_extra']} | {row['box_precision']:.3f} / {row['box_recall']:.3f} "
                  f"| {row['ms_per_frame']} ({row['reference_ms_per_frame']}) | {'yes' if row['kept'] else 'no'} |")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2), encoding="utf-8")
    if args.write:
        write(results, " ".join(sys.argv[1:]))
        print(f"written to {ag.BACKENDS_PATH}")


def write(results: dict[str, dict[str, Any]], command: str) -> None:
    import yaml

    path = ag.BACKENDS_PATH
    data = (yaml.safe_load(path.read_text(encoding="utf-8")) if path.is_file() else None) or {}
    for name, r in results.items():
        data.setdefault("models", {})[name] = {
            "sha256": models.registry()[name]["sha256"],
            "input": r["input"],
            "reference": "onnxruntime:fp32",
            "unit": "crop decisions (the reference's most confident box per crop) on real crops",
            "crops": r["crops"],
            "measured": time.strftime("%Y-%m-%d"),
            "machine": ag.machine_note(),
            "command": f"benchmarks/crop_agreement.py {command}".strip(),
            "engines": r["engines"],
        }
    path.write_text(ag.BACKENDS_HEADER + yaml.safe_dump(data, sort_keys=False, width=110), encoding="utf-8")


if __name__ == "__main__":
    main()
