"""The clip buffer: bounds by time and bytes, keyframe alignment, shared clips, MP4 remux."""

from __future__ import annotations

import subprocess
from pathlib import Path

import av
import pytest

from edge.data import video_path
from edge.sources import VideoFileSource
from pipelines.clips import ClipRecorder, Packet, PacketRing, write_mp4

HANOI = "hanoi_lythuongkiet_hangbai_intersection_trafficlight.mp4"  # H.264 640x480, ~6 fps, 63.8 s
HELMET = "motorcyclist_without_helmet.mp4"  # H.264 1054x586, 30 fps, 3.6 s


def synthetic(seconds: float, fps: float = 10, gop: int = 10, size: int = 1000, t0: float = 0.0) -> list[Packet]:
    n = round(seconds * fps)
    return [Packet(b"\0" * size, t0 + i / fps, None, i % gop == 0) for i in range(n)]


def test_ring_keeps_the_window_from_a_keyframe() -> None:
    ring = PacketRing(seconds=3.0, max_bytes=10**9)
    for p in synthetic(20):  # 10 fps, keyframe every 1 s
        ring.add(p)
    packets = ring.window(-1e9, 1e9)
    assert packets[0].keyframe
    newest = packets[-1].pts
    assert packets[0].pts <= newest - 3.0  # at least the asked time...
    assert packets[0].pts > newest - 3.0 - 1.0  # ...and less than one GOP more
    assert ring.nbytes == 1000 * len(packets)


def test_ring_byte_cap_wins_and_keeps_keyframe_start() -> None:
    ring = PacketRing(seconds=30.0, max_bytes=25_000)
    for p in synthetic(20):
        ring.add(p)
    assert ring.nbytes <= 25_000
    assert ring.window(-1e9, 1e9)[0].keyframe


def test_ring_ignores_packets_until_the_first_keyframe() -> None:
    ring = PacketRing(seconds=3.0, max_bytes=10**9)
    for p in synthetic(3, t0=0.0)[3:]:  # joined mid-GOP
        ring.add(p)
    assert ring.window(-1e9, 1e9)[0].pts == pytest.approx(1.0)


def test_hold_keeps_footage_for_a_pending_clip() -> None:
    ring = PacketRing(seconds=2.0, max_bytes=10**9)
    packets = synthetic(20)
    for p in packets[:50]:
        ring.add(p)
    ring.hold(3.0)
    for p in packets[50:]:
        ring.add(p)
    assert ring.window(3.0, 20.0)[0].pts == pytest.approx(3.0)
    ring.release(3.0)
    ring.add(Packet(b"\0" * 1000, 20.0, None, True))
    assert ring.window(-1e9, 1e9)[0].pts >= 18.0 - 1e-9


def test_overlapping_events_share_one_clip(tmp_path: Path) -> None:
    rec = ClipRecorder(tmp_path, pre_s=2, post_s=2)
    a = rec.request(10.0)
    b = rec.request(12.5)  # [10.5, 14.5] overlaps [8, 12]
    c = rec.request(30.0)
    assert a is b and a is not c
    assert (a.start, a.end, a.requested) == (8.0, 14.5, 2)
    assert rec.pending == 2


def test_clip_length_is_capped(tmp_path: Path) -> None:
    rec = ClipRecorder(tmp_path, pre_s=2, post_s=2, max_clip_s=10)
    first = rec.request(10.0)
    assert rec.request(13.0) is first  # [8, 15]
    assert rec.request(17.0) is not first  # would make it [8, 19]: longer than 10 s


def test_write_refuses_a_clip_without_a_keyframe_start(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="keyframe"):
        write_mp4([Packet(b"\0\0\0\1\x41", 0.0, None, False)], tmp_path / "x.mp4")


def _file_packets(name: str) -> list[Packet]:
    path = video_path(name)
    if not path.is_file():
        pytest.skip(f"sample video missing: {path}")
    packets: list[Packet] = []
    for _ in VideoFileSource(path, analysis_fps=1, on_packet=packets.append).frames():
        pass
    return packets


