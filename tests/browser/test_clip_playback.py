"""An event clip plays in a real browser: headless Debian Chromium, driven by chromedriver.

The clip is cut the way the edge cuts it (compressed packets of a sample file through the ring
buffer, remuxed, no encoder), served over HTTP, and opened in a <video> element that must play
and report the clip's duration. ffprobe must see H.264 in MP4 with the moov atom before mdat.
"""

from __future__ import annotations

import functools
import json
import shutil
import subprocess
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from edge.data import video_path
from edge.sources import VideoFileSource
from pipelines.clips import ClipFile, ClipRecorder
from tests.services import mp4_top_level_boxes

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
VIDEO = "hanoi_lythuongkiet_hangbai_intersection_trafficlight.mp4"  # H.264 640x480, ~6 fps, 63.8 s

pytestmark = pytest.mark.timeout(180)


def cut_clip(tmp: Path, at: float, pre: float, post: float) -> ClipFile:
    path = video_path(VIDEO)
    if not path.is_file():
        pytest.skip(f"sample video missing: {path}")
    rec = ClipRecorder(tmp / "clips", pre_s=pre, post_s=post, name="cam")
    src = VideoFileSource(path, analysis_fps=2, on_packet=rec.add)
    ticket = None
    for frame in src.frames():
        if ticket is None and frame.pts >= at:
            ticket = rec.request(frame.pts)
        if ticket is not None and rec.poll():
            break
    src.stop()
    assert ticket is not None and ticket.clip is not None, ticket
    return ticket.clip


def ffprobe(path: Path) -> dict:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_streams", "-show_format", "-of", "json", str(path)],
        check=True, capture_output=True, text=True,
    ).stdout
    return json.loads(out)




@pytest.fixture()
def clip(tmp_path: Path) -> ClipFile:
    return cut_clip(tmp_path, at=20.0, pre=5.0, post=5.0)


def test_clip_is_h264_mp4_faststart_covering_the_window(clip: ClipFile) -> None:
    info = ffprobe(clip.path)
    (stream,) = info["streams"]
    assert stream["codec_name"] == "h264"
    assert "mp4" in info["format"]["format_name"]
    boxes = mp4_top_level_boxes(clip.path.read_bytes())
    assert "moov" in boxes and "mdat" in boxes and boxes.index("moov") < boxes.index("mdat"), boxes
    # Starts on a keyframe at or before event - pre, ends at or after event + post.
    assert clip.start_pts <= 20.0 - 5.0 + 1e-3
    assert float(info["format"]["duration"]) >= 10.0 - 0.5
    assert abs(float(info["format"]["duration"]) - clip.duration) < 0.5
    # Every frame decodes: the remux kept the stream intact.
    decode = subprocess.run(["ffmpeg", "-v", "error", "-i", str(clip.path), "-f", "null", "-"], capture_output=True, text=True)
    assert decode.returncode == 0 and not decode.stderr.strip(), decode.stderr


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        pass


@pytest.fixture()
def browser(tmp_path: Path):
    if not Path(CHROMIUM).exists() or not Path(CHROMEDRIVER).exists():
        pytest.skip("Debian chromium / chromedriver not installed")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in (
        "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--autoplay-policy=no-user-gesture-required",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
    ):
        opts.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    try:
        yield driver
    finally:
        driver.quit()


def serve(folder: Path) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(folder)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


PLAY = """
const done = arguments[arguments.length - 1];
const v = document.getElementById('clip');
const report = (why) => done({why, duration: v.duration, currentTime: v.currentTime, width: v.videoWidth,
                              height: v.videoHeight, error: v.error ? v.error.code : null, paused: v.paused});
v.addEventListener('error', () => report('error'));
v.addEventListener('timeupdate', () => { if (v.currentTime > 1.0) report('played'); });
setTimeout(() => report('timeout'), 20000);
v.play().catch(e => done({why: 'play() refused: ' + e}));
"""


def test_clip_plays_in_headless_chromium(clip: ClipFile, browser, tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    shutil.copyfile(clip.path, site / "clip.mp4")
    (site / "index.html").write_text(
        '<!doctype html><video id="clip" src="clip.mp4" muted playsinline preload="auto"></video>', encoding="utf-8"
    )
    server = serve(site)
    try:
        browser.set_script_timeout(30)
        browser.get(f"http://127.0.0.1:{server.server_port}/index.html")
        result = browser.execute_async_script(PLAY)
    finally:
        server.shutdown()
    assert result["why"] == "played", result
    assert result["error"] is None
    assert (result["width"], result["height"]) == (640, 480)
    assert result["duration"] == pytest.approx(clip.duration, abs=0.25)
    assert result["duration"] >= 10.0 - 0.5
