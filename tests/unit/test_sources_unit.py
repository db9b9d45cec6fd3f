"""Frame selection, file decoding and pipeline descriptions, on a real sample file (no network)."""

from __future__ import annotations

import math
import threading
from pathlib import Path

import numpy as np
import pytest

from edge.data import video_path
from edge.sources import (
    FrameSelector,
    RtspSource,
    SourceError,
    SourceOpenError,
    VideoFileSource,
    open_source,
    redact_url,
    yuv_to_bgr,
)
from pipelines.gst import APPSINK, PLATFORMS, rtsp_decode_pipeline

HANOI = "hanoi_lythuongkiet_hangbai_intersection_trafficlight.mp4"  # H.264 640x480, 384 frames, ~6 fps, 63.8 s
HELMET = "motorcyclist_without_helmet.mp4"  # H.264 1054x586 (odd stride), 108 frames at exactly 30 fps


def _need(name: str) -> Path:
    p = video_path(name)
    if not p.is_file():
        pytest.skip(f"sample video missing: {p} (set EDGE_DATA_DIR)")
    return p


# -- FrameSelector (pure) ---------------------------------------------------------------------


def test_selector_none_keeps_every_frame() -> None:
    sel = FrameSelector(None)
    assert all(sel.keep(t / 7) for t in range(50))


def test_selector_thirds_a_30fps_stream_exactly() -> None:
    sel = FrameSelector(10)
    kept = [k for k in range(90) if sel.keep(k / 30)]
    assert kept == list(range(0, 90, 3))  # float accumulation would skip k=9 (0.30000000000000004 > 0.3)


def test_selector_resumes_after_gap_without_burst() -> None:
    sel = FrameSelector(5)  # 0.2 s slots
    times = [0.0, 0.1, 0.2, 5.0, 5.1, 5.2, 5.3]
    assert [t for t in times if sel.keep(t)] == [0.0, 0.2, 5.0, 5.2]


def test_selector_restarts_when_time_goes_backwards() -> None:
    sel = FrameSelector(1)
    assert sel.keep(10.0) and not sel.keep(10.5)
    assert sel.keep(0.0)  # a new stream: new grid
    assert sel.next_due == pytest.approx(1.0)


def test_selector_tolerance_absorbs_live_jitter() -> None:
    jittered = [k / 6 + (-0.002 if k % 2 else 0.002) for k in range(60)]  # odd frames come a bit early
    strict, tolerant = FrameSelector(6), FrameSelector(6, tolerance_s=0.25 / 6)
    assert sum(map(tolerant.keep, jittered)) == 60
    assert sum(map(strict.keep, jittered)) < 45


@pytest.mark.parametrize("fps", [0, -1.0])
def test_selector_rejects_bad_fps(fps: float) -> None:
    with pytest.raises(ValueError):
        FrameSelector(fps)


# -- VideoFileSource on real files --------------------------------------------------------------


@pytest.mark.timeout(60)
def test_file_every_frame_and_at_analysis_fps() -> None:
    path = _need(HANOI)
    every = list(VideoFileSource(path, None).frames())
    assert len(every) == 384
    assert every[0].image.shape == (480, 640, 3) and every[0].image.dtype == np.uint8
    assert [f.index for f in every] == list(range(384))
    last_pts = every[-1].pts
    src = VideoFileSource(path, analysis_fps=2)
    two = list(src.frames())
    # One frame per 0.5 s slot from pts 0 up to the last frame: 64 s -> 128 frames.
    assert len(two) == math.floor(last_pts / 0.5) + 1 == 128
    gaps = np.diff([f.pts for f in two])
    assert gaps.min() >= 0.5 - 1 / 6 and gaps.max() <= 0.5 + 1 / 6
    h = src.health
    assert (h.state, h.frames_decoded, h.frames_delivered) == ("ended", 384, 128)


@pytest.mark.timeout(60)
def test_file_selection_is_deterministic() -> None:
    path = _need(HELMET)
    runs = [[(f.pts, f.index) for f in VideoFileSource(path, analysis_fps=10).frames()] for _ in range(2)]
    assert runs[0] == runs[1]
    assert len(runs[0]) == 36  # 108 frames at 30 fps -> every third
    assert [round(p * 30) for p, _ in runs[0]] == list(range(0, 108, 3))


