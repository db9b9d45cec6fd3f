"""Two streams per camera (Frigate's `detect` / `record` roles): analyse the sub-stream, record the main.

A camera with `record_source` (its main stream, e.g. 1920x1080) next to `source` (its sub-stream,
e.g. 640x360) is decoded only at the sub-stream's size: detection, tracking and rules run there,
with the scene (drawn once, at `reference_size`) scaled to it as to any frame. The main stream is
never decoded continuously: `RecordStream` only depayloads and parses it into the clip buffer
(`rtspsrc ! rtph264depay ! h264parse ! appsink`), and an event's snapshot is decoded from that
buffer when the event needs one (`frame_at`: the keyframe-aligned run of packets up to the
event's pts, with PyAV), its boxes, zone and lines scaled from detect to record pixels, and the
offender's plate read again there (`main_stream_plate`: a plate a few dozen pixels wide on the
sub-stream is often unreadable).

Timing: each stream's buffers carry running time in their own GStreamer pipeline; both pipelines
run on the process's one system clock, so (base time + pts) of either is a moment on that clock.
`RtspSource.clock_offset` turns that into the detect stream's pts, which is the timeline the
rules, events and clips use; packets of the main stream are stamped on it as they arrive.

    record = RecordStream(url, ring_add, detect_source)   # a thread; stop() to end
    frame = frame_at(ring.window(pts - 0.1, pts + 0.1), pts)  # BGR at main-stream size
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import numpy as np

from edge.detections import TrackedObjects
from edge.frames import Frame
from edge.geometry import PolygonZone
from edge.rules import Violation
from edge.rules.base import Overlay
from edge.runtime.analyzer import LiveAnalyzer, PendingEvent
from edge.sources import _av_frame_to_bgr, redact_url
from pipelines.clips import TIME_BASE, Packet, PacketRing

log = logging.getLogger("edge.streams")


def record_pipeline(url: str, latency_ms: int = 200, tcp: bool = True) -> str:
    """The main stream without a decoder: access units (Annex B, SPS/PPS before every keyframe)
    to an appsink 'packets' that hands them out on the streaming thread."""
    from pipelines.gst import _quote

    protocols = "tcp" if tcp else "udp"
    return (
        f"rtspsrc location={_quote(url)} latency={int(latency_ms)} protocols={protocols}"
        " ! rtph264depay ! h264parse config-interval=-1"
        " ! video/x-h264,stream-format=byte-stream,alignment=au"
        " ! appsink name=packets sync=false emit-signals=true"
    )


class RecordStream:
    """A camera's main stream parsed into packets (never decoded), on its own thread, with a stall
    watchdog and reconnect with backoff like `RtspSource`.

    `clock_offset` gives the detect stream's clock (`RtspSource.clock_offset`, None until its
    first frame): packets before it is known are dropped, as they could not be placed. A new
    connection calls `on_reset` first (the clip buffer cannot join two connections' packets).
    """

    POLL_S = 0.1

    def __init__(
        self,
        url: str,
        on_packet: Callable[[Packet], None],
        clock_offset: Callable[[], float | None],
        *,
        on_reset: Callable[[], None] | None = None,
        latency_ms: int = 200,
        tcp: bool = True,
        stall_timeout_s: float = 5.0,
        connect_timeout_s: float = 10.0,
        backoff_initial_s: float = 0.5,
        backoff_max_s: float = 30.0,
    ) -> None:
        self.url = url
        self.on_packet = on_packet
        self.clock_offset = clock_offset
        self.on_reset = on_reset
        self.description = record_pipeline(url, latency_ms, tcp)
        self.stall_timeout_s = stall_timeout_s
        self.connect_timeout_s = connect_timeout_s
        self.backoff_initial_s = backoff_initial_s
        self.backoff_max_s = backoff_max_s
        self.name = redact_url(url)
        self.packets = 0
        self.reconnects = 0
        self.width: int | None = None  # of the main stream, once its caps are known
        self.height: int | None = None
        self.last_error: str | None = None
        self._last_packet = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"record-{self.name}", daemon=True)

    def start(self) -> RecordStream:
        self._thread.start()
        return self

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout)

    def _run(self) -> None:
        from pipelines.gst import gst_init

        Gst, _ = gst_init()
        backoff = self.backoff_initial_s
        attempt = 0
        while not self._stop.is_set():
            if attempt:
                if self._stop.wait(backoff):
                    break
                backoff = min(backoff * 2, self.backoff_max_s)
                self.reconnects += 1
            attempt += 1
            if self.on_reset is not None:
                self.on_reset()
            got = self.packets
            failure = self._session(Gst)
            if self.packets > got:
                backoff = self.backoff_initial_s
            if failure and not self._stop.is_set():
                self.last_error = failure
                log.warning("record stream %s: %s; reconnecting", self.name, failure)

    def _session(self, Gst: Any) -> str | None:
        try:
            pipeline = Gst.parse_launch(self.description)
        except Exception as exc:  # GLib.Error: a missing element; retrying will not help, but the
            return f"cannot build the record pipeline ({exc})"  # camera's detection carries on
        sink = pipeline.get_by_name("packets")
        started = time.monotonic()
        self._last_packet = 0.0
        first = [True]

        def new_sample(appsink: Any) -> Any:
            sample = appsink.emit("pull-sample")
            if sample is None:
                return Gst.FlowReturn.OK
            buf = sample.get_buffer()
            offset = self.clock_offset()
            if buf.pts == Gst.CLOCK_TIME_NONE or offset is None:
                return Gst.FlowReturn.OK
            if first[0]:
                first[0] = False
                caps = sample.get_caps().get_structure(0)
                self.width, self.height = caps.get_value("width"), caps.get_value("height")
            base = pipeline.get_base_time()
            pts = (base + buf.pts) / Gst.SECOND + offset
            dts = (base + buf.dts) / Gst.SECOND + offset if buf.dts != Gst.CLOCK_TIME_NONE else None
            self._last_packet = time.monotonic()
            self.packets += 1
            try:
                self.on_packet(
                    Packet(buf.extract_dup(0, buf.get_size()), pts, dts, not buf.has_flags(Gst.BufferFlags.DELTA_UNIT))
                )
            except Exception:  # the clip buffer must never stall the stream
                log.exception("record stream %s: on_packet failed", self.name)
            return Gst.FlowReturn.OK

        sink.connect("new-sample", new_sample)
        bus = pipeline.get_bus()
        failure: str | None = None
        try:
            if pipeline.set_state(Gst.State.PLAYING) == Gst.StateChangeReturn.FAILURE:
                return "pipeline failed to start"
            while not self._stop.is_set():
                msg = bus.timed_pop_filtered(int(self.POLL_S * Gst.SECOND), Gst.MessageType.ERROR | Gst.MessageType.EOS)
                if msg is not None:
                    if msg.type == Gst.MessageType.EOS:
                        return "end of stream"
                    err, _ = msg.parse_error()
                    return f"{msg.src.get_name() if msg.src else 'pipeline'}: {err.message}"
                now = time.monotonic()
                if self._last_packet and now - self._last_packet > self.stall_timeout_s:
                    return f"no packets for {self.stall_timeout_s:g} s"
                if not self._last_packet and now - started > self.connect_timeout_s and self.clock_offset() is not None:
                    return f"no first packet for {self.connect_timeout_s:g} s"
            return failure
        finally:
            done = threading.Event()

            def to_null() -> None:
                pipeline.set_state(Gst.State.NULL)
                done.set()

            # As RtspSource: a frozen server must not hold up the reconnect or stop().
            threading.Thread(target=to_null, name="record-teardown", daemon=True).start()
            done.wait(1.0)


# --------------------------------------------------------------------------------------------
# A snapshot from the main stream's packets


def frame_at(packets: Sequence[Packet], pts: float, *, threads: int = 1) -> tuple[np.ndarray, float] | None:
    """Decode `packets` (starting on a keyframe, as `PacketRing.window` gives them) up to the frame
    nearest `pts`; (BGR image, its pts), or None when there is no such frame.

    Measured against keeping a decoded window (docs/benchmarks.md, "Two streams per camera"): an
    event costs at most one GOP of decode, where a window costs the main stream's full decode all
    the time; events are rare, so the on-demand decode wins by far."""
    import av

    if not packets or not packets[0].keyframe:
        return None
    ctx = av.CodecContext.create("h264", "r")
    ctx.thread_count = threads
    best: tuple[float, Any] | None = None
    for p in packets:
        pkt = av.Packet(p.data)
        pkt.pts = round(p.pts / TIME_BASE)
        pkt.dts = round(p.decode_time / TIME_BASE)
        pkt.time_base = TIME_BASE
        for vf in _decode(ctx, pkt):
            best = _nearer(best, vf, pts)
        if best is not None and best[0] > pts:
            break  # past the moment: the nearest frame is in hand
    else:
        for vf in _decode(ctx, None):  # the frames the decoder still holds
            best = _nearer(best, vf, pts)
    if best is None:
        return None
    return _av_frame_to_bgr(best[1]), best[0]


def _nearer(best: tuple[float, Any] | None, vf: Any, pts: float) -> tuple[float, Any] | None:
    if vf.pts is None:
        return best
    t = float(vf.pts * TIME_BASE)
    return (t, vf) if best is None or abs(t - pts) < abs(best[0] - pts) else best


def _decode(ctx: Any, pkt: Any | None) -> list[Any]:
    import av

    try:
        return list(ctx.decode(pkt))
    except av.error.FFmpegError:  # a damaged packet: skip it, as players do
        return []


# --------------------------------------------------------------------------------------------
# Detect -> record pixels


def scale_xyxy(box: Sequence[float], sx: float, sy: float) -> tuple[float, float, float, float]:
    x1, y1, x2, y2 = box
    return (x1 * sx, y1 * sy, x2 * sx, y2 * sy)


def scale_tracks(tracks: TrackedObjects | None, sx: float, sy: float) -> TrackedObjects | None:
    if tracks is None or len(tracks) == 0:
        return tracks
    xyxy = np.asarray(tracks.xyxy, np.float32) * np.array([sx, sy, sx, sy], np.float32)
    return TrackedObjects(xyxy, tracks.confidence, tracks.class_id, tracks.track_id, tracks.names)


def scale_violation(v: Violation, sx: float, sy: float) -> Violation:
    """The violation in record-stream pixels: offenders' boxes, the zone, the lines and lamps drawn
    on the snapshot (the rule's own pictures and the composite's moments keep theirs)."""
    zone = v.zone
    if zone is not None:
        zone = PolygonZone(zone.id, zone.kind, (zone.polygon * np.array([sx, sy], np.float32)).astype(np.float32))
    o = v.overlay
    overlay = Overlay(
        lines=tuple((i, (a[0] * sx, a[1] * sy), (b[0] * sx, b[1] * sy)) for i, a, b in o.lines),
        signal_id=o.signal_id,
        signal_state=o.signal_state,
        signal_boxes=tuple(
            (i, (round(x1 * sx), round(y1 * sy), round(x2 * sx), round(y2 * sy)))
            for i, (x1, y1, x2, y2) in o.signal_boxes
        ),
    )
    offenders = tuple(dataclasses.replace(f, box=scale_xyxy(f.box, sx, sy)) for f in v.offenders)
    return dataclasses.replace(v, offenders=offenders, zone=zone, overlay=overlay)


# --------------------------------------------------------------------------------------------
# The node's analyzer for a two-stream camera


class MainStreamFrames:
    """Snapshots at main-stream resolution from a camera's packet ring (the clip buffer's, or a
    small one of its own when clips are off)."""

    def __init__(self, ring: PacketRing, wait_s: float = 1.5) -> None:
        self.ring = ring
        self.wait_s = wait_s
        self.decoded = 0
        self.missed = 0

    def frame_at(self, pts: float) -> tuple[np.ndarray, float] | None:
        # The main stream's packet for pts may still be on its way (the sub-stream was decoded and
        # analysed meanwhile, so it usually is not): wait a little for it, never long.
        deadline = time.monotonic() + self.wait_s
        while (self.ring.newest_pts is None or self.ring.newest_pts < pts) and time.monotonic() < deadline:
            time.sleep(0.02)
        # One frame past pts too: the nearest may lie just after (the streams' skew is milliseconds).
        got = frame_at(self.ring.window(pts, pts + 0.1), pts)
        # A frame further than a frame period or two away is another moment: no snapshot from it.
        if got is None or abs(got[1] - pts) > 0.1:
            self.missed += 1
            return None
        self.decoded += 1
        return got


class MainStreamPendingEvent(PendingEvent):
    """A `PendingEvent` whose snapshots come from the main stream's frame at the event's pts."""

    def build(self):
        a = self.analyzer
        main = getattr(a, "main_frames", None)
        if self.frame is None or main is None:
            return super().build()
        got = main.frame_at(self.pts)
        if got is None:
            log.warning(
                "camera %s: no main-stream frame at %.3f; snapshot from the sub-stream", a.camera.camera.id, self.pts
            )
            return super().build()
        image, _ = got
        dh, dw = self.frame.image.shape[:2]
        sx, sy = image.shape[1] / dw, image.shape[0] / dh
        v = main_stream_plate(scale_violation(self.violation, sx, sy), image, _plate_cropper(a))
        evidence = a._evidence(dataclasses.replace(v, moments=()), image, self.when, scale_tracks(self.tracks, sx, sy))
        if self.violation.moments:
            # The composite is made from the moments the rule kept, in their own (sub-stream) pixels.
            from edge.composite import composite_jpegs
            from edge.evidence import EvidenceFile

            made = composite_jpegs(self.violation, a.camera.camera, self.when, a.tz)
            if made is not None:
                composite = (
                    EvidenceFile.of("composite", "image/jpeg", made[0]),
                    EvidenceFile.of("composite_clean", "image/jpeg", made[1]),
                )
                evidence = evidence[:2] + composite + evidence[2:]
        return a._event(v, self.pts, self.when, evidence)


# What `PlateCropper.attach` writes into a violation's details.
PLATE_DETAILS = ("plate_found", "plate_confidence", "plate_text", "plate_text_confidence", "plate_lines", "plate_reads")


def _plate_cropper(analyzer: Any) -> Any:
    """The plate stage of the camera's traffic rules (`WithPlates`), if it has one."""
    from edge.plates import WithPlates

    for rule in getattr(analyzer, "rules", None) or ():
        if isinstance(rule, WithPlates):
            return rule.plates
    return None


