"""The no-helmet rule on every labelled clip with riders, and on the synthetic helmet scenes: per
clip precision / recall / events, the helmet model's runs and the rule's ms per analysed frame,
for the code of a git revision ("before") and of the working tree ("after") in one run
(docs/benchmarks.md, "No-helmet: a head judged as its rider's").

    EDGE_DATA_DIR=/work/shared/data PYTHONPATH=. .venv/bin/python benchmarks/helmet_accuracy.py \\
        [--before REV] [--only NAME ...] [--variants N]

Each clip runs with its camera config's scene and only the no-helmet rule (the camera's own
no_helmet settings, else the project defaults: `no_helmet: {}`), scored against its label file
(tests/scenarios/labels/<clip>.yaml, no_helmet acts only). "before" runs from a git worktree of REV
(var/bench/helmet/tree-REV, made once), each side in its own process, one after the other on the
same frames. Work files (configs, events, evidence) under var/bench/helmet (ignored).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent
OUT = REPO_ROOT / "var" / "bench" / "helmet"
# (label file, camera config): the real clips with riders that have no_helmet labels
CLIPS = [
    ("id_cilacap_etle_ptz_stopline_helmet", "id_cilacap_etle_ptz_stopline_helmet"),
    ("motorcyclist_without_helmet", "motorcyclist_without_helmet"),
    ("hanoi_lythuongkiet_hangbai_intersection_trafficlight", "hanoi_lythuongkiet_hangbai_intersection_trafficlight"),
    ("vn_haiphong_intersection_cctv_signals_stopline", "vn_haiphong_intersection_cctv_signals_stopline"),
]

# Run in a child process with PYTHONPATH at one tree: analyse one clip (or the synthetic helmet
# scenes), the rule's update timed, and write events.jsonl / synthetic.json and stats.json.
CHILD = r'''
import json, sys, time
from pathlib import Path
from edge.rules import helmet
stats = {"frames": 0, "seconds": 0.0, "runs": 0}
update = helmet.NoHelmetRule.update
def timed(self, obs):
    t0 = time.perf_counter()
    try:
        return update(self, obs)
    finally:
        stats["frames"] += 1
        stats["seconds"] += time.perf_counter() - t0
helmet.NoHelmetRule.update = timed
detector_for = helmet.NoHelmetRule._detector
def counted(self, size):
    d = detector_for(self, size)
    def run(image, crop):
        stats["runs"] += 1
        return d(image, crop)
    return run
helmet.NoHelmetRule._detector = counted
kind, arg, out, variants = sys.argv[1], sys.argv[2], Path(sys.argv[3]), int(sys.argv[4])
out.mkdir(parents=True, exist_ok=True)
t0 = time.perf_counter()
if kind == "clip":
    from edge.analyze import analyze_video
    from edge.config import load_camera_config
    from edge.data import video_path
    from tests.scenarios.traffic_labels import video_start
    name, config = arg.split(":", 1)
    video = video_path(name)
    analyze_video(video, load_camera_config(config), out, start_time=video_start(video))
else:
    from edge.analyze import make_detector
    from edge.config import DetectorConfig
    from tests.scenarios import synth
    from tests.scenarios.test_traffic_synthetic import run_scene, scenarios
    detector = make_detector(DetectorConfig())
    score = {"tp": 0, "fp": 0, "fn": 0}
    for v in range(variants + 1):
        for name, scene in scenarios(v).items():
            if scene.actors[0].camera != "helmet":
                continue
            events = run_scene(scene, detector)
            s = synth.score([e[:3] for e in events], scene, ["no_helmet"]).get("no_helmet")
            if s is not None:
                score["tp"] += s.tp; score["fp"] += s.fp; score["fn"] += s.fn
    (out / "synthetic.json").write_text(json.dumps(score))
stats["wall"] = time.perf_counter() - t0
(out / "stats.json").write_text(json.dumps(stats))
'''


def worktree(rev: str) -> Path:
    sha = subprocess.run(["git", "rev-parse", "--short", rev], cwd=REPO_ROOT, check=True, capture_output=True,
                         text=True).stdout.strip()
    tree = OUT / f"tree-{sha}"
    if not tree.exists():
        subprocess.run(["git", "worktree", "add", "--detach", str(tree), sha], cwd=REPO_ROOT, check=True,
                       capture_output=True)
    return tree


def helmet_config(config: str) -> Path:
    """The camera's config with only its no_helmet rule (project defaults when it has none)."""
    raw = yaml.safe_load((REPO_ROOT / "configs" / "cameras" / f"{config}.yaml").read_text(encoding="utf-8"))
    raw["rules"] = {"no_helmet": (raw.get("rules") or {}).get("no_helmet") or {}}
    path = OUT / "configs" / f"{config}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(raw, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def run(tree: Path, kind: str, arg: str, out: Path, variants: int) -> dict:
    env = dict(os.environ, PYTHONPATH=str(tree))
    subprocess.run([sys.executable, "-c", CHILD, kind, arg, str(out), str(variants)], cwd=tree, env=env, check=True)
    return json.loads((out / "stats.json").read_text(encoding="utf-8"))


