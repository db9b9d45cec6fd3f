"""Detection ROI (edge.roi) on every sample camera: events and cost with `detection_roi` off and on,
in one run, the same detector for both (docs/benchmarks.md, "Detection ROI").

    EDGE_DATA_DIR=/work/shared/data PYTHONPATH=. .venv/bin/python benchmarks/detection_roi.py [--only NAME]

Cameras whose ROI is the full frame (no geometry, or a box > 0.7 of the frame) run the same code
either way: listed, not analysed twice. Work files go under var/bench/roi (ignored).
"""

from __future__ import annotations

import argparse
import json
import os
from datetime import UTC, datetime
from pathlib import Path

from edge.analyze import analyze_video, make_detector
from edge.config import ClipsConfig, DetectorConfig, camera_detector, load_camera_config
from edge.roi import detection_roi

REPO_ROOT = Path(__file__).resolve().parent.parent
OUT = REPO_ROOT / "var" / "bench" / "roi"
START = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)


def events(out_dir: Path) -> list[tuple]:
    rows = [json.loads(line) for line in (out_dir / "events.jsonl").read_text().splitlines() if line]
    return sorted((r["type"], r["phase"], r["started_at"], (r.get("zone") or {}).get("id")) for r in rows)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", help="a camera config's name (without .yaml)")
    args = ap.parse_args()
    print(
        "| camera | ROI (share of frame) | events off / on | identical | ms/frame off / on | frames/s off / on | ratio |"
    )
    print("|---|---|---|---|---|---|---|")
    for path in sorted((REPO_ROOT / "configs" / "cameras").glob("*.yaml")):
        if args.only and path.stem != args.only:
            continue
        camera = load_camera_config(path)
        w, h = camera.scene.reference_size
        roi = detection_roi(camera.scene, (w, h))
        source = camera.camera.source
        if roi is None or source is None:
            why = "full frame" if roi is None else "no video"
            print(f"| {path.stem} | {why} | – | same code | – | – | – |")
            continue
        share = (roi[2] - roi[0]) * (roi[3] - roi[1]) / (w * h)
        video = Path(os.environ.get("EDGE_DATA_DIR", "/work/shared/data")) / "videos" / source
        detector = make_detector(camera_detector(DetectorConfig(), camera))
        runs = {}
        for on in (False, True):
            cam = camera.model_copy(update={"detection_roi": camera.detection_roi.model_copy(update={"enabled": on})})
            out = OUT / path.stem / ("on" if on else "off")
            out.mkdir(parents=True, exist_ok=True)
            s = analyze_video(video, cam, out, detector=detector, start_time=START, clips=ClipsConfig(enabled=False))
            runs[on] = (s, events(out))
        (off, ev_off), (on_, ev_on) = runs[False], runs[True]
        ms_off, ms_on = 1000 * off.seconds / off.frames, 1000 * on_.seconds / on_.frames
        same = (
            "yes"
            if ev_off == ev_on
            else f"no: lost {sorted(set(ev_off) - set(ev_on))}, new {sorted(set(ev_on) - set(ev_off))}"
        )
        print(
            f"| {path.stem} | {roi} ({share:.2f}) | {len(ev_off)} / {len(ev_on)} | {same} | {ms_off:.1f} / {ms_on:.1f} "
            f"| {off.analysed_fps:.1f} / {on_.analysed_fps:.1f} | {ms_off / ms_on:.2f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
