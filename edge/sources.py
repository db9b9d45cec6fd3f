"""Frame sources: a video file (PyAV) or an RTSP camera (GStreamer), both yielding `Frame`s.

Both hand out only the frames the analysis rate asks for (`analysis_fps`), and convert to BGR
only those: decoding is unavoidable, colour conversion of frames nobody analyses is not.

    src = open_source("rtsp://cam/stream", analysis_fps=5)
    for frame in src.frames():   # runs until src.stop() (from any thread)
        ...
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal, Protocol

import cv2
import numpy as np

from edge.data import video_path
from edge.frames import Frame
from pipelines.clips import Packet
from pipelines.orientation import upright

log = logging.getLogger("edge.sources")

SourceState = Literal["starting", "streaming", "reconnecting", "stalled", "ended"]


class SourceError(RuntimeError):
    """A source failed in a way the caller must hear about (not a camera hiccup: those are retried)."""


class SourceOpenError(SourceError):
    """A video file is missing or cannot be read as video; the message names the file."""

    def __init__(self, path: str | os.PathLike[str], reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"cannot open video file '{self.path}': {reason}")


@dataclass(frozen=True, slots=True)
class SourceHealth:
    """A snapshot of a source's condition, for metrics, status messages and tests."""

    state: SourceState = "starting"
    reconnects: int = 0
    last_frame_wall_time: float | None = None  # time.time() of the last decoded frame
    frames_decoded: int = 0  # frames that reached us from the decoder
    frames_delivered: int = 0  # frames handed out after analysis-rate selection
    # Analysis slots no frame filled: the consumer was late (overload: frames dropped evenly,
    # newest kept) or the stream had a gap. Counted, never silent.
    slots_missed: int = 0
    last_error: str | None = None


HealthCallback = Callable[[SourceHealth], None]
# Every compressed H.264 access unit (Annex B, pts on the frames' clock), for the clip buffer.
PacketCallback = Callable[[Packet], None]


class FrameSource(Protocol):
    def frames(self) -> Iterator[Frame]: ...

    def stop(self) -> None: ...

    @property
    def health(self) -> SourceHealth: ...


class FrameSelector:
    """Keeps the frames due at the analysis rate: the first one, then one per 1/fps slot.

    Slots lie on a fixed grid from the first kept pts (no drift from adding floats), and after a
    gap the grid resumes at the first slot after the kept frame (no burst of catch-up frames).
    `tolerance_s` lets a frame a little early fill its slot: ~0 for files (exact, deterministic
    timestamps), a fraction of the period for live streams, whose pts jitter by milliseconds.
    """

    def __init__(self, analysis_fps: float | None, tolerance_s: float = 1e-6) -> None:
        if analysis_fps is not None and not analysis_fps > 0:
            raise ValueError(f"analysis_fps must be > 0 or None, got {analysis_fps!r}")
        self.period = 1.0 / analysis_fps if analysis_fps else 0.0
        self.tolerance = tolerance_s
        self._origin: float | None = None
        self._slot = 0
        self.missed = 0  # slots skipped since the grid began (late consumer or stream gap)

    def reset(self) -> None:
        self._origin = None
        self._slot = 0

    @property
    def next_due(self) -> float | None:
        return None if self._origin is None else self._origin + self._slot * self.period

    def keep(self, pts: float) -> bool:
        if not self.period:
            return True
        if self._origin is None or pts < self._origin - self.tolerance:
            # First frame, or time went backwards (a new stream): start a new grid here.
            self._origin, self._slot = pts, 1
            return True
        if pts < self._origin + self._slot * self.period - self.tolerance:
            return False
        slot = max(self._slot + 1, math.floor((pts - self._origin + self.tolerance) / self.period) + 1)
        self.missed += slot - self._slot - 1
        self._slot = slot
        return True