def cell(tp: int, fp: int, fn: int) -> str:
    p = f"{tp / (tp + fp):.2f}" if tp + fp else "–"
    r = f"{tp / (tp + fn):.2f}" if tp + fn else "–"
    return f"{p} / {r} / {tp + fp} (tp {tp}, fp {fp}, fn {fn})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--before", default="HEAD", help="git revision whose rule is 'before' (default HEAD)")
    ap.add_argument("--only", nargs="*", help="clip label names (or 'synthetic') to run")
    ap.add_argument("--variants", type=int, default=0, help="jittered copies of the synthetic scenes")
    args = ap.parse_args()
    sys.path.insert(0, str(REPO_ROOT))
    from tests.scenarios.traffic_labels import load_labels, read_events, score_events

    sides = {"before": worktree(args.before), "after": REPO_ROOT}
    rows = []
    t0 = time.perf_counter()
    for label, config in CLIPS + [("synthetic", "")]:
        if args.only and label not in args.only:
            continue
        row = {"clip": label}
        for side, tree in sides.items():
            out = OUT / side / label
            if label == "synthetic":
                stats = run(tree, "synthetic", "-", out, args.variants)
                s = json.loads((out / "synthetic.json").read_text(encoding="utf-8"))
                tp, fp, fn = s["tp"], s["fp"], s["fn"]
                events = []
            else:
                stats = run(tree, "clip", f"{load_labels(label)['video']}:{helmet_config(config)}", out, 0)
                events = [e for e in read_events(out) if e["type"] == "no_helmet"]
                sc = score_events(events, load_labels(label)).get("no_helmet")
                tp, fp, fn = (sc.tp, sc.fp, sc.fn) if sc else (0, 0, 0)
            ms = 1000 * stats["seconds"] / max(stats["frames"], 1)
            row[side] = {"tp": tp, "fp": fp, "fn": fn, "ms": ms, "runs": stats["runs"], "frames": stats["frames"],
                         "wall": stats["wall"],
                         "events": [(e["ended_at"], e["objects"][0]["box"], e.get("details", {})) for e in events]}
            print(f"  {label} {side}: {cell(tp, fp, fn)}, {stats['runs']} model runs, {ms:.1f} ms/frame", flush=True)
        rows.append(row)
    (OUT / "results.json").write_text(json.dumps(rows, indent=1), encoding="utf-8")
    print(f"\n{time.perf_counter() - t0:.0f} s; before = {args.before}\n")
    print("| clip | before | after | helmet model runs, before → after | rule ms / analysed frame, before → after |")
    print("|---|---|---|---|---|")
    tot = {s: [0, 0, 0] for s in sides}
    for r in rows:
        b, a = r["before"], r["after"]
        for s in sides:
            tot[s] = [tot[s][0] + r[s]["tp"], tot[s][1] + r[s]["fp"], tot[s][2] + r[s]["fn"]]
        print(f"| {r['clip']} | {cell(b['tp'], b['fp'], b['fn'])} | {cell(a['tp'], a['fp'], a['fn'])} | "
              f"{b['runs']} → {a['runs']} | {b['ms']:.1f} → {a['ms']:.1f} |")
    print(f"| all | {cell(*tot['before'])} | {cell(*tot['after'])} | | |")


if __name__ == "__main__":
    main()