def main_stream_plate(v: Violation, image: np.ndarray, cropper: Any) -> Violation:
    """The offender's plate read again on the main stream's frame (`v` in its pixels). On the
    sub-stream a plate is a few dozen pixels and often unreadable; the event's main-stream frame
    is decoded anyway for the snapshot, so one more read there costs one crop. The main-stream read
    wins when it is readable and the sub-stream's vote was not, or agrees (a sharper crop of the
    same plate), or is surer; otherwise the track's vote stands (several frames beat one)."""
    from edge.crops import cut
    from edge.plate_text import UNREADABLE

    if cropper is None or cropper.reader is None or not v.offenders or "plate_found" not in v.details:
        return v
    base = dataclasses.replace(
        v,
        images=tuple(i for i in v.images if i.kind != "plate"),
        details={k: x for k, x in v.details.items() if k not in PLATE_DETAILS},
    )
    main = cropper.attach(base, [cut(image, v.offenders[0].box, margin=0.1)])
    sub_text, main_text = v.details.get("plate_text"), main.details.get("plate_text")
    main_ok = main_text not in (None, UNREADABLE)
    sub_ok = sub_text not in (None, UNREADABLE)
    better = main_ok and (
        not sub_ok
        or main_text == sub_text
        or float(main.details.get("plate_text_confidence") or 0) > float(v.details.get("plate_text_confidence") or 0)
    )
    if better or (not v.details.get("plate_found") and main.details.get("plate_found")):
        return dataclasses.replace(main, details={**main.details, "plate_source": "record_stream"})
    return v