class _HealthMixin:
    """Health bookkeeping shared by the sources: a lock-protected snapshot and a change callback."""

    _name: str

    def _init_health(self, on_health: HealthCallback | None) -> None:
        self._health = SourceHealth()
        self._health_lock = threading.Lock()
        self._on_health = on_health

    @property
    def health(self) -> SourceHealth:
        with self._health_lock:
            return self._health

    def _update(self, notify: bool = False, **changes: Any) -> None:
        with self._health_lock:
            old = self._health
            self._health = new = replace(old, **changes)
        if self._on_health is not None and (notify or new.state != old.state):
            try:
                self._on_health(new)
            except Exception:  # a broken observer must not take the camera down
                log.exception("source %s: on_health callback failed", self._name)
        if new.state != old.state:
            log.info(
                "source %s: %s -> %s%s",
                self._name,
                old.state,
                new.state,
                f" ({new.last_error})" if new.state in ("stalled", "reconnecting") and new.last_error else "",
            )

    def _count_frame(self, wall: float, delivered: bool, slots_missed: int | None = None) -> None:
        with self._health_lock:
            h = self._health
            self._health = replace(
                h,
                frames_decoded=h.frames_decoded + 1,
                last_frame_wall_time=wall,
                frames_delivered=h.frames_delivered + (1 if delivered else 0),
                slots_missed=h.slots_missed if slots_missed is None else slots_missed,
            )


# --------------------------------------------------------------------------------------------
# Video files


