"""Resident memory of the live edge node per added 1080p camera, with the clip buffer on.

Makes a 1080p H.264 variant of a sample video in a temp dir (camera-like: ~4 Mbit/s, 25 fps,
2 s GOP, no B-frames; never committed), serves it as N live RTSP cameras, runs `python -m edge
run` with N cameras (5 s pre-event buffer, detection at 5 fps) for each N, and samples the node's
VmRSS from /proc after a warm-up. Prints one JSON line per N and the per-camera increments.

    EDGE_DATA_DIR=../shared/data python benchmarks/clip_memory.py --cameras 1 2 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from edge.bench import prepare_footage, proc_rss_mb  # noqa: E402
from edge.data import data_dir  # noqa: E402
from edge.local_broker import LocalMosquitto  # noqa: E402
from pipelines.rtsp_server import RtspTestServer  # noqa: E402

SOURCE = "hanoi_lythuongkiet_hangbai_intersection_trafficlight.mp4"
CAMERA_CONFIG = REPO / "configs" / "cameras" / "hanoi_lythuongkiet_hangbai_intersection_trafficlight.yaml"


def run_node(n: int, urls: list[str], mqtt_url: str, work: Path, warmup_s: float, sample_s: float, clips: bool) -> dict:
    state = work / f"node{n}"
    # Each camera needs its own id: copy the camera config with a new id per camera.
    cam_files = []
    for i in range(n):
        doc = yaml.safe_load(CAMERA_CONFIG.read_text(encoding="utf-8"))
        doc["camera"]["id"] = f"cam{i}"
        path = work / f"cam{i}.yaml"
        path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
        cam_files.append(path)
    cams = "".join(f"  - config: {cam_files[i]}\n    source: {urls[i]}\n" for i in range(n))
    node_yaml = work / f"node{n}.yaml"
    node_yaml.write_text(
        f"node:\n  id: bench-{n}\n  state_dir: {state}\nmqtt:\n  url: {mqtt_url}\n"
        f"clips:\n  enabled: {'true' if clips else 'false'}\n  pre_seconds: 5\n  post_seconds: 5\ncameras:\n{cams}",
        encoding="utf-8",
    )
    env = {**os.environ, "PYTHONPATH": str(REPO), "EDGE_DATA_DIR": str(data_dir())}
    log_path = work / f"node{n}-{clips}.log"
    log = open(log_path, "w", encoding="utf-8")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [sys.executable, "-m", "edge", "run", "--config", str(node_yaml)],
        cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=log, text=True,
    )
    try:
        time.sleep(warmup_s)
        if proc.poll() is not None:
            raise RuntimeError(f"node exited: {log_path.read_text()[-2000:]}")
        samples = []
        end = time.monotonic() + sample_s
        while time.monotonic() < end:
            samples.append(proc_rss_mb(proc.pid))
            time.sleep(0.5)
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
    streaming = log_path.read_text(encoding="utf-8").count("-> streaming")
    if streaming < n:
        raise RuntimeError(f"only {streaming} of {n} cameras streamed; see {log_path}")
    return {"cameras": n, "clips": clips, "rss_mb_median": round(statistics.median(samples), 1),
            "rss_mb_max": round(max(samples), 1)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cameras", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--bitrate", default="4M")
    ap.add_argument("--warmup", type=float, default=25.0, help="seconds before sampling (buffers fill in 5-7 s)")
    ap.add_argument("--sample", type=float, default=15.0)
    ap.add_argument("--no-clips", action="store_true", help="the same without the packet buffer, for comparison")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="clipmem-") as tmp:
        work = Path(tmp)
        video = prepare_footage(SOURCE, "1080p", args.bitrate)  # the same camera stream as `edge bench`
        n_max = max(args.cameras)
        mounts = {f"cam{i}": str(video) for i in range(n_max)}
        with LocalMosquitto(state_dir=work / "broker") as broker, RtspTestServer(mounts) as rtsp:
            urls = [rtsp.url(f"cam{i}") for i in range(n_max)]
            results = []
            for n in args.cameras:
                r = run_node(n, urls, broker.url, work, args.warmup, args.sample, not args.no_clips)
                results.append(r)
                print(json.dumps(r), flush=True)
        by_n = {r["cameras"]: r["rss_mb_median"] for r in results}
        ns = sorted(by_n)
        for a, b in zip(ns, ns[1:], strict=False):
            print(json.dumps({"from": a, "to": b, "rss_mb_per_added_camera": round((by_n[b] - by_n[a]) / (b - a), 1)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
