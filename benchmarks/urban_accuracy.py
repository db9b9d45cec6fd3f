"""Per-rule accuracy of the urban rules (littering, sidewalk encroachment) on the synthetic
scenarios and the labelled real footage: precision, recall, false events per hour.

    PYTHONPATH=. EDGE_DATA_DIR=../shared/data .venv/bin/python benchmarks/urban_accuracy.py

Prints a Markdown table (docs/benchmarks.md), the events per real clip, the cost of camera motion
compensation (ms per analysed frame at 1280x720 and 640x480, edge/registration.py) and, with
--json, the raw outcome per scenario.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edge.analyze import make_detector  # noqa: E402
from edge.config import DetectorConfig  # noqa: E402
from tests.scenarios import urban_real, urban_synth  # noqa: E402


def table(rows: list[urban_synth.Outcome]) -> list[dict]:
    out = []
    for rule in ("littering", "sidewalk_encroachment"):
        for kind in ("synthetic", "real"):
            sel = [r for r in rows if r.rule == rule and r.scenario.startswith("real:") == (kind == "real")]
            if not sel:
                continue
            tp, fp, fn = (sum(getattr(r, k) for r in sel) for k in ("tp", "fp", "fn"))
            hours = sum(r.seconds for r in sel) / 3600
            out.append({
                "rule": rule, "set": kind, "scenarios": len(sel), "footage_s": round(hours * 3600, 1),
                "truth": tp + fn, "tp": tp, "fp": fp, "fn": fn,
                "precision": round(tp / (tp + fp), 3) if tp + fp else None,
                "recall": round(tp / (tp + fn), 3) if tp + fn else None,
                "false_per_hour": round(fp / hours, 1) if hours else None,
            })
    return out


def registration_cost(frames: int = 40) -> list[dict]:
    """Median and p90 ms of one registration (edge/registration.py, defaults) per frame size, on
    real clips: a drifting elevated view and a fixed one, every 5th frame."""
    import cv2
    import numpy as np

    from edge.data import video_path
    from edge.registration import FrameRegistrar

    out = []
    for clip in ("vn_haiphong_truccat_junction_sidewalk_vendor_elevated.mp4", "tw_sidewalk_bag_left_behind_aboda_video4.avi"):
        cap = cv2.VideoCapture(str(video_path(clip)))
        raw = []
        while len(raw) < frames:
            ok, f = cap.read()
            if not ok:
                break
            raw.append(f)
            for _ in range(4):
                cap.grab()
        cap.release()
        for size in ((1280, 720), (640, 480)):
            reg, ms = FrameRegistrar(), []
            for k, f in enumerate(raw):
                img = cv2.resize(f, size, interpolation=cv2.INTER_AREA)
                t0 = time.perf_counter()
                r = reg.update(img, k / 5)
                ms.append(1000 * (time.perf_counter() - t0))
            out.append({"clip": clip, "size": f"{size[0]}x{size[1]}", "frames": len(ms) - 1,
                        "median_ms": round(float(np.median(ms[1:])), 1),
                        "p90_ms": round(float(np.percentile(ms[1:], 90)), 1), "registered": bool(r.ok)})
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--no-real", action="store_true")
    args = ap.parse_args()
    t0 = time.perf_counter()
    rows = urban_synth.evaluate_all(make_detector(urban_synth.DETECTOR))
    if not args.no_real:
        rows += urban_real.evaluate_all(make_detector(DetectorConfig()))  # as the cameras run
    elapsed = time.perf_counter() - t0
    if args.json:
        print(json.dumps([{k: v for k, v in r.__dict__.items() if k != "events"} for r in rows], indent=1))
    print("| rule | set | scenarios | footage (s) | truth | TP | FP | FN | precision | recall | false events / h |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in table(rows):
        fmt = lambda v: "n/a" if v is None else v  # noqa: E731
        print(f"| {r['rule']} | {r['set']} | {r['scenarios']} | {r['footage_s']} | {r['truth']} | {r['tp']} | "
              f"{r['fp']} | {r['fn']} | {fmt(r['precision'])} | {fmt(r['recall'])} | {fmt(r['false_per_hour'])} |")
    print(f"\n{len(rows)} scenario-rule runs in {elapsed:.0f} s")
    real = [r for r in rows if r.scenario.startswith("real:")]
    if real:
        print("\n| clip (label) | rule | events expected | found | false events |\n|---|---|---|---|---|")
        for r in real:
            print(f"| {r.scenario[5:]} | {r.rule} | {r.tp + r.fn} | {r.tp} | {r.fp} |")
        print("\n| registration: clip | frame | frames | median ms | p90 ms |\n|---|---|---|---|---|")
        for c in registration_cost():
            print(f"| {c['clip']} | {c['size']} | {c['frames']} | {c['median_ms']} | {c['p90_ms']} |")
    for r in rows:
        if r.fp or r.fn:
            print(f"  {r.scenario} {r.rule}: tp={r.tp} fp={r.fp} fn={r.fn}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
