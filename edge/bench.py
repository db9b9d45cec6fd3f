"""`python -m edge bench`: how many live cameras this box analyses in real time, measured end to end.

N copies of a sample video are served as live RTSP cameras (at their own frame rate, as 1080p or
720p H.264 made from the sample footage), one edge node process watches them all through the full
path (decode -> detect -> track -> rules -> evidence -> outbox -> MQTT) and the benchmark reads
what the node says about itself (its status topic), what the OS says about it (/proc: CPU, RSS)
and what reaches the broker (events).

    python -m edge bench --cameras 4 --duration 60 --json
    python -m edge bench --max --duration 30 --json          # + max_realtime_cameras, decode_limit_cameras
    python -m edge bench --max --baseline --duration 30      # + the naive Ultralytics pipeline, ratio
    python -m edge bench --cameras 3 --sub-stream --duration 30  # detect on a 640x360 sub-stream, record the main

Real time means: every camera analysed within 5% of its target rate over the measuring window and
its analysis did not fall behind (lag under 1 s at the end). Latency is frame capture -> the event
at the broker, measured as (arrival at a subscriber on the broker's host) - (the capture time of
the frame the edge decided on, the event's `detected_at`). The node sends an event at once and
again with its clip once the post-event footage is written: `clip_latency_ms_*` is the second
(it includes the `clips.post_seconds` the clip waits for on purpose).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from contract.paths import packaged_config, source_checkout
from edge.data import video_path

DEFAULT_VIDEO = "hanoi_lythuongkiet_hangbai_intersection_trafficlight.mp4"
DEFAULT_CAMERA_CONFIG = packaged_config("cameras", "hanoi_lythuongkiet_hangbai_intersection_trafficlight.yaml")
RESOLUTIONS = {"1080p": (1920, 1080, "4M"), "720p": (1280, 720, "2M")}
SOURCE_FPS = 25
CLK_TCK = os.sysconf("SC_CLK_TCK")


def cache_dir() -> Path:
    return Path(os.environ.get("EDGE_BENCH_CACHE") or Path.home() / ".cache" / "ioc-edge" / "bench")


def prepare_footage(video: str, resolution: str, bitrate: str | None = None) -> Path:
    """The sample video as a camera would send it: H.264 at 25 fps, 2 s GOP, no B-frames, at
    1080p or 720p (made once, cached; the picture is stretched to 16:9 as the stills are).
    `bitrate` (ffmpeg's form, e.g. "4M") overrides the resolution's usual one."""
    width, height, usual = RESOLUTIONS[resolution]
    bitrate = bitrate or usual
    src = video_path(video)
    suffix = "" if bitrate == usual else f"_{bitrate}"
    out = cache_dir() / f"{Path(video).stem}_{resolution}{SOURCE_FPS}{suffix}.mp4"
    if out.is_file() and out.stat().st_mtime >= src.stat().st_mtime:
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp.mp4")
    cmd = [
        "ffmpeg", "-v", "error", "-y", "-i", str(src),
        "-vf", f"scale={width}:{height},fps={SOURCE_FPS}",
        "-c:v", "libx264", "-preset", "veryfast", "-profile:v", "main", "-b:v", bitrate, "-maxrate", bitrate,
        "-bufsize", "8M", "-g", str(2 * SOURCE_FPS), "-keyint_min", str(2 * SOURCE_FPS), "-bf", "0",
        "-an", "-movflags", "+faststart", str(tmp),
    ]  # fmt: skip
    if shutil.which("ffmpeg") is None:
        raise SystemExit("bench: ffmpeg is needed to make the camera footage (make setup installs it)")
    subprocess.run(cmd, check=True)
    tmp.replace(out)
    return out


# ------------------------------------------------------------------------------------ /proc


def proc_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process and its reaped children (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    utime, stime, cutime, cstime = (int(fields[i]) for i in (11, 12, 13, 14))
    return (utime + stime + cutime + cstime) / CLK_TCK


def proc_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


# ----------------------------------------------------------------------------- broker side


@dataclass
class BrokerWatch:
    """Subscribes to the bench node's topics: its status (per-camera counters) and its events."""

    url: str
    prefix: str
    node: str
    statuses: list[tuple[float, dict]] = field(default_factory=list)
    events: list[tuple[float, dict]] = field(default_factory=list)

    def __post_init__(self) -> None:
        import paho.mqtt.client as mqtt

        from contract.topics import parse_mqtt_url

        host, port, _ = parse_mqtt_url(self.url)
        self._lock = threading.Lock()
        self._client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"bench-watch-{os.getpid()}")
        self._client.on_message = self._on_message
        self._client.on_connect = lambda c, *_: c.subscribe(f"{self.prefix}/{self.node}/#", qos=1)
        self._client.connect(host, port)
        self._client.loop_start()

    def _on_message(self, _c: Any, _u: Any, msg: Any) -> None:
        from contract.topics import parse_topic

        now = time.time()
        parsed = parse_topic(self.prefix, msg.topic)
        if parsed is None or parsed.kind not in ("status", "event"):
            return
        try:
            payload = json.loads(msg.payload)
        except (ValueError, UnicodeDecodeError):
            return
        with self._lock:
            (self.statuses if parsed.kind == "status" else self.events).append((now, payload))

    def latest_status(self) -> dict | None:
        with self._lock:
            return self.statuses[-1][1] if self.statuses else None

    def close(self) -> None:
        self._client.loop_stop()
        self._client.disconnect()


