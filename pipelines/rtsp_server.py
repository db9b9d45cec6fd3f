"""An RTSP test server that serves video files as live, endlessly looping cameras.

    python -m pipelines.rtsp_server --port 8554 --mount cam1=hanoi_lythuongkiet_hangbai_intersection_trafficlight.mp4

prints `rtsp://127.0.0.1:8554/cam1` per mount, then `READY`, and serves until SIGINT/SIGTERM.

How it behaves like a camera rather than a file player:
- H.264 files are not re-encoded: their access units are read once with PyAV (Annex B via the
  `h264_mp4toannexb` bitstream filter) and pushed through `appsrc ! h264parse ! rtph264pay` by a
  pacing thread at the file's own timestamps; other codecs are transcoded once at start-up with
  libx264 (ultrafast, zerolatency, a keyframe every ~1 s) into memory.
- Each mount's "camera" runs from start-up whether or not anyone watches, and loops forever with
  timestamps that keep increasing across loops (a `filesrc ! qtdemux` factory would end with EOS).
- The media is shared: all clients of a mount see one live stream. A client that joins mid-stream
  gets SPS/PPS with every keyframe (config-interval=1) and starts decoding at the next keyframe.
  When the first client of a mount connects (fresh media), the camera restarts at the latest
  keyframe it passed, so the stream (and the SDP, which needs SPS/PPS) starts at once instead of
  after up to one GOP, as cameras with a GOP cache do.

Two streams per camera (`--sub-streams`, or `--sub NAME=FILE`): each mount also serves a
sub-stream at /NAME/sub, a 640x360 rendition of the same footage made once with ffmpeg (same
frames, keyframes on the same frames), paced by the main stream's feed: unit i of both goes out at
the same moment, as a camera encodes both streams from one sensor frame.

`RtspTestServer` runs the CLI as a subprocess for tests and demos, with freeze (SIGSTOP), thaw,
kill and restart on the same port to rehearse camera failures.
"""

from __future__ import annotations

import argparse
import bisect
import contextlib
import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from statistics import median
from types import TracebackType
from typing import Any

from contract.paths import source_checkout

log = logging.getLogger("pipelines.rtsp_server")

_NS = 1_000_000_000

# The appsrc queue only fills if the pipeline blocks; then old data goes first, as in a camera.
_LAUNCH = (
    "( appsrc name=src is-live=true format=time do-timestamp=false max-bytes=8000000 leaky-type=downstream"
    ' caps="video/x-h264, stream-format=(string)byte-stream, alignment=(string)au"'
    " ! h264parse ! rtph264pay name=pay0 pt=96 config-interval=1 )"
)


@dataclass(frozen=True, slots=True)
class AccessUnit:
    """One H.264 access unit in Annex B form, with times in ns relative to the first unit."""

    data: bytes
    dts_ns: int
    cts_ns: int  # composition offset pts - dts (>0 only with B-frames)
    duration_ns: int
    key: bool


@dataclass(frozen=True, slots=True)
class ClipInfo:
    path: Path
    codec: str
    width: int
    height: int
    fps: float
    transcoded: bool
    units: tuple[AccessUnit, ...]

    @property
    def loop_duration_s(self) -> float:
        return sum(u.duration_ns for u in self.units) / _NS


def _seconds(value: int | None, time_base: Fraction | None) -> float | None:
    if value is None or time_base is None:
        return None
    return float(value * time_base)


def _units_from_packets(raw: list[tuple[bytes, float | None, float | None, bool]], fps: float) -> list[AccessUnit]:
    """Normalise (data, pts_s, dts_s, key) packets to AccessUnits starting at t=0 with durations."""
    frame_s = 1.0 / fps if fps > 0 else 1.0 / 25
    times: list[tuple[float, float]] = []
    for i, (_, pts, dts) in enumerate((d, p, q) for d, p, q, _ in raw):
        d = dts if dts is not None else pts if pts is not None else i * frame_s
        p = pts if pts is not None else d
        times.append((d, max(0.0, p - d)))
    t0 = times[0][0]
    dts_ns = [round((d - t0) * _NS) for d, _ in times]
    # dts must strictly increase for the pacer; repair duplicates (broken muxes) by nudging forward.
    for i in range(1, len(dts_ns)):
        if dts_ns[i] <= dts_ns[i - 1]:
            dts_ns[i] = dts_ns[i - 1] + 1_000_000
    deltas = [b - a for a, b in zip(dts_ns, dts_ns[1:], strict=False)]
    last = round(median(deltas)) if deltas else round(frame_s * _NS)
    durations = [*deltas, last]
    return [
        AccessUnit(data, dts_ns[i], round(times[i][1] * _NS), durations[i], key)
        for i, (data, _, _, key) in enumerate(raw)
    ]


