"""`edge snapshot` and `edge draw` on the real sample videos and camera configs: the written pictures
are decoded and compared, pixel by pixel, with frames decoded as the analysis decodes them and with
where the scene's geometry must be drawn."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.config import CameraConfig, load_camera_config
from edge.data import video_path
from edge.geometry import DirectedLine, scale_points
from edge.scene_drawing import (
    FORWARD_COLOR,
    LAMP_COLORS,
    LINE_COLOR,
    ZONE_ALPHA,
    ZONE_COLORS,
    draw_scene,
    forward_arrow,
)
from edge.sources import VideoFileSource

REPO = Path(__file__).resolve().parents[2]
CAMERAS = REPO / "configs" / "cameras"
HANOI = "hanoi_lythuongkiet_hangbai_intersection_trafficlight"
PARKING = "vn_paved_parking_area_motorbike"  # stored 1280x720 with a -90 degree display rotation
pytestmark = pytest.mark.timeout(120)


def edge(*args: str) -> subprocess.CompletedProcess:
    r = subprocess.run([sys.executable, "-m", "edge", "--log-level", "WARNING", *args], cwd=REPO, capture_output=True,
                       text=True, timeout=100)
    assert "Traceback" not in r.stderr, r.stderr
    return r


def frame_at(name: str, index: int) -> tuple[np.ndarray, float]:
    """Frame `index` of a sample video, decoded by the analysis' own file source."""
    for i, frame in enumerate(VideoFileSource(video_path(name)).frames()):
        if i == index:
            return frame.image, frame.pts
    raise AssertionError(index)


# --- snapshot -------------------------------------------------------------------------------


def test_snapshot_is_the_analysed_frame_upright(tmp_path):
    r = edge("snapshot", f"{PARKING}.mp4", "--out", str(tmp_path / "ref.png"), "--json")
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    assert info == {"path": str(tmp_path / "ref.png"), "width": 720, "height": 1280,
                    "source": str(video_path(f"{PARKING}.mp4")), "pts": 0.0}
    written = cv2.imread(str(tmp_path / "ref.png"))
    expected, _ = frame_at(f"{PARKING}.mp4", 0)
    assert written.shape == (1280, 720, 3)  # upright, as the scene (reference_size 720x1280) is drawn
    assert np.array_equal(written, expected)  # PNG: the very pixels the analysis gets
    cam = load_camera_config(CAMERAS / f"{PARKING}.yaml")
    assert [info["width"], info["height"]] == list(cam.scene.reference_size)


def test_snapshot_at_a_time_as_jpeg(tmp_path):
    out = tmp_path / "ref.jpg"
    r = edge("snapshot", f"{HANOI}.mp4", "--out", str(out), "--at", "3")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(f"{out}: 640x480 (scene.reference_size: [640, 480], scene.reference_image: {out.name}) from ")
    # ~6 fps: the first frame at or after 3 s is frame 19 (pts 3.166)
    expected, pts = frame_at(f"{HANOI}.mp4", 19)
    assert f" at {pts:.3f} s" in r.stdout and 3.0 <= pts < 3.2
    written = cv2.imread(str(out))
    assert written.shape == expected.shape
    diff = np.abs(written.astype(np.int16) - expected.astype(np.int16))
    assert diff.mean() < 2.5 and np.percentile(diff, 99) < 20  # JPEG at quality 95 of that same frame
    other, _ = frame_at(f"{HANOI}.mp4", 0)
    assert np.abs(written.astype(np.int16) - other.astype(np.int16)).mean() > diff.mean() + 1  # not just any frame


def test_snapshot_errors_are_clear(tmp_path):
    r = edge("snapshot", "no_such_video.mp4", "--out", str(tmp_path / "x.jpg"))
    assert r.returncode == 2 and "no_such_video.mp4" in r.stderr and "no such file" in r.stderr
    r = edge("snapshot", f"{HANOI}.mp4", "--out", str(tmp_path / "x.jpg"), "--at", "999")
    assert r.returncode == 2 and "the video ends at 63." in r.stderr and "--at 999" in r.stderr
    r = edge("snapshot", f"{HANOI}.mp4", "--out", str(tmp_path / "x.txt"))
    assert r.returncode == 2 and "cannot write" in r.stderr
    assert not list(tmp_path.iterdir())


@pytest.mark.integration
def test_snapshot_of_an_rtsp_camera(tmp_path):
    from pipelines.rtsp_server import RtspTestServer

    with RtspTestServer({"cam1": f"{HANOI}.mp4"}) as srv:
        r = edge("snapshot", srv.url("cam1"), "--out", str(tmp_path / "cam.jpg"), "--json", "--timeout", "20")
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    assert (info["width"], info["height"], info["source"]) == (640, 480, srv.url("cam1"))
    assert cv2.imread(str(tmp_path / "cam.jpg")).shape == (480, 640, 3)


