"""Evidence bytes per event at the edge's defaults, from the real pipeline on camera-like footage.

    EDGE_DATA_DIR=/work/shared/data .venv/bin/python benchmarks/evidence_sizes.py [--json]

The sample clip is made into the camera stream `python -m edge bench` serves (H.264 1920x1080 at
25 fps, 4 Mbit/s, 2 s GOP, no B-frames: `edge.bench.prepare_footage`, cached), then analysed by
`python -m edge analyze` with the camera's config and the node defaults (clips on: 5 s before the
event from a keyframe, 5 s after). What is counted is what the node sends per event: each event's
final record (the one carrying its clip) lists its evidence with kind and size; files are
counted once by SHA-256 (events close in time share one clip). Snapshots, crops and composites
ride MQTT, the clip goes over HTTP. The capacity plan in docs/deploy.md uses the result.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
DEFAULT_VIDEO = "hanoi_lythuongkiet_hangbai_intersection_trafficlight.mp4"


def summarize(events_jsonl: Path) -> dict[str, Any]:
    """Per kind: files and bytes (unique by sha256); per event: MQTT and HTTP files and bytes."""
    final: dict[str, dict[str, Any]] = {}
    for line in events_jsonl.read_text(encoding="utf-8").splitlines():
        if line.strip():
            e = json.loads(line)
            final[e["id"]] = e  # the later record of an id is the one with its clip
    seen: set[str] = set()
    kinds: dict[str, dict[str, int]] = defaultdict(lambda: {"files": 0, "bytes": 0})
    for e in final.values():
        for ref in e.get("evidence", []):
            if ref["sha256"] in seen:
                continue
            seen.add(ref["sha256"])
            kinds[ref["kind"]]["files"] += 1
            kinds[ref["kind"]]["bytes"] += int(ref["size"])
    n = len(final)
    mqtt = {k: v for k, v in kinds.items() if k != "clip"}
    clip = kinds.get("clip", {"files": 0, "bytes": 0})
    per = (lambda x: round(x / n, 2)) if n else (lambda x: 0.0)
    return {
        "events": n,
        "kinds": {k: {**v, "mean_bytes": round(v["bytes"] / v["files"]) if v["files"] else 0} for k, v in sorted(kinds.items())},
        "mqtt_files_per_event": per(sum(v["files"] for v in mqtt.values())),
        "mqtt_bytes_per_event": round(per(sum(v["bytes"] for v in mqtt.values()))),
        "clips_per_event": per(clip["files"]),
        "clip_bytes_per_event": round(per(clip["bytes"])),
        "bytes_per_event": round(per(sum(v["bytes"] for v in kinds.values()))),
        "files_per_event": per(sum(v["files"] for v in kinds.values())),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--video", default=DEFAULT_VIDEO)
    ap.add_argument("--config", type=Path, default=None, help="camera config (default: configs/cameras/<video stem>.yaml)")
    ap.add_argument("--resolution", default="1080p", choices=("1080p", "720p"))
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    from edge.bench import prepare_footage

    footage = prepare_footage(args.video, args.resolution)
    config = args.config or REPO / "configs" / "cameras" / f"{Path(args.video).stem}.yaml"
    out = args.out or Path(tempfile.mkdtemp(prefix="evidence-sizes-"))
    run = subprocess.run(
        [sys.executable, "-m", "edge", "analyze", str(footage), "--config", str(config), "--out", str(out),
         "--start-time", "2026-12-04T07:30:00+07:00"],
        cwd=REPO, capture_output=True, text=True,
    )  # fmt: skip
    if run.returncode != 0:
        print(run.stderr[-3000:], file=sys.stderr)
        return run.returncode
    result = {"footage": footage.name, "config": str(config), "out": str(out), "analyze": run.stdout.strip(),
              **summarize(out / "events.jsonl")}  # fmt: skip
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for k, v in result.items():
            print(f"{k}: {v}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