class VideoFileSource(_HealthMixin):
    """Decodes a file with PyAV on one thread: the same file gives the same frames every run.

    pts are the file's own timestamps (stream time_base); with loop=True each pass is offset by
    the clip's duration so pts keep increasing. realtime=True paces delivery at the file's rate
    (a stand-in camera for demos); by default frames come as fast as the consumer takes them.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        analysis_fps: float | None = None,
        loop: bool = False,
        realtime: bool = False,
        on_health: HealthCallback | None = None,
        on_packet: PacketCallback | None = None,
    ) -> None:
        self.path = Path(path)
        self.on_packet = on_packet
        self.analysis_fps = analysis_fps
        self.loop = loop
        self.realtime = realtime
        self._name = self.path.name
        self._stop = threading.Event()
        self._init_health(on_health)
        FrameSelector(analysis_fps)  # validate now, not at the first frame
        self._probe()

    def _open(self) -> Any:
        import av

        if not self.path.exists():
            raise SourceOpenError(self.path, "no such file")
        if not self.path.is_file():
            raise SourceOpenError(self.path, "not a regular file")
        try:
            container = av.open(str(self.path))
        except (av.error.FFmpegError, OSError) as exc:
            raise SourceOpenError(self.path, f"unreadable ({exc})") from exc
        if not container.streams.video:
            container.close()
            raise SourceOpenError(self.path, "no video stream")
        return container

    def _probe(self) -> None:
        import av

        with self._open() as container:
            stream = container.streams.video[0]
            self.width = stream.codec_context.width
            self.height = stream.codec_context.height
            rate = stream.average_rate or stream.guessed_rate
            self.fps = float(rate) if rate else None
            # The display rotation (phone footage): clips cut from this file must carry it too.
            self.rotation = 0.0
            if self.on_packet is not None:
                with contextlib.suppress(StopIteration, av.error.FFmpegError):
                    self.rotation = float(getattr(next(container.decode(stream)), "rotation", 0) or 0)

    def stop(self) -> None:
        self._stop.set()

    def _packet_filter(self, stream: Any) -> Any:
        # The clip buffer takes Annex B H.264 (what cameras send); MP4 stores length-prefixed NAL
        # units with SPS/PPS out of band: h264_mp4toannexb puts them back in front of keyframes.
        if self.on_packet is None:
            return None
        if stream.codec_context.name != "h264":
            log.warning("source %s: %s video, no clips (only H.264 is buffered)", self._name, stream.codec_context.name)
            return None
        from av.bitstream import BitStreamFilterContext

        return BitStreamFilterContext("h264_mp4toannexb", stream)

    def _feed_packets(self, bsf: Any, packet: Any, tb: Any, offset: float) -> None:
        assert self.on_packet is not None
        if packet.size == 0 or packet.pts is None:
            return
        for q in bsf.filter(packet):
            dts = float(q.dts * tb) + offset if q.dts is not None else None
            self.on_packet(Packet(bytes(q), float(q.pts * tb) + offset, dts, bool(q.is_keyframe)))

    def frames(self) -> Iterator[Frame]:
        import av

        selector = FrameSelector(self.analysis_fps)
        index = 0
        loop_offset = 0.0
        start_wall: float | None = None
        first_pts: float | None = None
        try:
            while not self._stop.is_set():
                n_decoded = 0
                pts_first_pass: float | None = None
                pts_last_pass = 0.0
                with self._open() as container:
                    stream = container.streams.video[0]
                    # One decoder thread: deterministic, and cameras should not compete for cores.
                    stream.codec_context.thread_count = 1
                    stream.codec_context.thread_type = "NONE"
                    tb = stream.time_base
                    period = 1.0 / self.fps if self.fps else 0.04
                    to_annexb = self._packet_filter(stream)
                    for packet in container.demux(stream):
                        try:
                            decoded = packet.decode()
                        except av.error.FFmpegError as exc:  # a corrupt packet: skip it, as players do
                            self._update(last_error=f"decode error: {exc}")
                            decoded = []
                        if to_annexb is not None:
                            # After decoding: the filter takes the packet's data. Before the frame
                            # is handed out: the buffer is never behind the analysis.
                            self._feed_packets(to_annexb, packet, tb, loop_offset)
                        for vf in decoded:
                            if self._stop.is_set():
                                return
                            raw = float(vf.pts * tb) if vf.pts is not None and tb else n_decoded * period
                            n_decoded += 1
                            if pts_first_pass is None:
                                pts_first_pass = raw
                            pts_last_pass = raw
                            pts = raw + loop_offset
                            keep = selector.keep(pts)
                            wall = time.time()
                            self._count_frame(wall, keep)
                            if not keep:
                                continue
                            if self.realtime:
                                if start_wall is None or first_pts is None:
                                    start_wall, first_pts = time.monotonic(), pts
                                delay = start_wall + (pts - first_pts) - time.monotonic()
                                if delay > 0 and self._stop.wait(delay):
                                    return
                                wall = time.time()
                            if index == 0:
                                self._update(state="streaming")
                            image = upright(_av_frame_to_bgr(vf), getattr(vf, "rotation", 0))
                            yield Frame(image=image, pts=pts, wall_time=wall, index=index)
                            index += 1
                if n_decoded == 0:
                    raise SourceOpenError(self.path, "no decodable video frames")
                if not self.loop:
                    break
                # Next pass continues one frame period after this pass's last frame.
                loop_offset += pts_last_pass - (pts_first_pass or 0.0) + period
        finally:
            self._update(state="ended")


def _av_frame_to_bgr(vf: Any) -> np.ndarray:
    # The same cv2 conversion as the RTSP path, so a clip gives the same pixels from a file
    # and from a camera serving it; other pixel formats go through swscale.
    fmt = vf.format.name
    if fmt in ("yuv420p", "yuvj420p") and vf.width % 2 == 0 and vf.height % 2 == 0:
        full = fmt == "yuvj420p" or getattr(vf, "color_range", 0) == 2  # AVCOL_RANGE_JPEG
        packed = vf.to_ndarray()  # (h * 3/2) x w, planes packed
        if full:
            h = vf.height
            packed = np.concatenate([cv2.LUT(packed[:h], _LUT_Y), cv2.LUT(packed[h:], _LUT_C)])
        return cv2.cvtColor(packed, cv2.COLOR_YUV2BGR_I420)
    return vf.to_ndarray(format="bgr24")


# --------------------------------------------------------------------------------------------
# RTSP cameras


def redact_url(url: str) -> str:
    """rtsp://user:secret@host/... -> rtsp://user:***@host/... (for logs and health messages)."""
    return re.sub(r"(?<=://)([^:/@]+):[^@/]*@", r"\1:***@", url)