def test_snapshot_of_an_unreachable_camera_gives_up(tmp_path):
    r = edge("snapshot", "rtsp://127.0.0.1:9/none", "--out", str(tmp_path / "x.jpg"), "--timeout", "2")
    assert r.returncode == 2 and "rtsp://127.0.0.1:9/none: no frame 0 s into the stream within 2 s" in r.stderr


# --- draw -----------------------------------------------------------------------------------


def blended(frame: np.ndarray, color: tuple[int, int, int]) -> np.ndarray:
    return frame.astype(np.float32) * (1 - ZONE_ALPHA) + np.array(color, np.float32) * ZONE_ALPHA


def zone_mask(cam: CameraConfig, size: tuple[int, int], index: int) -> np.ndarray:
    """Pixels well inside zone `index` and in no other zone."""
    w, h = size
    masks = []
    for z in cam.scene.zones:
        m = np.zeros((h, w), np.uint8)
        pts = scale_points(np.asarray(z.polygon, np.float32), cam.scene.reference_size, size)
        cv2.fillPoly(m, [np.round(pts).astype(np.int32)], 1)
        masks.append(m)
    mine = cv2.erode(masks[index], np.ones((9, 9), np.uint8))
    others = sum((m for i, m in enumerate(masks) if i != index), np.zeros((h, w), np.uint8))
    for ln in cam.scene.lines:  # the lines and their arrows are drawn over zones
        a, b = np.round(scale_points(np.asarray(ln.points, np.float32), cam.scene.reference_size, size)).astype(int)
        cv2.line(others, tuple(map(int, a)), tuple(map(int, b)), 1, 25)
    step_x, step_y = w / cam.scene.reference_size[0] * 50, h / cam.scene.reference_size[1] * 50
    for k in range(1, 40):  # grid lines
        others[:, min(w - 1, round(k * step_x))] = 1
        others[min(h - 1, round(k * step_y)), :] = 1
    return (mine > 0) & (others == 0)


def check_drawing(drawn: np.ndarray, frame: np.ndarray, cam: CameraConfig) -> None:
    h, w = frame.shape[:2]
    ref = cam.scene.reference_size
    # Zones: translucent in their kind's colour (most of the inside: names and grid lines cover some)
    for i, zone in enumerate(cam.scene.zones):
        inside = zone_mask(cam, (w, h), i)
        assert inside.sum() > 500, zone.id
        close = np.abs(drawn[inside].astype(np.float32) - blended(frame, ZONE_COLORS[zone.kind])[inside]).max(axis=1) <= 2
        assert close.mean() > 0.8, (zone.id, close.mean())
        far = np.abs(drawn[inside].astype(np.float32) - frame[inside]).max(axis=1)
        assert np.median(far) > 10, zone.id  # visibly tinted
    # Lamp boxes: outlined in their lamp's colour
    for head in cam.scene.signals:
        for lamp in head.lamps:
            (x1, y1), (x2, y2) = np.round(scale_points(np.asarray([lamp.box[:2], lamp.box[2:]], np.float32), ref, (w, h)))
            x1, y1, x2, y2 = int(x1), int(y1), int(x2), int(y2)
            edge_px = drawn[y1 + 2 : y2 - 1, x1]
            assert (edge_px == LAMP_COLORS[lamp.color]).all(), (head.id, lamp.color)
            inner = (drawn[y1 + 2 : y2 - 1, x1 + 3 : x2 - 2] == frame[y1 + 2 : y2 - 1, x1 + 3 : x2 - 2]).all(axis=2)
            assert inner.mean() > 0.85, (head.id, lamp.color)  # the lamp itself stays visible (a grid line may cross)
    # Lines: the line's colour along it; the forward arrow's on its forward side
    for ln in cam.scene.lines:
        a, b = scale_points(np.asarray(ln.points, np.float32), ref, (w, h))
        for t in (0.2, 0.3, 0.7):
            x, y = np.round(a + (b - a) * t).astype(int)
            assert (drawn[y, x] == LINE_COLOR).all(), (ln.id, t)
        ys, xs = np.nonzero((drawn == FORWARD_COLOR).all(axis=2))
        tail, tip = forward_arrow(a, b, (w, h))
        near = np.hypot(xs - (a[0] + b[0]) / 2, ys - (a[1] + b[1]) / 2) < 4 * np.linalg.norm(tip - tail)
        side = DirectedLine(ln.id, a, b).side(np.stack([xs[near], ys[near]], axis=1).astype(np.float32))
        assert (side > 0).sum() > 150, ln.id  # the arrow head and the word "forward"
        assert (side > 0).sum() > 3 * (side < 0).sum(), ln.id
        assert (side < 0).sum() > 0, ln.id  # its tail starts on the other side: it crosses the line