def load_clip(path: str | os.PathLike[str], transcode: bool = False, keyframe_interval_s: float = 1.0) -> ClipInfo:
    """Read a video file into memory as H.264 Annex B access units (transcoding non-H.264 once)."""
    import av
    from av.bitstream import BitStreamFilterContext

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"video file not found: {path}")
    with av.open(str(path)) as container:
        if not container.streams.video:
            raise ValueError(f"{path}: no video stream")
        stream = container.streams.video[0]
        codec = stream.codec_context.name
        fps = float(stream.average_rate or stream.guessed_rate or 25)
        width, height = stream.codec_context.width, stream.codec_context.height
        tb = stream.time_base
        raw: list[tuple[bytes, float | None, float | None, bool]] = []
        # A file stored sideways with a display rotation is served upright (a camera sends what
        # it sees, and RTP carries no display matrix): that needs a transcode.
        rotation = _display_rotation(container, stream)
        if rotation:
            transcode = True
            container.seek(0)
            if rotation in (90, 270):
                width, height = height, width
        if codec == "h264" and not transcode:
            # Annex B with SPS/PPS in front of every IDR, as an RTP payloader and late joiners need.
            bsf = BitStreamFilterContext("h264_mp4toannexb", stream)
            for packet in container.demux(stream):
                for out in bsf.filter(packet if packet.size else None):
                    raw.append((bytes(out), _seconds(out.pts, tb), _seconds(out.dts, tb), bool(out.is_keyframe)))
            for out in bsf.filter(None):
                raw.append((bytes(out), _seconds(out.pts, tb), _seconds(out.dts, tb), bool(out.is_keyframe)))
        else:
            raw = _transcode(container, stream, fps, keyframe_interval_s, rotation)
    if not raw:
        raise ValueError(f"{path}: no video packets")
    units = _units_from_packets(raw, fps)
    if not units[0].key:
        # A loop must start on a keyframe or every loop begins with undecodable frames.
        first_key = next((i for i, u in enumerate(units) if u.key), None)
        if first_key is None:
            raise ValueError(f"{path}: no keyframe in the stream")
        units = units[first_key:]
    return ClipInfo(path, codec, width, height, fps, codec != "h264" or transcode, tuple(units))


def _display_rotation(container: Any, stream: Any) -> int:
    """The first frame's display rotation (PyAV's convention, counter-clockwise), as 0, 90, 180 or 270."""
    for frame in container.decode(stream):
        return round(getattr(frame, "rotation", 0) or 0) % 360
    return 0


def _transcode(
    container: Any, stream: Any, fps: float, keyframe_interval_s: float, rotation: int = 0
) -> list[tuple[bytes, float | None, float | None, bool]]:
    import av

    from pipelines.orientation import upright

    enc = av.CodecContext.create("libx264", "w")
    w, h = stream.codec_context.width, stream.codec_context.height
    if rotation in (90, 270):
        w, h = h, w
    enc.width = w // 2 * 2  # 4:2:0 needs even sizes
    enc.height = h // 2 * 2
    enc.pix_fmt = "yuv420p"
    enc.time_base = stream.time_base
    enc.framerate = stream.average_rate or stream.guessed_rate
    gop = str(max(1, round(fps * keyframe_interval_s)))
    # zerolatency: no B-frames, no lookahead; a fixed GOP so late joiners wait at most ~1 s.
    enc.options = {
        "preset": "ultrafast",
        "tune": "zerolatency",
        "g": gop,
        "keyint_min": gop,
        "sc_threshold": "0",
        "crf": "23",
    }
    tb = stream.time_base
    out: list[tuple[bytes, float | None, float | None, bool]] = []
    last_pts = -1

    def take(packets: list[Any]) -> None:
        for p in packets:
            out.append((bytes(p), _seconds(p.pts, tb), _seconds(p.dts, tb), bool(p.is_keyframe)))

    for i, frame in enumerate(container.decode(stream)):
        pts = frame.pts if frame.pts is not None else i
        if pts <= last_pts:  # the encoder refuses non-increasing pts
            continue
        last_pts = pts
        if rotation:
            frame = av.VideoFrame.from_ndarray(upright(frame.to_ndarray(format="bgr24"), rotation), format="bgr24")
        img = frame.reformat(width=enc.width, height=enc.height, format="yuv420p")
        img.pts = pts
        img.time_base = tb
        take(enc.encode(img))
    take(enc.encode(None))
    return out