@contextlib.contextmanager
def broker(url: str | None):
    if url:
        yield url
        return
    from edge.local_broker import LocalMosquitto  # the bench's own broker: nothing else's traffic in it

    with LocalMosquitto(state_dir=Path(tempfile.mkdtemp(prefix="bench-broker-"))) as b:
        yield b.url


# ------------------------------------------------------------------------------------- runs


@dataclass
class RunSettings:
    cameras: int
    duration_s: float
    resolution: str = "1080p"
    analysis_fps: float = 5.0
    video: str = DEFAULT_VIDEO
    camera_config: Path = DEFAULT_CAMERA_CONFIG
    model: str = "yolo11n.onnx"
    long_side: int = 640
    workers: int = 0
    warmup_s: float = 15.0
    mqtt_url: str | None = None
    motion_gating: bool = True
    clip_post_s: float = 3.0
    # Two streams per camera: detect on the server's 640x360 sub-stream (<url>/sub), clips and
    # snapshots from the main stream (camera.record_source), as edge/streams.py runs them.
    sub_stream: bool = False


def _node_yaml(s: RunSettings, work: Path, mqtt_url: str, urls: list[str]) -> Path:
    import yaml

    cam_cfg = yaml.safe_load(s.camera_config.read_text(encoding="utf-8"))
    cam_cfg["camera"]["analysis_fps"] = s.analysis_fps
    cam_cfg["motion_gating"] = {"enabled": s.motion_gating}
    cam_path = work / "camera.yaml"
    cam_path.write_text(yaml.safe_dump(cam_cfg, allow_unicode=True), encoding="utf-8")
    node = {
        "node": {"id": "bench", "state_dir": str(work / "state")},
        "mqtt": {"url": mqtt_url, "topic_prefix": "bench"},
        "detector": {"model": s.model, "long_side": s.long_side, "threads": 1},
        "inference": {"workers": s.workers},
        "platform": "cpu",
        "status_interval_s": 2,
        "clips": {"enabled": True, "pre_seconds": 2, "post_seconds": s.clip_post_s},
        "cameras": [{"config": str(cam_path), "source": u, "id": f"cam-{i:02d}"} for i, u in enumerate(urls)],
    }
    if s.sub_stream:  # a camera config each: a node's `source` override would mean one stream
        node["cameras"] = []
        for i, u in enumerate(urls):
            one = {**cam_cfg, "camera": {**cam_cfg["camera"], "id": f"cam-{i:02d}", "source": f"{u}/sub",
                                         "record_source": u}}
            path_i = work / f"camera-{i:02d}.yaml"
            path_i.write_text(yaml.safe_dump(one, allow_unicode=True), encoding="utf-8")
            node["cameras"].append({"config": str(path_i)})
    path = work / "node.yaml"
    path.write_text(yaml.safe_dump(node), encoding="utf-8")
    return path


def _camera_counters(status: dict | None) -> dict[str, dict]:
    return dict((status or {}).get("cameras") or {})


