"""Per-rule precision / recall / events of the traffic rules, on the synthetic scenarios and on the
labelled real footage (docs/benchmarks.md, "Traffic rules").

    EDGE_DATA_DIR=/work/shared/data PYTHONPATH=. .venv/bin/python benchmarks/rules_accuracy.py \
        [--only synthetic|real] [--variants N]

Prints a markdown table. Work files go under var/bench/rules (ignored).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from edge.analyze import analyze_video, make_detector
from edge.config import DetectorConfig, load_camera_config
from edge.data import video_path
from tests.scenarios import synth
from tests.scenarios.test_traffic_synthetic import TYPES, run_scene, scenarios
from tests.scenarios.traffic_labels import load_labels, read_events, score_events, video_start

REPO_ROOT = Path(__file__).resolve().parent.parent
OUT = REPO_ROOT / "var" / "bench" / "rules"
REAL = [
    # (label file, camera config, detector long side)
    ("hanoi_lythuongkiet_hangbai_intersection_trafficlight", "hanoi_lythuongkiet_hangbai_intersection_trafficlight", 640),
    ("vn_road_motorbikes_wrongway_screencap", "vn_road_motorbikes_wrongway_screencap", 1280),
    ("motorcyclist_without_helmet", "motorcyclist_without_helmet", 640),
    ("id_cilacap_etle_ptz_stopline_helmet", "id_cilacap_etle_ptz_stopline_helmet", 640),
    ("vn_haiphong_intersection_cctv_signals_stopline", "vn_haiphong_intersection_cctv_signals_stopline", 640),
]


def fmt(s: synth.Score, seconds: float | None = None) -> str:
    events = s.tp + s.fp
    p = f"{s.precision:.2f}" if events else "–"
    r = f"{s.recall:.2f}" if s.tp + s.fn else "–"
    # False events per hour of footage: what a ward's officers would wade through (real clips only).
    per_hour = f", {s.fp / (seconds / 3600):.0f} false/h" if seconds else ""
    return f"{p} / {r} / {events} (tp {s.tp}, fp {s.fp}, fn {s.fn}{per_hour})"


def clip_seconds(video: Path) -> float:
    import cv2

    cap = cv2.VideoCapture(str(video))
    try:
        frames, fps = cap.get(cv2.CAP_PROP_FRAME_COUNT), cap.get(cv2.CAP_PROP_FPS)
    finally:
        cap.release()
    return frames / fps if fps > 0 else 0.0


def synthetic(variants: int) -> dict[str, synth.Score]:
    detector = make_detector(DetectorConfig())
    total = {ty: synth.Score() for ty in TYPES}
    for variant in range(variants + 1):
        for name, scene in scenarios(variant).items():
            events = run_scene(scene, detector)
            for ty, s in synth.score([e[:3] for e in events], scene, TYPES).items():
                total[ty].add(s)
            print(f"  synthetic/{name} v{variant}: {len(events)} events", flush=True)
    return total


def real(seconds: dict[str, float]) -> dict[str, dict[str, synth.Score]]:
    """Scores per labelled clip; `seconds` gets each clip's length."""
    out = {}
    for label_name, config, long_side in REAL:
        labels = load_labels(label_name)
        folder = OUT / label_name
        cam = load_camera_config(REPO_ROOT / "configs" / "cameras" / f"{config}.yaml")
        video = video_path(labels["video"])
        seconds[label_name] = clip_seconds(video)
        analyze_video(video, cam, folder, detector_config=DetectorConfig(long_side=long_side),
                      start_time=video_start(video))
        # Only the rules the camera runs: a label file may hold acts of others (Hanoi's no_helmet
        # acts are measured by benchmarks/helmet_accuracy.py, which adds the rule).
        ran = cam.rules.model_fields_set
        out[label_name] = {ty: s for ty, s in score_events(read_events(folder), labels).items() if ty in ran}
        print(f"  real/{label_name}: done", flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--only", choices=["synthetic", "real"])
    ap.add_argument("--variants", type=int, default=0, help="jittered copies of each synthetic scene besides it")
    args = ap.parse_args()
    t0 = time.perf_counter()
    columns: dict[str, dict[str, synth.Score]] = {}
    seconds: dict[str, float] = {}
    if args.only in (None, "synthetic"):
        columns[f"synthetic ({args.variants + 1} × {len(scenarios(0))} scenes)"] = synthetic(args.variants)
    if args.only in (None, "real"):
        per_clip = real(seconds)
        columns.update({f"{name} ({seconds[name]:.0f} s)": col for name, col in per_clip.items()})
        # Pooled over every real clip that runs the rule: the number the targets are about.
        pooled: dict[str, synth.Score] = {}
        pooled_s: dict[str, float] = {}
        for name, col in per_clip.items():
            for ty, sc in col.items():
                pooled.setdefault(ty, synth.Score()).add(sc)
                pooled_s[ty] = pooled_s.get(ty, 0.0) + seconds[name]
        columns["all real footage"] = pooled
        seconds.update({f"all real footage/{ty}": v for ty, v in pooled_s.items()})
    print(f"\n{time.perf_counter() - t0:.0f} s\n")
    print("| rule | " + " | ".join(columns) + " |")
    print("|---|" + "---|" * len(columns))
    for ty in TYPES:
        cells = []
        for name, col in columns.items():
            if ty not in col:
                cells.append("– (not run)")
                continue
            secs = seconds.get(f"all real footage/{ty}") if name == "all real footage" else seconds.get(name.rsplit(" (", 1)[0])
            cells.append(fmt(col[ty], secs))
        print(f"| {ty} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    Path(OUT).mkdir(parents=True, exist_ok=True)
    main()