class _Sink:
    """One media pipeline's appsrc attached to a feed."""

    __slots__ = ("appsrc", "offset_ns", "wait_key")

    def __init__(self, appsrc: Any, wait_key: bool) -> None:
        self.appsrc = appsrc
        self.offset_ns: int | None = None  # pipeline running time minus feed stream time
        self.wait_key = wait_key


class LoopingFeed:
    """A live 'camera': paces a clip's access units forever and pushes them to attached appsrcs."""

    # Behind schedule by more than this (process was frozen, machine overloaded): skip ahead in
    # time instead of bursting the backlog, as a camera would.
    RESYNC_S = 0.5

    def __init__(self, name: str, clip: ClipInfo, sub: ClipInfo | None = None) -> None:
        self.name = name
        self.clip = clip
        self._units = clip.units
        self._keys = [i for i, u in enumerate(self._units) if u.key]
        # The sub-stream's units, one per main unit (same frames): sent with them, on their clock.
        if sub is not None and len(sub.units) != len(clip.units):
            raise ValueError(
                f"{name}: the sub-stream has {len(sub.units)} frames, the main stream {len(clip.units)}"
            )
        self.sub = sub
        self._lock = threading.Lock()
        self._sinks: list[_Sink] = []
        self._sub_sinks: list[_Sink] = []
        self._idx = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"feed-{name}", daemon=True)
        self.loops = 0

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        with self._lock:
            self._sinks.clear()

    def attach(self, appsrc: Any, sub: bool = False) -> None:
        with self._lock:
            sinks = self._sub_sinks if sub else self._sinks
            if any(s.appsrc is appsrc for s in sinks):
                return
            if not self._sinks and not self._sub_sinks:
                # Nobody is watching: restart at the last keyframe passed so the new media starts now
                # (both streams have their keyframes on the same frames).
                self._idx = self._keys[bisect.bisect_right(self._keys, self._idx) - 1]
                sinks.append(_Sink(appsrc, wait_key=False))
            else:
                sinks.append(_Sink(appsrc, wait_key=True))
        log.info("%s: %s media attached (%d)", self.name, "sub" if sub else "main", len(sinks))

    def detach(self, appsrc: Any) -> None:
        with self._lock:
            self._sinks = [s for s in self._sinks if s.appsrc is not appsrc]
            self._sub_sinks = [s for s in self._sub_sinks if s.appsrc is not appsrc]

    def _run(self) -> None:
        from pipelines.gst import gst_init

        Gst, _ = gst_init()
        stream_ns = 0  # monotonically increasing across loops: the camera's own clock
        t0 = time.monotonic()
        while not self._stop.is_set():
            delay = t0 + stream_ns / _NS - time.monotonic()
            if delay > 0:
                if self._stop.wait(delay):
                    break
            elif -delay > self.RESYNC_S:
                stream_ns += round(-delay * _NS)
            with self._lock:
                unit = self._units[self._idx]
                sub_unit = self.sub.units[self._idx] if self.sub is not None else None
                self._idx += 1
                if self._idx == len(self._units):
                    self._idx = 0
                    self.loops += 1
                sinks = list(self._sinks)
                sub_sinks = list(self._sub_sinks) if sub_unit is not None else []
            dead = [s for s in sinks if not self._push(Gst, s, unit, stream_ns)]
            if sub_unit is not None:
                dead += [s for s in sub_sinks if not self._push(Gst, s, sub_unit, stream_ns)]
            for s in dead:
                self.detach(s.appsrc)
            stream_ns += unit.duration_ns

    @staticmethod
    def _push(Gst: Any, sink: _Sink, unit: AccessUnit, stream_ns: int) -> bool:
        if sink.wait_key:
            if not unit.key:
                return True
            sink.wait_key = False
        if sink.offset_ns is None:
            # Map the feed's clock onto this pipeline's running time at the first buffer, so RTP
            # timestamps (and RTCP sender reports) follow the pipeline clock.
            clock = sink.appsrc.get_clock()
            running = clock.get_time() - sink.appsrc.get_base_time() if clock is not None else 0
            sink.offset_ns = max(0, running) - stream_ns
        buf = Gst.Buffer.new_wrapped(unit.data)
        buf.dts = stream_ns + sink.offset_ns
        buf.pts = buf.dts + unit.cts_ns
        buf.duration = unit.duration_ns
        if not unit.key:
            buf.set_flags(Gst.BufferFlags.DELTA_UNIT)
        ret = sink.appsrc.push_buffer(buf)
        # FLUSHING/EOS: the media was shut down (last client left); forget this appsrc.
        return ret == Gst.FlowReturn.OK