def run_edge(s: RunSettings, rtsp_urls: list[str], mqtt_url: str) -> dict[str, Any]:
    """One measured run of our edge node on `rtsp_urls`; returns the JSON fields."""
    work = Path(tempfile.mkdtemp(prefix="edge-bench-"))
    node_yaml = _node_yaml(s, work, mqtt_url, rtsp_urls)
    watch = BrokerWatch(mqtt_url, "bench", "bench")
    log_path = work / "node.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "edge", "run", "--config", str(node_yaml)],
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
    try:
        # Wait until every camera analyses, then give the pipeline its warm-up.
        deadline = time.time() + 60 + 2 * s.cameras
        while time.time() < deadline:
            if proc.poll() is not None:
                raise SystemExit(f"bench: the edge node exited ({proc.returncode}); see {log_path}")
            cams = _camera_counters(watch.latest_status())
            if len(cams) == s.cameras and all((c.get("analysed_frames") or 0) > 0 for c in cams.values()):
                break
            time.sleep(0.5)
        else:
            raise SystemExit(f"bench: not every camera started analysing within the time allowed; see {log_path}")
        time.sleep(s.warmup_s)
        start_status = watch.latest_status()
        t0, cpu0 = time.time(), proc_cpu_s(proc.pid)
        rss: list[float] = []
        while time.time() - t0 < s.duration_s:
            rss.append(proc_rss_mb(proc.pid))
            time.sleep(1.0)
            if proc.poll() is not None:
                raise SystemExit(f"bench: the edge node exited during the run; see {log_path}")
        time.sleep(2.5)  # one more status message, written after the window closed
        t1, cpu1 = time.time(), proc_cpu_s(proc.pid)
        end_status = watch.latest_status()
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
        watch.close()
    wall = t1 - t0
    # Rates between the two status messages' own times: counters and clock read together.
    counted_s = _ts((end_status or {})["at"]) - _ts((start_status or {})["at"])
    first, last = _camera_counters(start_status), _camera_counters(end_status)
    per_camera: dict[str, dict] = {}
    for cam, end in last.items():
        begin = first.get(cam, {})
        frames = (end.get("analysed_frames") or 0) - (begin.get("analysed_frames") or 0)
        per_camera[cam] = {
            "analysis_fps": round(frames / counted_s, 2),
            "slots_missed": (end.get("slots_missed") or 0) - (begin.get("slots_missed") or 0),
            "frames_gated": (end.get("frames_gated") or 0) - (begin.get("frames_gated") or 0),
            "lag_ms_p50_end": end.get("lag_ms_p50"),
            "overloaded": end.get("overloaded"),
            "state": end.get("state"),
        }
    fps = [c["analysis_fps"] for c in per_camera.values()]
    realtime = (
        len(per_camera) == s.cameras
        and all(f >= 0.95 * s.analysis_fps for f in fps)
        and all((c["lag_ms_p50_end"] or 0) < 1000 for c in per_camera.values())
    )
    # An event arrives twice (contract.events.merge_republished): at once, then with its clip.
    first_seen: dict[str, tuple[float, dict]] = {}
    clip_seen: dict[str, float] = {}
    for t, e in watch.events:
        first_seen.setdefault(e["id"], (t, e))
        if any(x.get("kind") == "clip" for x in e.get("evidence", [])):
            clip_seen.setdefault(e["id"], t)
    events = [(t, e) for t, e in first_seen.values() if t0 <= t <= t1 + 10]
    post = s.clip_post_s
    latencies = sorted(1000 * (t - _decided(e)) for t, e in events)
    clip_latencies = sorted(1000 * (clip_seen[e["id"]] - _decided(e)) for _t, e in events if e["id"] in clip_seen)
    gated = sum(c["frames_gated"] for c in per_camera.values())
    analysed = sum(fps) * counted_s
    return {
        "cameras": s.cameras,
        "resolution": s.resolution,
        "streams": "detect=sub 640x360, record=main" if s.sub_stream else "main",
        "analysis_fps_target": s.analysis_fps,
        "analysis_fps": round(statistics.mean(fps), 2) if fps else 0.0,
        "analysis_fps_min": min(fps) if fps else 0.0,
        "realtime": realtime,
        "cpu_cores_used": round((cpu1 - cpu0) / wall, 2),
        "rss_mb": round(max(rss), 1) if rss else None,
        "latency_ms_p50": _pct(latencies, 50),
        "latency_ms_p95": _pct(latencies, 95),
        "clip_latency_ms_p50": _pct(clip_latencies, 50),
        "clip_latency_ms_p95": _pct(clip_latencies, 95),
        "clip_post_roll_s": post,
        "events_with_clip": len([1 for _t, e in events if e["id"] in clip_seen]),
        "events": len(events),
        "slots_missed": sum(c["slots_missed"] for c in per_camera.values()),
        "gated_share": round(gated / analysed, 3) if analysed else 0.0,
        "model": s.model,
        "long_side": s.long_side,
        "inference": (end_status or {}).get("inference"),
        "per_camera": per_camera,
    }