class TwoStreamAnalyzer(LiveAnalyzer):
    """`LiveAnalyzer` for a camera analysed on its sub-stream: events' snapshots from the main stream."""

    main_frames: MainStreamFrames | None = None

    def _record(self, v: Violation, frame: Frame, when: datetime, tracks) -> PendingEvent:  # type: ignore[override]
        return MainStreamPendingEvent(self, v, frame, when, tracks)


__all__ = [
    "MainStreamFrames",
    "MainStreamPendingEvent",
    "RecordStream",
    "TwoStreamAnalyzer",
    "frame_at",
    "main_stream_plate",
    "record_pipeline",
    "scale_tracks",
    "scale_violation",
]


# --------------------------------------------------------------------------------------------
# Measuring the two ways to a main-stream snapshot: `python -m edge.streams FILE`


def measure_snapshot_options(path: str, events: int = 40, seed: int = 1) -> dict[str, Any]:
    """On-demand decode of the keyframe-aligned packets at an event's pts (what the node does) vs.
    keeping a decoded window (decoding the main stream all the time), on one H.264 file, one thread."""
    import random

    import av

    from edge.sources import VideoFileSource

    packets: list[Packet] = []
    src = VideoFileSource(path, on_packet=packets.append)
    for _ in src.frames():
        pass
    # The decoded window's cost: every frame decoded (not even converted), one thread.
    ctx = av.CodecContext.create("h264", "r")
    ctx.thread_count = 1
    t0 = time.process_time()
    n_frames = 0
    for p in packets:
        n_frames += len(_decode(ctx, av.Packet(p.data)))
    window_cpu = time.process_time() - t0
    last = packets[-1].pts if packets else 0.0
    duration = last - packets[0].pts if packets else 0.0
    ring = PacketRing(duration + 10, 1 << 31)
    for p in packets:
        ring.add(p)
    rng = random.Random(seed)
    keys = [p.pts for p in packets if p.keyframe]
    times = []
    for _ in range(events):
        t = rng.uniform(keys[0], last)
        c0 = time.process_time()
        got = frame_at(ring.window(t, t + 0.1), t)
        times.append(time.process_time() - c0)
        assert got is not None
    times.sort()
    per_s = window_cpu / duration if duration else 0.0
    per_event = sum(times) / len(times)
    return {
        "file": str(path),
        "frames": n_frames,
        "seconds": round(duration, 1),
        "gop_s": round((keys[-1] - keys[0]) / max(1, len(keys) - 1), 2),
        "decoded_window_cpu_s_per_s": round(per_s, 3),  # = cores, all the time
        "on_demand_ms_per_event_mean": round(1000 * per_event, 1),
        "on_demand_ms_per_event_p95": round(1000 * times[int(0.95 * (len(times) - 1))], 1),
        # Events per minute at which decoding on demand would cost as much as the window.
        "break_even_events_per_min": round(60 * per_s / per_event, 1) if per_event else None,
    }