def parse_mount(spec: str) -> tuple[str, str]:
    name, sep, file = spec.partition("=")
    name = name.strip().strip("/")
    if not sep or not name or not file or not re.fullmatch(r"[A-Za-z0-9_.\-/]+", name):
        raise argparse.ArgumentTypeError(f"expected NAME=FILE (NAME of letters, digits, _ . - /), got {spec!r}")
    return name, file


SUB_STREAM_SIZE = (640, 360)


def sub_rendition(path: str | os.PathLike[str], size: tuple[int, int] = SUB_STREAM_SIZE) -> Path:
    """A camera's sub-stream made from its main-stream file: `size`, H.264 without B-frames, the same
    frames (no rate change) with keyframes where the main stream has them. Made once with ffmpeg
    and cached (EDGE_BENCH_CACHE or ~/.cache/ioc-edge/bench)."""
    import shutil

    path = Path(path)
    cache = Path(os.environ.get("EDGE_BENCH_CACHE") or Path.home() / ".cache" / "ioc-edge" / "bench")
    w, h = size
    import hashlib

    where = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:8]  # two files of one name stay apart
    out = cache / f"{path.stem}_{where}_sub{w}x{h}.mp4"
    if out.is_file() and out.stat().st_mtime >= path.stat().st_mtime:
        return out
    if shutil.which("ffmpeg") is None:
        raise OSError("ffmpeg is needed to make the sub-streams")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.stem}.{os.getpid()}.mp4")
    cmd = [
        "ffmpeg", "-v", "error", "-y", "-i", str(path), "-vf", f"scale={w}:{h}", "-fps_mode", "passthrough",
        "-c:v", "libx264", "-preset", "veryfast", "-profile:v", "main", "-bf", "0", "-b:v", "600k",
        "-force_key_frames", "source", "-sc_threshold", "0", "-g", "100000", "-an", str(tmp),
    ]  # fmt: skip
    subprocess.run(cmd, check=True)
    tmp.replace(out)
    return out


def serve(
    host: str, port: int, mounts: Sequence[tuple[str, str]], transcode: bool = False, keyframe_interval_s: float = 1.0,
    subs: Mapping[str, str] | None = None, sub_streams: bool = False,
) -> int:
    """Load the clips, serve them, print the URLs and READY, and run until SIGINT/SIGTERM."""
    import gi

    from contract.paths import video_path
    from pipelines.gst import gst_init

    Gst, _ = gst_init()
    gi.require_version("GstRtspServer", "1.0")
    from gi.repository import GLib, GstRtspServer

    feeds: dict[str, LoopingFeed] = {}
    for name, file in mounts:
        clip = load_clip(video_path(file), transcode=transcode, keyframe_interval_s=keyframe_interval_s)
        log.info(
            "%s: %s %s %dx%d %.3g fps, %d units, %.1f s loop%s",
            name,
            clip.path.name,
            clip.codec,
            clip.width,
            clip.height,
            clip.fps,
            len(clip.units),
            clip.loop_duration_s,
            " (transcoded to H.264)" if clip.transcoded else "",
        )
        sub_file = (subs or {}).get(name)
        sub = None
        if sub_file is not None or sub_streams:
            sub_path = video_path(sub_file) if sub_file is not None else sub_rendition(clip.path)
            sub = load_clip(sub_path)
            log.info("%s/sub: %s %dx%d", name, sub.path.name, sub.width, sub.height)
        feeds[name] = LoopingFeed(name, clip, sub)

    server = GstRtspServer.RTSPServer()
    server.set_address(host)
    server.set_service(str(port))
    mount_points = server.get_mount_points()
    for name, feed in feeds.items():
        factory = GstRtspServer.RTSPMediaFactory()
        factory.set_launch(_LAUNCH)
        factory.set_shared(True)  # one pipeline per mount: every client sees the same live stream
        factory.connect("media-configure", _on_media_configure, feed)
        mount_points.add_factory(f"/{name}", factory)
        if feed.sub is not None:
            sub_factory = GstRtspServer.RTSPMediaFactory()
            sub_factory.set_launch(_LAUNCH)
            sub_factory.set_shared(True)
            sub_factory.connect("media-configure", _on_media_configure, feed, True)
            mount_points.add_factory(f"/{name}/sub", sub_factory)
    if server.attach(None) == 0:
        print(f"rtsp_server: cannot listen on {host}:{port} (port in use?)", file=sys.stderr, flush=True)
        return 2
    bound = server.get_bound_port()
    for feed in feeds.values():
        feed.start()
    for name, feed in feeds.items():
        print(f"rtsp://{host}:{bound}/{name}", flush=True)
        if feed.sub is not None:
            print(f"rtsp://{host}:{bound}/{name}/sub", flush=True)
    print("READY", flush=True)

    loop = GLib.MainLoop()

    def quit_loop(*_: Any) -> bool:
        loop.quit()
        return GLib.SOURCE_REMOVE

    # GLib-level handlers: Python's own would only run once the C main loop returns.
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGINT, quit_loop)
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGTERM, quit_loop)
    loop.run()
    for feed in feeds.values():
        feed.stop()
    log.info("stopped")
    return 0