def _decided(event: dict) -> float:
    return _ts(event.get("detected_at") or event["ended_at"])


def _ts(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def _pct(values: list[float], p: float) -> float | None:
    if not values:
        return None
    return round(values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))], 1)


# ---------------------------------------------------------------------------- decode only


def decode_only(urls: list[str], duration_s: float, warmup_s: float = 5.0, sub: bool = False) -> dict[str, Any]:
    """Decode every frame of every camera and do nothing else (the box's physical bound).
    sub=True: what a two-stream camera costs instead, its sub-stream decoded and its main stream
    parsed (edge/streams.py's record pipeline: no decoder)."""
    from edge.streams import record_pipeline
    from pipelines.gst import gst_init, rtsp_decode_pipeline

    Gst, _ = gst_init()
    counts = [0] * len(urls)
    pipelines = []
    for url in urls if sub else ():
        pipe = Gst.parse_launch(record_pipeline(url).replace("emit-signals=true", "emit-signals=false"))
        # Pulled by nobody: appsink keeps the newest few only, as the ring does the rest.
        pipe.get_by_name("packets").set_property("max-buffers", 1)
        pipe.get_by_name("packets").set_property("drop", True)
        pipe.set_state(Gst.State.PLAYING)
        pipelines.append(pipe)
    for i, url in enumerate(urls):
        pipe = Gst.parse_launch(
            rtsp_decode_pipeline(f"{url}/sub" if sub else url, "cpu", decoder_threads=1).replace("drop=true", "drop=false")
        )
        sink = pipe.get_by_name("sink")
        sink.set_property("emit-signals", True)

        def on_sample(appsink: Any, i: int = i) -> Any:
            appsink.emit("pull-sample")
            counts[i] += 1
            return Gst.FlowReturn.OK

        sink.connect("new-sample", on_sample)
        pipe.set_state(Gst.State.PLAYING)
        pipelines.append(pipe)
    try:
        # The warm-up starts once every camera has its first frame: connecting many streams to a
        # loaded server takes seconds, and a stream's first second drains what queued meanwhile.
        deadline = time.time() + 60
        while min(counts) == 0 and time.time() < deadline:
            time.sleep(0.2)
        time.sleep(warmup_s)
        start = list(counts)
        t0, cpu0 = time.time(), proc_cpu_s(os.getpid())
        time.sleep(duration_s)
        t1, cpu1 = time.time(), proc_cpu_s(os.getpid())
        fps = [(c - b) / (t1 - t0) for c, b in zip(counts, start, strict=True)]
    finally:
        for pipe in pipelines:
            pipe.set_state(Gst.State.NULL)
    return {
        "cameras": len(urls),
        "decode_fps": [round(f, 2) for f in fps],
        "realtime": all(f >= 0.95 * SOURCE_FPS for f in fps),
        "cpu_cores_used": round((cpu1 - cpu0) / (t1 - t0), 2),
    }