@pytest.mark.timeout(60)
def test_file_images_identical_between_runs_and_odd_stride() -> None:
    path = _need(HELMET)
    a = [f.image for f in VideoFileSource(path, analysis_fps=5).frames()]
    b = [f.image for f in VideoFileSource(path, analysis_fps=5).frames()]
    assert a[0].shape == (586, 1054, 3)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))


@pytest.mark.timeout(60)
def test_file_loop_keeps_pts_increasing() -> None:
    src = VideoFileSource(_need(HELMET), None, loop=True)
    frames = []
    for f in src.frames():
        frames.append(f)
        if len(frames) == 250:
            src.stop()
    assert len(frames) == 250  # stop() ends the generator at the next frame
    pts = np.array([f.pts for f in frames])
    assert np.all(np.diff(pts) > 0)
    assert np.diff(pts)[107] == pytest.approx(1 / 30, abs=1e-6)  # the seam between passes
    assert src.health.state == "ended"


def test_stop_from_another_thread_ends_file_source() -> None:
    src = VideoFileSource(_need(HANOI), None, realtime=True)
    threading.Timer(0.5, src.stop).start()
    n = sum(1 for _ in src.frames())
    assert 1 <= n <= 10  # about 6 fps for 0.5 s


def test_missing_file_gives_clear_error(tmp_path: Path) -> None:
    missing = tmp_path / "no_such_camera.mp4"
    with pytest.raises(SourceOpenError, match="no_such_camera.mp4") as info:
        VideoFileSource(missing, 5)
    assert info.value.path == missing and "no such file" in str(info.value)


def test_unreadable_file_gives_clear_error(tmp_path: Path) -> None:
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"this is not a video" * 100)
    with pytest.raises(SourceOpenError, match="junk.mp4"):
        VideoFileSource(junk, 5)


def test_open_source_dispatch(tmp_path: Path) -> None:
    rtsp = open_source("rtsp://user:pw@10.0.0.7:554/stream1", 5, stall_timeout_s=2.0)
    assert isinstance(rtsp, RtspSource) and rtsp.stall_timeout_s == 2.0
    assert rtsp.health.state == "starting"
    _need(HANOI)
    assert isinstance(open_source(HANOI, 1), VideoFileSource)  # a bare name resolves under EDGE_DATA_DIR
    with pytest.raises(SourceOpenError):
        open_source(f"file://{tmp_path}/absent.mp4", 1)


def test_redact_url() -> None:
    assert redact_url("rtsp://admin:s3cr3t@10.0.0.7:554/x") == "rtsp://admin:***@10.0.0.7:554/x"
    assert redact_url("rtsp://10.0.0.7/x") == "rtsp://10.0.0.7/x"


# -- raw YUV -> BGR -------------------------------------------------------------------------------