def measure_skew(path: str, seconds: float = 12.0) -> dict[str, Any]:
    """Serve `path` with the RTSP test server as main + 640x360 sub-stream, read the sub-stream as
    the node does (RtspSource) and the main stream as RecordStream: the time between each analysed
    frame and the nearest main-stream packet (the same frame, sent at the same moment)."""
    import statistics

    from edge.sources import RtspSource
    from pipelines.rtsp_server import RtspTestServer

    with RtspTestServer({"cam": path}, extra_args=["--sub-streams"]) as srv:
        detect = RtspSource(srv.url("cam", sub=True), None)
        packets: list[Packet] = []
        record = RecordStream(srv.url("cam"), packets.append, lambda: detect.clock_offset).start()
        pts: list[float] = []
        end = time.monotonic() + seconds
        for f in detect.frames():
            pts.append(f.pts)
            if time.monotonic() > end:
                break
        detect.stop()
        record.stop()
    main_pts = sorted(p.pts for p in packets)
    import bisect

    skew = []
    # Only while both streams ran (the main stream starts later: it waits for the detect clock and a keyframe).
    for t in (t for t in pts if main_pts and main_pts[0] <= t <= main_pts[-1]):
        i = bisect.bisect_left(main_pts, t)
        near = [main_pts[j] for j in (i - 1, i) if 0 <= j < len(main_pts)]
        if near:
            skew.append(1000 * (min(near, key=lambda m: abs(m - t)) - t))
    return {
        "frames": len(pts),
        "main_packets": len(packets),
        "main_size": [record.width, record.height],
        "skew_ms_median": round(statistics.median(skew), 2),
        "skew_ms_abs_p95": round(sorted(abs(x) for x in skew)[int(0.95 * (len(skew) - 1))], 2),
        "skew_ms_min": round(min(skew), 2),
        "skew_ms_max": round(max(skew), 2),
    }


if __name__ == "__main__":
    import json
    import sys

    if sys.argv[1] == "--skew":  # python -m edge.streams --skew FILE
        print(json.dumps(measure_skew(sys.argv[2])))
    else:  # python -m edge.streams FILE
        print(json.dumps(measure_snapshot_options(sys.argv[1])))