def _on_media_configure(_factory: Any, media: Any, feed: LoopingFeed, sub: bool = False) -> None:
    appsrc = media.get_element().get_by_name_recurse_up("src")
    handler: list[int] = []

    def on_need_data(src: Any, _length: int) -> None:
        # A live appsrc asks for data only once its pipeline runs: attach then, so the first
        # buffer can be stamped with the pipeline's running time and nothing queues up before.
        if handler:
            src.disconnect(handler.pop())
        feed.attach(src, sub)

    handler.append(appsrc.connect("need-data", on_need_data))
    media.connect("unprepared", lambda _m: feed.detach(appsrc))


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m pipelines.rtsp_server", description=__doc__.split("\n\n")[0])
    ap.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    ap.add_argument("--port", type=int, default=8554, help="TCP port; 0 picks a free one (default 8554)")
    ap.add_argument(
        "--mount",
        action="append",
        type=parse_mount,
        required=True,
        metavar="NAME=FILE",
        help="serve FILE (a path, or a name under $EDGE_DATA_DIR/videos) at /NAME; repeatable",
    )
    ap.add_argument(
        "--transcode", action="store_true", help="re-encode H.264 files too (e.g. for files with very long GOPs)"
    )
    ap.add_argument(
        "--keyframe-interval",
        type=float,
        default=1.0,
        metavar="S",
        help="keyframe interval of transcoded streams in seconds (default 1)",
    )
    ap.add_argument(
        "--sub", action="append", type=parse_mount, default=[], metavar="NAME=FILE",
        help="serve FILE as mount NAME's sub-stream at /NAME/sub (same frame count, paced with it); repeatable",
    )
    ap.add_argument(
        "--sub-streams", action="store_true",
        help="serve a 640x360 sub-stream of every mount at /NAME/sub (made with ffmpeg, cached)",
    )
    ap.add_argument("--log-level", default="INFO")
    args = ap.parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    names = [n for n, _ in args.mount]
    if len(set(names)) != len(names):
        ap.error("mount names must be unique")
    try:
        return serve(
            args.host, args.port, args.mount, args.transcode, args.keyframe_interval, dict(args.sub), args.sub_streams
        )
    except (OSError, ValueError, subprocess.CalledProcessError) as exc:
        print(f"rtsp_server: {exc}", file=sys.stderr, flush=True)
        return 2


class RtspServerError(RuntimeError):
    pass