def test_draw_the_hanoi_scene_on_its_own_frame(tmp_path):
    cam_path = CAMERAS / f"{HANOI}.yaml"
    r = edge("draw", str(cam_path), "--out", str(tmp_path / "scene.png"))
    assert r.returncode == 0, r.stderr
    assert r.stdout == f"{tmp_path / 'scene.png'}: the scene of hanoi-lythuongkiet-hangbai on a 640x480 frame\n"
    drawn = cv2.imread(str(tmp_path / "scene.png"))
    frame, _ = frame_at(f"{HANOI}.mp4", 0)  # without --frame: the camera source's first frame
    cam = load_camera_config(cam_path)
    assert np.array_equal(drawn, draw_scene(frame, cam))
    check_drawing(drawn, frame, cam)
    # The grid, every 50 reference px: a grid column is touched, a pixel between grid lines away from
    # everything else is the frame's own
    assert np.abs(drawn[60:180, 100].astype(int) - frame[60:180, 100]).max(axis=1).min() > 0
    assert (drawn[105:145, 125] == frame[105:145, 125]).all()


def test_draw_on_a_given_frame_scaled_from_the_reference(tmp_path):
    cam_path = CAMERAS / f"{HANOI}.yaml"
    frame, _ = frame_at(f"{HANOI}.mp4", 30)
    big = cv2.resize(frame, (1280, 960), interpolation=cv2.INTER_LINEAR)  # a camera that now sends 2x
    cv2.imwrite(str(tmp_path / "ref.png"), big)
    r = edge("draw", str(cam_path), "--frame", str(tmp_path / "ref.png"), "--out", str(tmp_path / "scene.png"))
    assert r.returncode == 0, r.stderr
    assert "1280x960 frame, scaled from the reference 640x480" in r.stdout
    drawn = cv2.imread(str(tmp_path / "scene.png"))
    check_drawing(drawn, big, load_camera_config(cam_path))


def test_forward_marker_follows_the_line_direction():
    """The same line drawn b -> a: the marker moves to the other side (the check above can fail)."""
    cam = load_camera_config(CAMERAS / f"{HANOI}.yaml")
    frame, _ = frame_at(f"{HANOI}.mp4", 0)
    scene = cam.scene.model_copy(update={"lines": [ln.model_copy(update={"points": ln.points[::-1]})
                                                   for ln in cam.scene.lines]})
    flipped = cam.model_copy(update={"scene": scene})
    check_drawing(draw_scene(frame, flipped), frame, flipped)
    with pytest.raises(AssertionError):  # drawn for a -> b but read as b -> a: the forward side is wrong
        check_drawing(draw_scene(frame, cam), frame, flipped)


def test_draw_lanes_calibration_and_a_rotated_frame(tmp_path):
    # The parking camera (a phone clip drawn on its upright picture) with a lane and a calibration
    # added: the drawing is made on the frame the analysis sees.
    cam = load_camera_config(CAMERAS / f"{PARKING}.yaml")
    data = cam.model_dump(mode="json")
    data["scene"]["lanes"] = [{"id": "walk", "polygon": [[20, 500], [540, 520], [600, 1200], [20, 1200]],
                               "direction": [[300, 1150], [300, 560]]}]
    data["scene"]["calibration"] = {"image_points": [[40, 520], [540, 530], [600, 1200], [30, 1200]],
                                    "ground_points_m": [[0, 0], [6, 0], [6, 12], [0, 12]]}
    path = tmp_path / "cam.yaml"
    import yaml

    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    r = edge("draw", str(path), "--out", str(tmp_path / "scene.png"))
    assert r.returncode == 0, r.stderr
    drawn = cv2.imread(str(tmp_path / "scene.png"))
    assert drawn.shape == (1280, 720, 3)
    frame, _ = frame_at(f"{PARKING}.mp4", 0)
    cam2 = load_camera_config(path)
    assert np.array_equal(drawn, draw_scene(frame, cam2))
    from edge.scene_drawing import CALIBRATION_COLOR, LANE_COLOR

    for x, y in cam2.scene.calibration.image_points:  # numbered dots
        assert (drawn[int(y), int(x)] == CALIBRATION_COLOR).all()
    x = 300
    assert (drawn[700:1000, x] == LANE_COLOR).all()  # the lane's direction arrow's shaft


def test_draw_errors(tmp_path):
    cam = CAMERAS / f"{HANOI}.yaml"
    r = edge("draw", str(cam), "--frame", str(tmp_path / "missing.jpg"), "--out", str(tmp_path / "x.png"))
    assert r.returncode == 2 and "missing.jpg: not a picture that can be read" in r.stderr
    text = cam.read_text(encoding="utf-8").replace(f"  source: {HANOI}.mp4\n", "")
    (tmp_path / "nosource.yaml").write_text(text, encoding="utf-8")
    r = edge("draw", str(tmp_path / "nosource.yaml"), "--out", str(tmp_path / "x.png"))
    assert r.returncode == 2 and "camera.source is not set: give a picture with --frame" in r.stderr