def _i420(w: int, h: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return (
        rng.integers(16, 236, (h, w), dtype=np.uint8),
        rng.integers(16, 241, (h // 2, w // 2), dtype=np.uint8),
        rng.integers(16, 241, (h // 2, w // 2), dtype=np.uint8),
    )


def test_yuv_padded_strides_match_compact_layout() -> None:
    w, h = 18, 10  # GStreamer pads the 18-pixel rows to 20 and the 9-pixel chroma rows to 12
    y, u, v = _i420(w, h)
    compact = np.concatenate([y.ravel(), u.ravel(), v.ravel()]).tobytes()
    ref = yuv_to_bgr(compact, "I420", w, h, (w, w // 2, w // 2), (0, w * h, w * h + w * h // 4))
    sy, sc = 20, 12
    pad = np.zeros(sy * h + 2 * sc * (h // 2), np.uint8)
    pad[: sy * h].reshape(h, sy)[:, :w] = y
    pad[sy * h : sy * h + sc * h // 2].reshape(h // 2, sc)[:, : w // 2] = u
    pad[sy * h + sc * h // 2 :].reshape(h // 2, sc)[:, : w // 2] = v
    out = yuv_to_bgr(pad.tobytes(), "I420", w, h, (sy, sc, sc), (0, sy * h, sy * h + sc * h // 2))
    assert out.shape == (h, w, 3) and np.array_equal(out, ref)
    nv12 = np.concatenate([y.ravel(), np.stack([u, v], axis=-1).ravel()]).tobytes()
    assert np.array_equal(yuv_to_bgr(nv12, "NV12", w, h, (w, w), (0, w * h)), ref)


def test_yuv_full_range_is_expanded() -> None:
    w, h = 4, 2
    black = np.zeros(w * h * 3 // 2, np.uint8)
    black[w * h :] = 128
    assert yuv_to_bgr(black.tobytes(), "I420", w, h, (w, 2, 2), (0, 8, 10), full_range=True).max() == 0
    white = black.copy()
    white[: w * h] = 255
    assert yuv_to_bgr(white.tobytes(), "I420", w, h, (w, 2, 2), (0, 8, 10), full_range=True).min() >= 254


# -- pipeline descriptions ----------------------------------------------------------------------

URL = "rtsp://127.0.0.1:8554/cam1"


def test_cpu_pipeline_pulls_i420_without_bgr_conversion() -> None:
    p = rtsp_decode_pipeline(URL)
    assert p.startswith(
        f'rtspsrc location="{URL}" latency=200 protocols=tcp ! rtph264depay ! h264parse name=parse ! avdec_h264'
    )
    assert "video/x-raw,format=I420" in p and "BGR" not in p
    assert p.endswith(APPSINK) and APPSINK == "appsink name=sink sync=false max-buffers=2 drop=true emit-signals=false"
    assert "protocols=udp" in rtsp_decode_pipeline(URL, tcp=False)
    assert "latency=50" in rtsp_decode_pipeline(URL, latency_ms=50)
    assert "avdec_h264 max-threads=1 " in rtsp_decode_pipeline(URL, decoder_threads=1)


@pytest.mark.parametrize(
    ("platform", "chain"),
    [
        ("vaapi", "h264parse name=parse ! vah264dec ! video/x-raw,format=NV12 ! appsink"),
        ("vaapi-legacy", "h264parse name=parse ! vaapih264dec ! video/x-raw,format=NV12 ! appsink"),
        ("jetson", "h264parse name=parse ! nvv4l2decoder ! nvvidconv ! video/x-raw,format=I420 ! appsink"),
    ],
)
def test_hardware_pipelines(platform: str, chain: str) -> None:
    p = rtsp_decode_pipeline(URL, platform)
    assert chain in p and p.endswith(APPSINK) and "avdec_h264" not in p and "BGR" not in p


def test_unknown_platform_and_url_quoting() -> None:
    assert set(PLATFORMS) >= {"cpu", "vaapi", "jetson"}
    with pytest.raises(ValueError, match="tpu"):
        rtsp_decode_pipeline(URL, "tpu")
    with pytest.raises(ValueError):
        RtspSource(URL, platform="tpu")
    assert 'location="rtsp://h/a\\"b"' in rtsp_decode_pipeline('rtsp://h/a"b')


def test_missing_platform_plugin_is_a_clear_error() -> None:
    from pipelines.gst import gst_init

    Gst, _ = gst_init()
    if Gst.ElementFactory.find("nvv4l2decoder") is not None:
        pytest.skip("this machine has the Jetson decoder")
    src = RtspSource(URL, platform="jetson", on_health=lambda h: None)
    with pytest.raises(SourceError, match="nvv4l2decoder"):
        next(src.frames())
    assert src.health.state == "ended" and src.health.reconnects == 0


def test_cpu_pipeline_parses_with_gstreamer() -> None:
    from pipelines.gst import gst_init

    Gst, _ = gst_init()
    pipeline = Gst.parse_launch(rtsp_decode_pipeline('rtsp://u:p@127.0.0.1:1/a b"c'))
    sink = pipeline.get_by_name("sink")
    assert hasattr(sink, "try_pull_sample")  # GstApp imported
    assert sink.get_property("max-buffers") == 2 and sink.get_property("drop") is True
    src = next(e for e in pipeline.children if e.get_factory().get_name() == "rtspsrc")
    assert src.get_property("location") == 'rtsp://u:p@127.0.0.1:1/a b"c'