class RtspTestServer:
    """Runs `python -m pipelines.rtsp_server` as a child process, for tests and demos.

        with RtspTestServer({"cam1": "hanoi_....mp4"}) as srv:
            url = srv.url("cam1")

    port=0 lets the server pick a free port; restart() reuses the port it got.
    """

    def __init__(
        self,
        mounts: Mapping[str, str | os.PathLike[str]],
        port: int = 0,
        host: str = "127.0.0.1",
        startup_timeout_s: float = 60.0,
        extra_args: Sequence[str] = (),
    ) -> None:
        if not mounts:
            raise ValueError("at least one mount is needed")
        self.mounts = {k: str(v) for k, v in mounts.items()}
        self.host = host
        self.port = port
        self.startup_timeout_s = startup_timeout_s
        self.extra_args = list(extra_args)
        self._proc: subprocess.Popen[str] | None = None
        self._stderr: deque[str] = deque(maxlen=500)
        self._urls: dict[str, str] = {}

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> RtspTestServer:
        if self.running:
            raise RtspServerError("server already running")
        cmd = [sys.executable, "-m", "pipelines.rtsp_server", "--host", self.host, "--port", str(self.port)]
        for name, file in self.mounts.items():
            cmd += ["--mount", f"{name}={file}"]
        cmd += self.extra_args
        env = dict(os.environ)
        checkout = source_checkout()  # installed: nothing to add; a checkout run without installing: itself
        if checkout is not None:
            env["PYTHONPATH"] = os.pathsep.join(p for p in (str(checkout), env.get("PYTHONPATH", "")) if p)
        self._proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        lines: list[str] = []
        ready = threading.Event()
        # Both pipes are drained for the child's whole life: a full pipe would block it.
        threading.Thread(target=self._read_stdout, args=(self._proc, lines, ready), daemon=True).start()
        threading.Thread(target=self._read_stderr, args=(self._proc, self._stderr), daemon=True).start()
        deadline = time.monotonic() + self.startup_timeout_s
        while not ready.wait(0.05):
            if self._proc.poll() is not None or time.monotonic() > deadline:
                why = (
                    f"exited with code {self._proc.returncode}"
                    if self._proc.poll() is not None
                    else f"not READY after {self.startup_timeout_s:.0f} s"
                )
                self._terminate(kill=True)
                raise RtspServerError(
                    f"RTSP test server {why}; command: {' '.join(cmd)}\nstderr:\n{self.stderr_text()[-4000:]}"
                )
        self._urls = {}
        for line in lines:
            m = re.fullmatch(r"rtsp://[^/]+:(\d+)/(.+)", line)
            if m:
                self.port = int(m.group(1))  # resolve port=0 once, so restart() reuses it
                self._urls[m.group(2)] = line
        return self

    @staticmethod
    def _read_stderr(proc: subprocess.Popen[str], sink: deque[str]) -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            sink.append(line)

    @staticmethod
    def _read_stdout(proc: subprocess.Popen[str], lines: list[str], ready: threading.Event) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:  # keep draining after READY so the child never blocks on stdout
            line = line.strip()
            if not ready.is_set():
                if line == "READY":
                    ready.set()
                else:
                    lines.append(line)

    def stop(self, timeout_s: float = 5.0) -> None:
        """SIGTERM (clean exit), SIGKILL if it does not exit in time."""
        self._terminate(kill=False, timeout_s=timeout_s)

    def kill(self) -> None:
        """SIGKILL: the camera vanishes without closing its connections cleanly."""
        self._terminate(kill=True)

    def freeze(self) -> None:
        """SIGSTOP: connections stay open but nothing is sent (a hung camera)."""
        os.kill(self._require().pid, signal.SIGSTOP)

    def thaw(self) -> None:
        os.kill(self._require().pid, signal.SIGCONT)

    def restart(self) -> RtspTestServer:
        """Kill if running, then start again on the same port."""
        if self.running:
            self.kill()
        return self.start()

    def _terminate(self, kill: bool, timeout_s: float = 5.0) -> None:
        proc = self._proc
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            if kill:
                proc.kill()
            else:
                os.kill(proc.pid, signal.SIGCONT)  # a frozen process would sit on SIGTERM forever
                proc.terminate()
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=timeout_s)

    # -- information -----------------------------------------------------------------------
    def _require(self) -> subprocess.Popen[str]:
        if self._proc is None or self._proc.poll() is not None:
            raise RtspServerError("server is not running")
        return self._proc

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def returncode(self) -> int | None:
        """The child's exit status once it has exited (0 after a clean stop())."""
        return None if self._proc is None else self._proc.poll()

    @property
    def pid(self) -> int:
        return self._require().pid

    def url(self, mount: str, sub: bool = False) -> str:
        """The mount's URL; sub=True: its sub-stream (served with `--sub-streams` or `--sub`)."""
        if mount not in self.mounts:
            raise KeyError(f"no mount {mount!r}; mounts: {', '.join(self.mounts)}")
        name = f"{mount}/sub" if sub else mount
        return self._urls.get(name) or f"rtsp://{self.host}:{self.port}/{name}"

    def stderr_text(self) -> str:
        """The child's recent stderr (its log), across restarts."""
        return "".join(self._stderr)

    def __enter__(self) -> RtspTestServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


if __name__ == "__main__":
    sys.exit(main())
