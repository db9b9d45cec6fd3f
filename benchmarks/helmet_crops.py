"""Rider crops of a real clip (the whole rider region, as the no-helmet rule cuts it): in how many
the helmet model finds a rider's head, per model input size, and the ms per crop
(docs/benchmarks.md, "Riders and small heads").

    EDGE_DATA_DIR=/work/shared/data PYTHONPATH=. .venv/bin/python benchmarks/helmet_crops.py \\
        --every 24 --out var/bench/helmet_crops.json

Crops are taken on every `--every`-th analysed frame, for each motorcycle the shared motion model
follows whose rider region is at least `min_rider_share` of the frame tall; the JSON keeps each
crop's size and the heads found at each input size.
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import timedelta
from pathlib import Path

import numpy as np

from edge.analyze import EPOCH, make_detector
from edge.config import DetectorConfig, load_camera_config
from edge.crops import clip_box
from edge.data import video_path
from edge.motion import motion_gate_for
from edge.pipeline import CameraAnalyzer
from edge.rules.helmet import NoHelmetConfig, rider_heads, rider_region
from edge.secondary import CropDetector
from edge.sources import VideoFileSource

REPO_ROOT = Path(__file__).resolve().parent.parent
HANOI = "hanoi_lythuongkiet_hangbai_intersection_trafficlight"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--video", default=f"{HANOI}.mp4")
    ap.add_argument("--config", default=str(REPO_ROOT / "configs" / "cameras" / f"{HANOI}.yaml"))
    ap.add_argument("--every", type=int, default=24)
    ap.add_argument("--sizes", default="128,160,192,224,320")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    cam = load_camera_config(args.config)
    analyzer = CameraAnalyzer("bench", cam, make_detector(DetectorConfig()), deterministic_ids=True,
                              motion=motion_gate_for(cam))
    models = {s: CropDetector("helmet_yolo12m.onnx", s, NoHelmetConfig().confidence) for s in sizes}
    min_share = NoHelmetConfig().min_rider_share
    rows: list[dict] = []
    seen = [0]

    def hook(frame, detections, tracks, rules, violations) -> None:
        seen[0] += 1
        if seen[0] % args.every:
            return
        motion = next(getattr(r, "rule", r).motion for r in rules if hasattr(getattr(r, "rule", r), "motion"))
        img = frame.image
        people = np.array([detections.xyxy[i] for i in range(len(detections)) if detections.class_name(i) == "person"],
                          np.float32).reshape(-1, 4)
        for veh in motion.current:
            if veh.class_name != "motorcycle":
                continue
            region = rider_region(veh.box, people)
            _, ry1, _, ry2 = clip_box(region, img.shape[:2])
            if ry2 - ry1 < min_share * img.shape[0]:
                continue
            crop = clip_box(region, img.shape[:2], margin=0.1)
            row: dict = {"crop_hw": [crop[3] - crop[1], crop[2] - crop[0]], "found": {}, "ms": {}}
            for s, model in models.items():
                t0 = time.perf_counter()
                heads = rider_heads(veh.box, model(img, crop))
                row["ms"][s] = (time.perf_counter() - t0) * 1000
                row["found"][s] = [(h.label, round(h.box[3] - h.box[1], 1)) for h in heads]
            rows.append(row)

    analyzer.on_frame = hook
    for f in VideoFileSource(video_path(args.video), cam.camera.analysis_fps).frames():
        analyzer.process(f, EPOCH + timedelta(seconds=f.pts))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(rows), encoding="utf-8")
    print(f"{len(rows)} rider crops")
    for s in sizes:
        hit = sum(1 for r in rows if r["found"][s])
        ms = np.median([r["ms"][s] for r in rows]) if rows else 0.0
        print(f"input {s}: a head in {hit} of {len(rows)}, median {ms:.0f} ms a crop")


if __name__ == "__main__":
    main()
