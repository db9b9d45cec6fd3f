"""What the regions-of-interest pass (edge/regions.py) costs and gains (docs/benchmarks.md,
"Regions-of-interest pass").

    EDGE_DATA_DIR=/work/shared/data PYTHONPATH=. nice -n 10 .venv/bin/python benchmarks/regions_pass.py \
        [--only cost|rules] [--seconds 30]

cost: per clip, two analyses of the same frames side by side in one run, frame by frame (pass off,
pass on; motion gating off, so every frame runs the detector): ms per analysed frame of each, and
the person / motorcycle / bicycle boxes whose ground point is in a zone, all and small ones (under
6% of the frame height). rules: the labelled real clips analysed with the pass off and on, scored
as benchmarks/rules_accuracy.py does. Work files under var/bench/regions (ignored).
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from edge.analyze import analyze_video, make_detector
from edge.config import CameraConfig, DetectorConfig, load_camera_config
from edge.data import video_path
from edge.detections import Detections
from edge.pipeline import CameraAnalyzer
from edge.sources import VideoFileSource

REPO_ROOT = Path(__file__).resolve().parent.parent
OUT = REPO_ROOT / "var" / "bench" / "regions"
SMALL = 0.06  # a box under this share of the frame height is "small"
# (camera config, regions_pass.scale): 640-wide clips are already at native resolution in the
# full-frame pass (long side 640), so they need upscaled tiles; wider ones gain at native.
COST = [
    ("hanoi_lythuongkiet_hangbai_intersection_trafficlight", 2.0),
    ("vn_haiphong_truccat_junction_sidewalk_vendor_elevated", 1.0),
]
RULES = [
    # (label file, camera config, scale)
    ("hanoi_lythuongkiet_hangbai_intersection_trafficlight", "hanoi_lythuongkiet_hangbai_intersection_trafficlight", 2.0),
    ("id_cilacap_etle_ptz_stopline_helmet", "id_cilacap_etle_ptz_stopline_helmet", 2.0),
    ("motorcyclist_without_helmet", "motorcyclist_without_helmet", 1.0),
]
CLASSES = ["person", "motorcycle", "bicycle"]


EVERY = 1  # regions_pass.every_n_frames (--every)


def with_pass(cam: CameraConfig, scale: float) -> CameraConfig:
    over = {"enabled": True, "scale": scale, "every_n_frames": EVERY}
    return cam.model_copy(update={"regions_pass": cam.regions_pass.model_copy(update=over)})


def in_zones(analyzer: CameraAnalyzer, det: Detections, frame_h: int) -> tuple[int, int]:
    """(riders/persons/bikes in a zone, of which small)."""
    if not len(det):
        return 0, 0
    inside = np.zeros(len(det), dtype=bool)
    for zone in analyzer._zones:
        inside |= zone.contains(det.ground_points())
    sel = inside & np.isin(det.class_names(), CLASSES)
    small = sel & ((det.xyxy[:, 3] - det.xyxy[:, 1]) < SMALL * frame_h)
    return int(sel.sum()), int(small.sum())


def cost(seconds: float) -> None:
    detector = make_detector(DetectorConfig())
    print("| clip | frames | full frame ms/frame | with pass ms/frame | added ms (ratio) | tiles/frame | "
          "person+bike boxes in zones off → on | small ones off → on |")
    print("|---|---|---|---|---|---|---|---|")
    for name, scale in COST:
        cam = load_camera_config(REPO_ROOT / "configs" / "cameras" / f"{name}.yaml")
        video = video_path(cam.camera.source or "")
        off = CameraAnalyzer("bench", cam, detector, deterministic_ids=True)
        on = CameraAnalyzer("bench", with_pass(cam, scale), detector, deterministic_ids=True)
        ms = {"off": 0.0, "on": 0.0}
        counts = {"off": [0, 0], "on": [0, 0]}
        frames, size = 0, ""
        start = datetime(2026, 1, 1, tzinfo=UTC)
        for frame in VideoFileSource(video, cam.camera.analysis_fps).frames():
            if frame.pts > seconds:
                break
            h, w = frame.image.shape[:2]
            size = f"{w}x{h}"
            for key, analyzer in (("off", off), ("on", on)):  # interleaved: the same load on both
                t0 = time.perf_counter()
                analyzer.process(frame, start + timedelta(seconds=frame.pts))
                ms[key] += 1000 * (time.perf_counter() - t0)
                n, small = in_zones(analyzer, analyzer._last_detections or Detections.empty(), h)
                counts[key][0] += n
                counts[key][1] += small
            frames += 1
        stats = on.detect.stats  # type: ignore[attr-defined]
        a, b = ms["off"] / frames, ms["on"] / frames
        print(f"| {name} ({size}, scale {scale:g}) | {frames} | {a:.0f} | {b:.0f} | +{b - a:.0f} ({b / a:.2f}×) | "
              f"{stats.tiles / max(stats.passes, 1):.1f} | {counts['off'][0]} → {counts['on'][0]} | "
              f"{counts['off'][1]} → {counts['on'][1]} |", flush=True)


def rules(only: str | None = None) -> None:
    from tests.scenarios.traffic_labels import load_labels, read_events, score_events, video_start

    print("| clip | rule | pass off: P / R / events | pass on: P / R / events |")
    print("|---|---|---|---|")
    for label_name, config, scale in RULES:
        if only and only not in label_name:
            continue
        labels = load_labels(label_name)
        cam = load_camera_config(REPO_ROOT / "configs" / "cameras" / f"{config}.yaml")
        video = video_path(labels["video"])
        scores = {}
        for key, camera in (("off", cam), ("on", with_pass(cam, scale))):
            folder = OUT / label_name / (key if key == "off" or EVERY == 1 else f"on-every{EVERY}")
            analyze_video(video, camera, folder, detector_config=DetectorConfig(), start_time=video_start(video))
            ran = camera.rules.model_fields_set  # a label file may hold acts of rules the camera does not run
            scores[key] = {ty: s for ty, s in score_events(read_events(folder), labels).items() if ty in ran}
        for ty in sorted(set(scores["off"]) | set(scores["on"])):
            cells = []
            for key in ("off", "on"):
                s = scores[key].get(ty)
                if s is None:
                    cells.append("– / – / 0")
                    continue
                p = f"{s.precision:.2f}" if s.tp + s.fp else "–"
                r = f"{s.recall:.2f}" if s.tp + s.fn else "–"
                cells.append(f"{p} / {r} / {s.tp + s.fp} (tp {s.tp}, fp {s.fp}, fn {s.fn})")
            print(f"| {label_name} (scale {scale:g}) | {ty} | {cells[0]} | {cells[1]} |", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--only", choices=["cost", "rules"])
    ap.add_argument("--seconds", type=float, default=30.0, help="of each clip, for the cost table")
    ap.add_argument("--clip", help="rules: only the labelled clips whose name has this in it")
    ap.add_argument("--every", type=int, default=1, help="regions_pass.every_n_frames")
    args = ap.parse_args()
    global EVERY
    EVERY = args.every
    if args.only in (None, "cost"):
        cost(args.seconds)
    if args.only in (None, "rules"):
        rules(args.clip)


if __name__ == "__main__":
    OUT.mkdir(parents=True, exist_ok=True)
    main()