# Full-range ("JPEG", 0-255) YUV squeezed into video range (16-235/240): cv2's YUV->BGR
# conversions assume video range, and many IP cameras send full range.
_LUT_Y = np.clip(np.round(16 + np.arange(256) * 219 / 255), 0, 255).astype(np.uint8)
_LUT_C = np.clip(np.round(128 + (np.arange(256) - 128) * 224 / 255), 0, 255).astype(np.uint8)


def yuv_to_bgr(
    data: bytes | memoryview,
    fmt: str,
    width: int,
    height: int,
    strides: tuple[int, ...],
    offsets: tuple[int, ...],
    full_range: bool = False,
) -> np.ndarray:
    """Raw I420 / NV12 (GStreamer layout: strides and plane offsets) -> BGR via cv2 (BT.601).

    The fast path reads the buffer in place; padded strides (widths not a multiple of 4) are
    repacked first. Odd sizes lose their last row/column (4:2:0 needs even sizes).
    """
    buf = np.frombuffer(data, dtype=np.uint8)
    w, h = width & ~1, height & ~1
    compact = (width, height) == (w, h)
    packed: np.ndarray  # the Y plane over the chroma rows, as cv2's YUV 4:2:0 conversions take it
    if fmt == "I420":
        code = cv2.COLOR_YUV2BGR_I420
        if compact and strides[:3] == (w, w // 2, w // 2) and offsets[1:3] == (w * h, w * h + w * h // 4):
            packed = buf[: w * h * 3 // 2].reshape(h * 3 // 2, w)
        else:
            planes = [
                _plane(buf, offsets[0], strides[0], h, w),
                _plane(buf, offsets[1], strides[1], h // 2, w // 2),
                _plane(buf, offsets[2], strides[2], h // 2, w // 2),
            ]
            packed = np.concatenate([p.reshape(-1) for p in planes]).reshape(h * 3 // 2, w)
    elif fmt == "NV12":
        code = cv2.COLOR_YUV2BGR_NV12
        if compact and strides[:2] == (w, w) and offsets[1] == w * h:
            packed = buf[: w * h * 3 // 2].reshape(h * 3 // 2, w)
        else:
            packed = np.concatenate(
                [_plane(buf, offsets[0], strides[0], h, w), _plane(buf, offsets[1], strides[1], h // 2, w)]
            )
    else:
        raise SourceError(f"unsupported raw format {fmt!r} (expected I420 or NV12)")
    if full_range:
        packed = np.concatenate([cv2.LUT(packed[:h], _LUT_Y), cv2.LUT(packed[h:], _LUT_C)])
    return cv2.cvtColor(packed, code)


def _plane(buf: np.ndarray, offset: int, stride: int, rows: int, cols: int) -> np.ndarray:
    return buf[offset : offset + stride * rows].reshape(rows, stride)[:, :cols]


class RtspSource(_HealthMixin):
    """An RTSP camera through GStreamer, with a stall watchdog and reconnect with backoff.

    No GLib main loop: one loop pulls samples with `try_pull_sample` and polls the bus, so the
    whole camera lives on the consumer's thread. A dead server shows up as EOS/ERROR on the bus;
    a frozen one sends nothing and posts nothing, which only the watchdog notices. Either way the
    pipeline is torn down and rebuilt after a backoff (doubling up to backoff_max_s, reset by the
    first frame of a new connection).

    pts: buffer pts in seconds; across reconnects they continue (offset by the wall-clock gap) so
    downstream time never runs backwards. State: starting -> streaming; on a stall: stalled, then
    reconnecting; on EOS/error: reconnecting; back to streaming at the first frame; ended after
    stop(). on_health gets a snapshot at every state change and at every reconnect attempt.
    A connection's first frame may take up to connect_timeout_s (default max(stall, 10 s)):
    frames are held back until the first keyframe, which can be a whole GOP away.
    A decode pipeline that cannot be built (platform plugin missing) raises SourceError.
    """

    POLL_S = 0.1  # bound on how long stop() and the watchdog wait for the loop to look up

    def __init__(
        self,
        url: str,
        analysis_fps: float | None = None,
        platform: str = "cpu",
        stall_timeout_s: float = 5.0,
        backoff_initial_s: float = 0.5,
        backoff_max_s: float = 30.0,
        on_health: HealthCallback | None = None,
        latency_ms: int = 200,
        tcp: bool = True,
        decoder_threads: int | None = None,
        connect_timeout_s: float | None = None,
        on_packet: PacketCallback | None = None,
    ) -> None:
        from pipelines.gst import PLATFORMS, rtsp_decode_pipeline

        if platform not in PLATFORMS:
            raise ValueError(f"unknown platform {platform!r}; expected one of {', '.join(PLATFORMS)}")
        if stall_timeout_s <= 0 or backoff_initial_s <= 0 or backoff_max_s < backoff_initial_s:
            raise ValueError("need stall_timeout_s > 0 and 0 < backoff_initial_s <= backoff_max_s")
        self.url = url
        self.analysis_fps = analysis_fps
        self.platform = platform
        self.stall_timeout_s = stall_timeout_s
        self.backoff_initial_s = backoff_initial_s
        self.backoff_max_s = backoff_max_s
        # The first frame of a connection may wait for the next keyframe (a live stream joined
        # mid-GOP): allow longer than a stall, or long-GOP cameras would never get connected.
        self.connect_timeout_s = connect_timeout_s if connect_timeout_s is not None else max(stall_timeout_s, 10.0)
        self.on_packet = on_packet
        # With on_packet the parsed stream is split (tee): one branch decodes for analysis, the
        # other hands the compressed access units to the clip buffer. One RTSP connection for both.
        self.pipeline_description = rtsp_decode_pipeline(
            url, platform, latency_ms, tcp, decoder_threads, packets=on_packet is not None
        )
        self._offset_lock = threading.Lock()
        self._session_offset: float | None = None
        self._last_pts: float | None = None
        self._last_wall = 0.0
        # pts - this value = the frame's time on the GStreamer system clock (monotonic, as
        # time.monotonic()): what lines a second stream of the camera up with this one (edge/streams.py).
        self.clock_offset: float | None = None
        self._name = redact_url(url)
        self._stop = threading.Event()
        self._init_health(on_health)
        # A live stream's pts jitter by a few ms: let a frame up to a quarter period early fill its slot.
        FrameSelector(analysis_fps)  # validate now
        self._tolerance = 0.25 / analysis_fps if analysis_fps else 0.0

    def stop(self) -> None:
        """Ask frames() to end; returns at once (safe from any thread). frames() ends within ~POLL_S."""
        self._stop.set()

    def frames(self) -> Iterator[Frame]:
        from pipelines.gst import gst_init

        Gst, _ = gst_init()
        selector = FrameSelector(self.analysis_fps, self._tolerance)
        index = 0
        backoff = self.backoff_initial_s
        attempt = 0
        try:
            while not self._stop.is_set():
                if attempt:
                    if self._stop.wait(backoff):
                        break
                    backoff = min(backoff * 2, self.backoff_max_s)
                    self._update(state="reconnecting", reconnects=self.health.reconnects + 1, notify=True)
                attempt += 1
                pipeline = self._build(Gst)
                appsink = pipeline.get_by_name("sink")
                bus = pipeline.get_bus()
                self._gate_until_keyframe(Gst, pipeline)
                with self._offset_lock:
                    self._session_offset = None  # set by this connection's first buffer
                packet_sink = pipeline.get_by_name("packets")
                if packet_sink is not None:
                    self._connect_packets(Gst, packet_sink)
                failure: str | None = None
                session_frames = 0
                last_sample = time.monotonic()
                try:
                    if pipeline.set_state(Gst.State.PLAYING) == Gst.StateChangeReturn.FAILURE:
                        failure = self._bus_error(Gst, bus) or "pipeline failed to start"
                    while failure is None and not self._stop.is_set():
                        sample = appsink.try_pull_sample(int(self.POLL_S * Gst.SECOND))
                        now = time.monotonic()
                        if sample is not None:
                            last_sample = now
                            wall = time.time()
                            buf = sample.get_buffer()
                            raw_pts = buf.pts / Gst.SECOND if buf.pts != Gst.CLOCK_TIME_NONE else None
                            if session_frames == 0:
                                backoff = self.backoff_initial_s  # a working connection resets the backoff
                            pts_offset = self._offset_for(raw_pts or 0.0, wall)
                            session_frames += 1
                            pts = (raw_pts if raw_pts is not None else 0.0) + pts_offset
                            with self._offset_lock:
                                if raw_pts is None and self._last_pts is not None:
                                    pts = self._last_pts + (wall - self._last_wall)
                                self._last_pts, self._last_wall = pts, wall
                            keep = selector.keep(pts)
                            self._count_frame(wall, keep, selector.missed)
                            if session_frames == 1:
                                self.clock_offset = pts_offset - pipeline.get_base_time() / Gst.SECOND
                                self._update(state="streaming")
                            if keep:
                                image = self._to_bgr(Gst, sample, buf)
                                del sample, buf  # release the GStreamer buffer before the consumer runs
                                yield Frame(image=image, pts=pts, wall_time=wall, index=index)
                                index += 1
                                # Time spent in the consumer is not the camera's fault: restart the clock.
                                last_sample = time.monotonic()
                                continue
                        failure = self._bus_error(Gst, bus)
                        limit = self.stall_timeout_s if session_frames else self.connect_timeout_s
                        if failure is None and now - last_sample > limit:
                            failure = f"{'no frames' if session_frames else 'no first frame'} for {limit:g} s"
                            if session_frames:
                                self._update(state="stalled", last_error=failure)
                finally:
                    self._teardown(Gst, pipeline)
                # A stall keeps its own state until the rebuild; EOS/errors go straight to reconnecting.
                if failure is not None and not self._stop.is_set() and self.health.state != "stalled":
                    self._update(state="reconnecting", last_error=failure)
        finally:
            self._update(state="ended")

    def _offset_for(self, raw_pts: float, wall: float) -> float:
        """This connection's pts offset, fixed by its first buffer (frame or packet): a new
        connection continues the previous one's timeline across the gap, so time never runs
        backwards, and frames and packets share one clock."""
        with self._offset_lock:
            if self._session_offset is None:
                prev = self._last_pts
                self._session_offset = 0.0 if prev is None else prev + (wall - self._last_wall) - raw_pts
            return self._session_offset

    def _connect_packets(self, Gst: Any, sink: Any) -> None:
        """Hand every access unit to on_packet from the streaming thread, as it arrives: the
        buffer stays current while the camera thread is busy analysing, and nothing queues up."""
        on_packet = self.on_packet
        assert on_packet is not None

        def new_sample(appsink: Any) -> Any:
            sample = appsink.emit("pull-sample")
            if sample is None:
                return Gst.FlowReturn.OK
            buf = sample.get_buffer()
            if buf.pts == Gst.CLOCK_TIME_NONE:
                return Gst.FlowReturn.OK
            raw = buf.pts / Gst.SECOND
            offset = self._offset_for(raw, time.time())
            dts = buf.dts / Gst.SECOND + offset if buf.dts != Gst.CLOCK_TIME_NONE else None
            try:
                on_packet(Packet(buf.extract_dup(0, buf.get_size()), raw + offset, dts,
                                 not buf.has_flags(Gst.BufferFlags.DELTA_UNIT)))
            except Exception:  # the clip buffer must never stall the stream
                log.exception("source %s: on_packet failed", self._name)
            return Gst.FlowReturn.OK

        sink.connect("new-sample", new_sample)

    def _build(self, Gst: Any) -> Any:
        try:
            return Gst.parse_launch(self.pipeline_description)
        except Exception as exc:  # GLib.Error: a missing element (no VA-API / Jetson plugin here)
            # A configuration error, not a camera hiccup: retrying would never fix it.
            self._update(last_error=f"cannot build pipeline: {exc}")
            raise SourceError(
                f"source {self._name}: cannot build the {self.platform!r} decode pipeline ({exc}); "
                "is the platform's GStreamer plugin installed?"
            ) from exc

    @staticmethod
    def _gate_until_keyframe(Gst: Any, pipeline: Any) -> None:
        """Drop parsed access units until the first keyframe of the connection.

        A shared live stream joined mid-GOP starts with P-frames whose references were never
        received: decoders then output grey smears (libav) or errors (hardware). The probe
        removes itself at the first keyframe, so it costs nothing afterwards.
        """
        parse = pipeline.get_by_name("parse")
        if parse is None:
            return

        def gate(_pad: Any, info: Any) -> Any:
            buf = info.get_buffer()
            if buf is not None and buf.has_flags(Gst.BufferFlags.DELTA_UNIT):
                return Gst.PadProbeReturn.DROP
            return Gst.PadProbeReturn.REMOVE  # pass this keyframe and every later buffer

        parse.get_static_pad("src").add_probe(Gst.PadProbeType.BUFFER, gate)

    @staticmethod
    def _bus_error(Gst: Any, bus: Any) -> str | None:
        msg = bus.timed_pop_filtered(0, Gst.MessageType.ERROR | Gst.MessageType.EOS)
        if msg is None:
            return None
        if msg.type == Gst.MessageType.EOS:
            return "end of stream"
        err, _debug = msg.parse_error()
        return f"{msg.src.get_name() if msg.src else 'pipeline'}: {err.message}"

    def _teardown(self, Gst: Any, pipeline: Any) -> None:
        # rtspsrc may wait on a frozen server while sending TEARDOWN: never let that hold up the
        # reconnect loop or stop(); a helper thread finishes it in the background.
        done = threading.Event()

        def to_null() -> None:
            pipeline.set_state(Gst.State.NULL)
            done.set()

        threading.Thread(target=to_null, name="rtsp-teardown", daemon=True).start()
        if not done.wait(1.0):
            log.warning(
                "source %s: pipeline teardown still pending after 1 s; left to finish in the background", self._name
            )

    @staticmethod
    def _to_bgr(Gst: Any, sample: Any, buf: Any) -> np.ndarray:
        import gi

        gi.require_version("GstVideo", "1.0")
        from gi.repository import GstVideo

        info = GstVideo.VideoInfo.new_from_caps(sample.get_caps())
        fmt = info.finfo.format.value_nick.upper()
        full_range = info.colorimetry.range == getattr(GstVideo.VideoColorRange, "0_255")
        data = buf.extract_dup(0, buf.get_size())
        return yuv_to_bgr(data, fmt, info.width, info.height, tuple(info.stride), tuple(info.offset), full_range)


def open_source(uri: str, analysis_fps: float | None = None, **kw: Any) -> VideoFileSource | RtspSource:
    """RtspSource for rtsp:// and rtsps:// URLs, VideoFileSource for anything else (a path, a
    file:// URL, or a bare name looked up under $EDGE_DATA_DIR/videos)."""
    if uri.lower().startswith(("rtsp://", "rtsps://")):
        return RtspSource(uri, analysis_fps, **kw)
    path = uri[len("file://") :] if uri.startswith("file://") else uri
    return VideoFileSource(video_path(path), analysis_fps, **kw)
