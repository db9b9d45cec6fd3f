"""Event clips from the camera's own H.264: a ring buffer of compressed access units, remuxed to MP4.

No decoded frames are kept and nothing is re-encoded: a camera's buffer costs its bitrate times
the buffered seconds (a 4 Mbit/s 1080p camera with 5 s: ~2.5 MB), and a clip costs one remux.

    recorder = ClipRecorder(clip_dir, pre_s=5, post_s=5)
    recorder.add(Packet(data, pts, dts, keyframe))   # from the source, every access unit
    ticket = recorder.request(event_pts)               # an event: clip [pts - pre, pts + post]
    for t in recorder.poll(): ...                      # written clips (ticket.clip is set)

Packets are Annex B byte-stream access units (start codes, SPS/PPS in-band before every IDR, as
`h264parse config-interval=-1` and the `h264_mp4toannexb` filter produce them), with pts in
seconds on the same clock as the analysed frames. A clip starts on the last keyframe at or before
its window start (up to one GOP earlier than asked: never shorter). Events whose windows overlap
share one clip: a pending clip is extended rather than a second one cut.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import threading
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

log = logging.getLogger("pipelines.clips")

TIME_BASE = Fraction(1, 90000)  # the RTP/MPEG clock: exact for every common frame rate


@dataclass(frozen=True, slots=True)
class Packet:
    """One compressed H.264 access unit (Annex B)."""

    data: bytes
    pts: float  # seconds
    dts: float | None = None  # seconds; None when the stream has no reordering (typical cameras)
    keyframe: bool = False

    @property
    def decode_time(self) -> float:
        return self.pts if self.dts is None else self.dts


class PacketRing:
    """The newest compressed packets of one camera, bounded by time and by bytes.

    Time bound: keeps every packet from the last keyframe at or before `newest - seconds`, so the
    buffer always starts on a keyframe and covers at least `seconds` (plus up to one GOP). Byte
    bound: a hard cap that wins over everything (a camera with a huge bitrate or no keyframes must
    not eat the box); it is what keeps memory bounded. `hold(t)` keeps packets from t on for a
    pending clip until `release(t)`, still within the byte cap. Thread-safe: packets come from the
    source's streaming thread, clips are cut on the camera thread (the live node: its evidence worker).
    """

    def __init__(self, seconds: float, max_bytes: int) -> None:
        if seconds <= 0 or max_bytes <= 0:
            raise ValueError("need seconds > 0 and max_bytes > 0")
        self.seconds = seconds
        self.max_bytes = max_bytes
        self._packets: deque[Packet] = deque()
        self._bytes = 0
        self._holds: list[float] = []
        self._lock = threading.Lock()
        self.evicted_held = 0  # packets a pending clip wanted but the byte cap took

    def __len__(self) -> int:
        with self._lock:
            return len(self._packets)

    @property
    def nbytes(self) -> int:
        with self._lock:
            return self._bytes

    @property
    def newest_pts(self) -> float | None:
        with self._lock:
            return self._packets[-1].pts if self._packets else None

    @property
    def span(self) -> float:
        with self._lock:
            return self._packets[-1].pts - self._packets[0].pts if len(self._packets) > 1 else 0.0

    def clear(self) -> None:
        """Forget everything (a new connection: the old packets belong to another stream)."""
        with self._lock:
            self._packets.clear()
            self._bytes = 0

    def hold(self, t: float) -> None:
        with self._lock:
            self._holds.append(t)

    def release(self, t: float) -> None:
        with self._lock:
            if t in self._holds:
                self._holds.remove(t)

    def add(self, packet: Packet) -> None:
        with self._lock:
            if not self._packets and not packet.keyframe:
                return  # a buffer that does not start on a keyframe could never be played
            self._packets.append(packet)
            self._bytes += len(packet.data)
            keep_from = packet.pts - self.seconds
            if self._holds:
                keep_from = min(keep_from, min(self._holds))
            self._evict_before(keep_from)
            while self._bytes > self.max_bytes and len(self._packets) > 1:
                # Drop a whole GOP from the head, so the buffer still starts on a keyframe.
                if self._holds and self._packets[0].pts >= min(self._holds):
                    self.evicted_held += 1
                self._pop_gop()

    def _evict_before(self, t: float) -> None:
        # Find the last keyframe at or before t; everything before it can go.
        cut = 0
        for i, p in enumerate(self._packets):
            if p.pts > t:
                break
            if p.keyframe:
                cut = i
        for _ in range(cut):
            self._bytes -= len(self._packets.popleft().data)

    def _pop_gop(self) -> None:
        self._bytes -= len(self._packets.popleft().data)
        while self._packets and not self._packets[0].keyframe:
            self._bytes -= len(self._packets.popleft().data)

    def window(self, start: float, end: float) -> list[Packet]:
        """Packets from the last keyframe at or before `start` up to `end` (inclusive)."""
        with self._lock:
            packets = list(self._packets)
        first = 0
        for i, p in enumerate(packets):
            if p.pts > start:
                break
            if p.keyframe:
                first = i
        return [p for p in packets[first:] if p.pts <= end]


@dataclass(frozen=True, slots=True)
class ClipFile:
    path: Path
    sha256: str
    size: int
    start_pts: float  # pts of the clip's first (key)frame
    duration: float  # seconds, first frame to end of last frame
    frames: int
    media_type: str = "video/mp4"


@dataclass
class ClipTicket:
    """A clip some events are waiting for; `clip` is set once it is written (None if it failed)."""

    start: float
    end: float
    requested: int = 1
    clip: ClipFile | None = None
    error: str | None = None
    done: bool = False
    events: list[float] = field(default_factory=list)


def _frame_period(packets: list[Packet]) -> float:
    diffs = sorted(b.pts - a.pts for a, b in zip(packets, packets[1:], strict=False) if b.pts > a.pts)
    return diffs[len(diffs) // 2] if diffs else 0.04


def write_mp4(packets: list[Packet], path: Path, rotation: float = 0.0) -> ClipFile:
    """Remux Annex B access units into an MP4 with the moov atom first (`+faststart`).

    The codec parameters come from the first keyframe's in-band SPS/PPS, read by FFmpeg's H.264
    parser; no encoder or decoder is involved. `rotation` (degrees, the source's display matrix
    convention) is written as the clip's display matrix, so players show it upright. Written to a
    temp name, then renamed.
    """
    import av

    if not packets or not packets[0].keyframe:
        raise ValueError("a clip must start on a keyframe")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.part")
    with av.open(io.BytesIO(packets[0].data), format="h264") as probe:
        template = probe.streams.video[0]
        if not template.codec_context.extradata:
            raise ValueError("the first keyframe carries no SPS/PPS")
        with av.open(str(tmp), "w", format="mp4", options={"movflags": "+faststart"}) as out:
            stream = out.add_stream_from_template(template)
            stream.time_base = TIME_BASE
            if rotation:
                stream.set_display_rotation(rotation)
            t0 = min(p.decode_time for p in packets)
            period = _frame_period(packets)
            last_pts = 0
            for p in packets:
                pkt = av.Packet(p.data)
                pkt.pts = round((p.pts - t0) / TIME_BASE)
                pkt.dts = round((p.decode_time - t0) / TIME_BASE)
                pkt.duration = round(period / TIME_BASE)
                pkt.time_base = TIME_BASE
                pkt.is_keyframe = p.keyframe
                pkt.stream = stream
                last_pts = max(last_pts, pkt.pts)
                out.mux(pkt)
    digest = hashlib.sha256()
    size = 0
    with open(tmp, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    os.replace(tmp, path)
    duration = (max(p.pts for p in packets) - packets[0].pts) + period
    return ClipFile(path, digest.hexdigest(), size, packets[0].pts, duration, len(packets))


class ClipRecorder:
    """One camera's ring buffer and the clips cut from it.

    `request(t)` asks for [t - pre_s, t + post_s]; if a clip not yet written overlaps that window,
    it is stretched to cover both (up to `max_clip_s`) and the same ticket is returned, so
    overlapping events share one file. `poll()` writes the clips whose footage is complete (the
    newest packet is past their end) and returns them; `poll(force=True)` writes whatever is there
    (end of a file, shutdown). `request` and `poll` may run on different threads (the live node
    asks on the camera thread, at the frame, and writes on its evidence worker).
    """

    def __init__(
        self,
        clip_dir: Path,
        *,
        pre_s: float = 5.0,
        post_s: float = 5.0,
        max_bytes: int = 64 * 1024 * 1024,
        max_clip_s: float = 60.0,
        name: str = "clip",
    ) -> None:
        if pre_s < 0 or post_s < 0 or max_clip_s <= pre_s + post_s:
            raise ValueError("need pre_s, post_s >= 0 and max_clip_s > pre_s + post_s")
        self.clip_dir = Path(clip_dir)
        self.pre_s = pre_s
        self.post_s = post_s
        self.max_clip_s = max_clip_s
        self.name = name
        self.ring = PacketRing(max(pre_s, 0.5), max_bytes)
        self.rotation = 0.0  # display rotation of the source (files from phones), set by the caller
        self._pending: list[ClipTicket] = []
        self._lock = threading.Lock()
        self.written = 0

    def add(self, packet: Packet) -> None:
        self.ring.add(packet)

    def add_all(self, packets: Iterable[Packet]) -> None:
        for p in packets:
            self.ring.add(p)

    def reset(self) -> None:
        """A new stream (reconnect): older packets cannot be joined to newer ones."""
        self.ring.clear()

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._pending)

    def request(self, t: float) -> ClipTicket:
        start, end = t - self.pre_s, t + self.post_s
        with self._lock:
            for ticket in self._pending:
                if start <= ticket.end and end >= ticket.start and max(end, ticket.end) - ticket.start <= self.max_clip_s:
                    ticket.end = max(ticket.end, end)
                    ticket.requested += 1
                    ticket.events.append(t)
                    return ticket
            ticket = ClipTicket(start, end, events=[t])
            self._pending.append(ticket)
            # Under the lock: a poll on another thread (the node's evidence worker) must not
            # write and release this ticket before its hold is in place, or the hold would stay.
            self.ring.hold(start)
        return ticket

    def pending_tickets(self) -> list[ClipTicket]:
        """The clips not written yet (what a stream that ends now leaves waiting)."""
        with self._lock:
            return list(self._pending)

    def poll(self, force: bool = False, only: Iterable[ClipTicket] | None = None) -> list[ClipTicket]:
        """Write the clips whose footage is in; `force`: all pending ones now, or with `only` just
        those of them (the ones pending when a stream ended, not those asked for since)."""
        newest = self.ring.newest_pts
        forced = None if only is None else {id(t) for t in only}
        with self._lock:
            due = [
                t for t in self._pending
                if (force and (forced is None or id(t) in forced)) or (newest is not None and newest >= t.end)
            ]
            self._pending = [t for t in self._pending if t not in due]
        for ticket in due:
            self._write(ticket)
            self.ring.release(ticket.start)
        return due

    def _write(self, ticket: ClipTicket) -> None:
        packets = self.ring.window(ticket.start, ticket.end)
        ticket.done = True
        if not packets:
            ticket.error = "no footage in the buffer"
            log.warning("clip %s: no footage for [%.2f, %.2f]", self.name, ticket.start, ticket.end)
            return
        tmp_name = f"{self.name}-{packets[0].pts:.3f}.mp4"
        try:
            clip = write_mp4(packets, self.clip_dir / tmp_name, self.rotation)
        except Exception as exc:  # a clip that cannot be written must not take the camera down
            ticket.error = f"clip not written: {exc}"
            log.exception("clip %s: cannot write [%.2f, %.2f]", self.name, ticket.start, ticket.end)
            return
        # Content-addressed name: the same footage is one file, whatever events refer to it.
        final = clip.path.with_name(f"{clip.sha256}.mp4")
        os.replace(clip.path, final)
        ticket.clip = ClipFile(final, clip.sha256, clip.size, clip.start_pts, clip.duration, clip.frames)
        self.written += 1
        if packets[0].pts > ticket.start + 1e-6:
            log.warning(
                "clip %s: starts %.2f s later than asked (buffer held less)", self.name, packets[0].pts - ticket.start
            )