@pytest.mark.parametrize("name", [HANOI, HELMET])
def test_file_packets_remux_to_a_clip_that_matches_the_source(tmp_path: Path, name: str) -> None:
    packets = _file_packets(name)
    assert packets[0].keyframe and packets[0].data.startswith((b"\0\0\0\1", b"\0\0\1"))  # Annex B
    rec = ClipRecorder(tmp_path, pre_s=1.0, post_s=1.0, name="cam")
    middle = packets[len(packets) // 2].pts
    ticket = None
    for p in packets:
        rec.add(p)
        if ticket is None and p.pts >= middle:
            ticket = rec.request(p.pts)
        if ticket is not None and rec.poll():
            break
    assert ticket is not None and ticket.clip is not None, ticket.error if ticket else None
    clip = ticket.clip
    assert clip.path.name == f"{clip.sha256}.mp4" and clip.path.stat().st_size == clip.size
    with av.open(str(clip.path)) as c:
        stream = c.streams.video[0]
        frames = sum(1 for _ in c.decode(stream))
        ref = av.open(str(video_path(name)))
        w, h = ref.streams.video[0].codec_context.width, ref.streams.video[0].codec_context.height
        ref.close()
        assert (stream.codec_context.width, stream.codec_context.height) == (w, h)
    assert frames == clip.frames  # every packet became a decodable frame: nothing re-encoded, nothing lost
    assert clip.start_pts <= middle - 1.0 + 1e-6 or clip.start_pts == packets[0].pts
    decode = subprocess.run(["ffmpeg", "-v", "error", "-i", str(clip.path), "-f", "null", "-"], capture_output=True, text=True)
    assert decode.returncode == 0 and not decode.stderr.strip(), decode.stderr


def test_force_writes_what_there_is_at_end_of_stream(tmp_path: Path) -> None:
    packets = _file_packets(HELMET)
    rec = ClipRecorder(tmp_path, pre_s=1.0, post_s=5.0)
    for p in packets:
        rec.add(p)
    ticket = rec.request(packets[-1].pts - 0.5)
    assert rec.poll() == []  # post-event footage not there yet
    (done,) = rec.poll(force=True)
    assert done is ticket and ticket.clip is not None and ticket.clip.duration > 1.0


def test_a_rotated_file_gives_a_clip_with_the_same_display_rotation(tmp_path: Path) -> None:
    path = video_path("vn_paved_parking_area_motorbike.mp4")  # phone footage stored sideways (-90)
    if not path.is_file():
        pytest.skip(f"sample video missing: {path}")
    rec = ClipRecorder(tmp_path, pre_s=1.0, post_s=1.0)
    src = VideoFileSource(path, analysis_fps=1, on_packet=rec.add)
    rec.rotation = src.rotation
    assert src.rotation == -90
    for frame in src.frames():
        if frame.pts >= 3:
            break
    src.stop()
    rec.request(1.5)
    (ticket,) = rec.poll(force=True)
    assert ticket.clip is not None
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "stream_side_data=rotation", "-of", "csv=p=0", str(ticket.clip.path)],
        capture_output=True, text=True, check=True,
    ).stdout
    assert "-90" in out, out


def test_a_forced_flush_writes_only_the_clips_pending_when_the_stream_ended(tmp_path: Path) -> None:
    """The live node flushes on its evidence worker, later than the camera asked: a clip asked for
    after the stream ended (an event of the next connection) must keep its full post-roll."""
    packets = _file_packets(HELMET)
    rec = ClipRecorder(tmp_path, pre_s=1.0, post_s=5.0)
    for p in packets:
        rec.add(p)
    ended = rec.request(packets[-1].pts - 0.5)
    at_end = rec.pending_tickets()
    later = rec.request(packets[-1].pts + 10.0)  # decided after the reconnect, before the flush ran
    (done,) = rec.poll(force=True, only=at_end)
    assert done is ended and ended.clip is not None
    assert not later.done and rec.pending_tickets() == [later]