def run_decode(urls: list[str], duration_s: float, sub: bool = False) -> dict[str, Any]:
    """decode_only() in a process of its own (as the node would be), on these cameras."""
    out = subprocess.run(
        [sys.executable, "-m", "edge.bench", "--duration", str(duration_s), *(["--sub-stream"] if sub else []),
         "--decode-only", *urls],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------------------------ baseline


def _checkout() -> Path:
    root = source_checkout()
    if root is None:
        raise SystemExit("bench --baseline: needs a source checkout (benchmarks/baseline_ultralytics.py, .venv-baseline)")
    return root


def baseline_python() -> Path:
    return Path(os.environ.get("EDGE_BASELINE_PYTHON") or _checkout() / ".venv-baseline" / "bin" / "python")


def run_baseline(s: RunSettings, rtsp_urls: list[str]) -> dict[str, Any]:
    root = _checkout()
    py = baseline_python()
    if not py.is_file():
        raise SystemExit(
            f"bench --baseline: {py} not found; run scripts/setup_baseline.sh (torch + ultralytics, optional tooling)"
        )
    cmd = [
        str(py), str(root / "benchmarks" / "baseline_ultralytics.py"),
        "--urls", *rtsp_urls, "--camera-config", str(s.camera_config), "--duration", str(s.duration_s),
        "--analysis-fps", str(s.analysis_fps), "--source-fps", str(SOURCE_FPS), "--json",
    ]  # fmt: skip
    out = subprocess.run(
        cmd, cwd=root, env={**os.environ, "PYTHONPATH": str(root)}, capture_output=True, text=True
    )
    if out.returncode != 0:
        raise SystemExit(f"bench: the baseline failed ({out.returncode}):\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------------------------ search


def with_cameras(s: RunSettings, n: int) -> RunSettings:
    return replace(s, cameras=n)


def serve_and(n: int, footage: Path, fn: Any, sub: bool = False) -> dict[str, Any]:
    from pipelines.rtsp_server import RtspTestServer

    extra = ["--sub-streams"] if sub else []  # /camNN/sub too: the 640x360 rendition, same timing
    with RtspTestServer({f"cam{i:02d}": footage for i in range(n)}, extra_args=extra) as server:
        urls = [server.url(f"cam{i:02d}") for i in range(n)]
        pid = server.pid
        c0, t0 = proc_cpu_s(pid), time.time()
        result = fn(urls)
        result["rtsp_server_cpu_cores"] = round((proc_cpu_s(pid) - c0) / (time.time() - t0), 2)
        return result


def largest_realtime(
    run_n: Any, start: int, limit: int, log: Any, known: dict[int, dict] | None = None
) -> tuple[int, dict[int, dict]]:
    """The largest n in [1, limit] for which run_n(n)['realtime']: doubling from `start`, then
    bisection. `known` holds runs already made (not repeated)."""
    results: dict[int, dict] = dict(known or {})

    def ok(n: int) -> bool:
        if n not in results:
            results[n] = run_n(n)
            log(n, results[n])
        return bool(results[n]["realtime"])

    lo, hi = 0, None
    n = max(1, start)
    while n <= limit:
        if ok(n):
            lo = n
            n *= 2
        else:
            hi = n
            break
    if hi is None:
        return lo, results
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if ok(mid):
            lo = mid
        else:
            hi = mid
    return lo, results


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m edge bench", description=__doc__.splitlines()[0])
    p.add_argument("--cameras", type=int, default=2)
    p.add_argument("--duration", type=float, default=60.0, help="measuring window per run, seconds")
    p.add_argument("--resolution", choices=sorted(RESOLUTIONS), default="1080p")
    p.add_argument("--analysis-fps", type=float, default=5.0)
    p.add_argument("--video", default=DEFAULT_VIDEO, help="sample video (EDGE_DATA_DIR/videos) made into cameras")
    p.add_argument("--camera-config", type=Path, default=DEFAULT_CAMERA_CONFIG)
    p.add_argument("--model", default="yolo11n.onnx", help="file, registered model or variant name")
    p.add_argument("--long-side", type=int, default=640)
    p.add_argument("--workers", type=int, default=0, help="inference workers (0: one per core)")
    p.add_argument("--no-motion-gating", action="store_true")
    p.add_argument("--max", action="store_true", help="find max_realtime_cameras and decode_limit_cameras")
    p.add_argument("--max-limit", type=int, default=32)
    p.add_argument("--baseline", action="store_true", help="also run the naive Ultralytics pipeline")
    p.add_argument("--mqtt-url", default=None, help="use this broker (default: a private Mosquitto)")
    p.add_argument("--warmup", type=float, default=15.0)
    p.add_argument("--json", action="store_true")
    p.add_argument(
        "--sub-stream", action="store_true",
        help="two streams per camera: detect on a 640x360 sub-stream, record the main; also runs the same "
        "cameras on the main stream alone and reports decode_limit_cameras for both",
    )
    p.add_argument("--decode-only", nargs="*", metavar="URL", help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    if args.decode_only is not None:  # child mode of --max: decode these URLs, print JSON
        print(json.dumps(decode_only(args.decode_only, args.duration, sub=args.sub_stream)))
        return 0

    footage = prepare_footage(args.video, args.resolution)
    if args.sub_stream:
        from pipelines.rtsp_server import sub_rendition

        sub_rendition(footage)  # made once here, not inside the server's start-up time
    settings = RunSettings(
        cameras=args.cameras,
        duration_s=args.duration,
        resolution=args.resolution,
        analysis_fps=args.analysis_fps,
        video=args.video,
        camera_config=args.camera_config,
        model=args.model,
        long_side=args.long_side,
        workers=args.workers,
        warmup_s=args.warmup,
        motion_gating=not args.no_motion_gating,
        sub_stream=args.sub_stream,
    )

    def say(what: str, n: int, r: dict) -> None:
        keys = ("realtime", "analysis_fps", "analysis_fps_min", "cpu_cores_used", "rss_mb", "decode_fps")
        print(f"bench: {what} cameras={n} " + " ".join(f"{k}={r[k]}" for k in keys if k in r), file=sys.stderr)

    with broker(args.mqtt_url) as mqtt_url:
        settings.mqtt_url = mqtt_url

        def ours(n: int) -> dict:
            return serve_and(
                n, footage, lambda urls: run_edge(with_cameras(settings, n), urls, mqtt_url), sub=settings.sub_stream
            )

        result = ours(args.cameras)
        say("edge", args.cameras, result)
        if settings.sub_stream:
            # The same cameras on the main stream alone, in the same run: the sub-stream's gain as a ratio.
            one = serve_and(args.cameras, footage,
                            lambda urls: run_edge(replace(with_cameras(settings, args.cameras), sub_stream=False),
                                                  urls, mqtt_url))
            say("edge (main stream only)", args.cameras, one)
            result["main_stream_only"] = {k: one.get(k) for k in (
                "realtime", "analysis_fps", "analysis_fps_min", "cpu_cores_used", "rss_mb", "events", "latency_ms_p95")}
            n = args.cameras
            result["cpu_cores_per_camera"] = round(result["cpu_cores_used"] / n, 3)
            result["main_stream_only_cpu_cores_per_camera"] = round(one["cpu_cores_used"] / n, 3)
            # Per analysed frame: a run that falls behind analyses less and so spends less.
            sub_f = result["cpu_cores_used"] / (n * result["analysis_fps"]) if result["analysis_fps"] else None
            main_f = one["cpu_cores_used"] / (n * one["analysis_fps"]) if one["analysis_fps"] else None
            result["cpu_ms_per_analysed_frame"] = round(1000 * sub_f, 1) if sub_f else None
            result["main_stream_only_cpu_ms_per_analysed_frame"] = round(1000 * main_f, 1) if main_f else None
            if sub_f and main_f:
                result["cpu_ratio_main_over_sub"] = round(main_f / sub_f, 2)
        if args.max:
            best, runs = largest_realtime(
                ours, args.cameras, args.max_limit, lambda n, r: say("edge", n, r), known={args.cameras: result}
            )
            result["max_realtime_cameras"] = best
            result["max_runs"] = {n: {k: r[k] for k in ("realtime", "analysis_fps_min", "cpu_cores_used", "rss_mb", "latency_ms_p95", "events")} for n, r in runs.items()}
            limit, _ = largest_realtime(
                lambda n: serve_and(n, footage, lambda urls: run_decode(urls, min(args.duration, 20.0))),
                max(best, 1),
                4 * args.max_limit,
                lambda n, r: say("decode", n, r),
            )
            result["decode_limit_cameras"] = limit
            result["share_of_decode_limit"] = round(best / limit, 2) if limit else None
            if settings.sub_stream:  # sub decoded + main parsed, per camera
                limit2, _ = largest_realtime(
                    lambda n: serve_and(n, footage, lambda urls: run_decode(urls, min(args.duration, 20.0), True), True),
                    max(limit, 1),
                    4 * args.max_limit,
                    lambda n, r: say("decode main+sub", n, r),
                )
                result["decode_limit_cameras_main_sub"] = limit2
                result["share_of_decode_limit"] = round(best / limit2, 2) if limit2 else None
            if best > 1:  # RSS per added camera: one camera vs. the most that kept up
                one = runs[1] if 1 in runs else ours(1)
                result["rss_mb_per_added_camera"] = round((runs[best]["rss_mb"] - one["rss_mb"]) / (best - 1), 1)
        if args.baseline:

            def theirs(n: int) -> dict:
                return serve_and(n, footage, lambda urls: run_baseline(with_cameras(settings, n), urls))

            if args.max:
                bbest, bruns = largest_realtime(theirs, 1, args.max_limit, lambda n, r: say("baseline", n, r))
                result["baseline_max_realtime_cameras"] = bbest
                result["baseline_runs"] = {n: {k: r.get(k) for k in ("realtime", "cpu_cores_used", "events_count")} for n, r in bruns.items()}
                best = result.get("max_realtime_cameras") or 0
                result["ratio"] = round(best / bbest, 2) if bbest else None
            else:
                result["baseline"] = theirs(args.cameras)
    if args.json:
        print(json.dumps(result))
    else:
        for k, v in result.items():
            print(f"{k:>28}: {v}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
