"""`edge analyze --debug-video/--trace` on the real Hanoi footage: the debug MP4 decodes with the
analysed frame count and plays in a browser (H.264, yuv420p, moov before mdat), the scene is drawn
where the config puts it, the trace has one record per analysed frame with the signal reading the
labels say, and the events are byte for byte the same with and without the debug output."""

from __future__ import annotations

import csv
import json
import struct
from datetime import UTC, datetime
from pathlib import Path

import av
import numpy as np
import pytest
import yaml

from edge.analyze import analyze_video, make_detector
from edge.config import DetectorConfig, load_camera_config
from edge.data import video_path
from edge.debug_video import LINE_COLOR, ZONE_COLORS

HERE = Path(__file__).parent
ROOT = HERE.parent.parent
LABELS = yaml.safe_load((HERE / "labels" / "hanoi_lythuongkiet_hangbai_intersection_trafficlight.yaml").read_text())
CONFIG = ROOT / "configs" / "cameras" / "hanoi_lythuongkiet_hangbai_intersection_trafficlight.yaml"
FPS = 6.017  # labels count decoded frames: t = frame / FPS
START = datetime(2026, 1, 1, 1, 0, tzinfo=UTC)  # the clip has no creation_time tag


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The same clip analysed twice, once plain and once with a debug video and two traces."""
    root = tmp_path_factory.mktemp("debug")
    camera = load_camera_config(CONFIG)
    detector = make_detector(DetectorConfig())
    video = video_path(LABELS["video"])
    plain = analyze_video(video, camera, root / "plain", detector=detector, start_time=START)
    debug = analyze_video(
        video, camera, root / "debug", detector=detector, start_time=START,
        debug_video=root / "debug.mp4", trace=[root / "trace.jsonl", root / "trace.csv"],
    )
    return root, plain, debug


def test_events_identical_with_and_without_debug_output(runs):
    root, plain, debug = runs
    a = (root / "plain" / "events.jsonl").read_bytes()
    b = (root / "debug" / "events.jsonl").read_bytes()
    assert plain.events == debug.events > 0
    assert a == b
    assert plain.frames == debug.frames


def _top_level_atoms(data: bytes) -> list[str]:
    atoms, pos = [], 0
    while pos + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[pos : pos + 8])
        if size == 1:
            size = struct.unpack(">Q", data[pos + 8 : pos + 16])[0]
        atoms.append(kind.decode("latin-1"))
        if size < 8:
            break
        pos += size
    return atoms


def _decoded(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        assert stream.codec_context.name == "h264"
        assert stream.codec_context.pix_fmt == "yuv420p"
        return [f.to_ndarray(format="bgr24") for f in c.decode(stream)]


def test_debug_video_plays_in_a_browser_with_every_analysed_frame(runs):
    root, _, debug = runs
    path = root / "debug.mp4"
    atoms = _top_level_atoms(path.read_bytes())
    assert "moov" in atoms and "mdat" in atoms and atoms.index("moov") < atoms.index("mdat"), atoms  # +faststart
    frames = _decoded(path)
    assert len(frames) == debug.frames == 383
    assert frames[0].shape == (480, 640, 3)


def _line_points(a, b, n=40) -> list[tuple[int, int]]:
    return [(round(a[0] + (b[0] - a[0]) * k / n), round(a[1] + (b[1] - a[1]) * k / n)) for k in range(2, n - 1)]


def _share_near(frames: list[np.ndarray], points, color, tol=60) -> float:
    """Share of (frame, point) samples whose 3x3 median is within `tol` of `color` on every channel."""
    hits = total = 0
    for img in frames:
        for x, y in points:
            patch = img[max(0, y - 1) : y + 2, max(0, x - 1) : x + 2].reshape(-1, 3)
            med = np.median(patch, axis=0)
            hits += bool(np.all(np.abs(med - np.array(color)) <= tol))
            total += 1
    return hits / total


def test_scene_is_drawn_where_the_config_puts_it(runs):
    root, _, _ = runs
    frames = _decoded(root / "debug.mp4")
    picked = [frames[k] for k in (10, 100, 200, 300, 370)]
    cam = load_camera_config(CONFIG)  # reference size = frame size (640x480)
    line = next(x for x in cam.scene.lines if x.id == "stop-line").points
    on_line = _line_points(line[0], line[1])
    zone = next(z for z in cam.scene.zones if z.id == "intersection-box").polygon
    top_edge = _line_points(zone[0], zone[1])  # the box's far edge, (120, 200) - (500, 200)
    # Vehicles' boxes and labels cover some of it; most of the drawing shows.
    assert _share_near(picked, on_line, LINE_COLOR) > 0.6
    assert _share_near(picked, top_edge, ZONE_COLORS["no_stopping"]) > 0.6
    # The same pixels of the source video are not those colours: the drawing put them there.
    with av.open(str(video_path(LABELS["video"]))) as c:
        raw = [f.to_ndarray(format="bgr24") for _, f in zip(range(20), c.decode(video=0), strict=False)]
    assert _share_near(raw[10:11], on_line, LINE_COLOR) < 0.1
    assert _share_near(raw[10:11], top_edge, ZONE_COLORS["no_stopping"]) < 0.1


def labelled_state(frame: int) -> str:
    for span in LABELS["signal"]:
        if span["frames"][0] <= frame <= span["frames"][1]:
            return span["state"]
    raise AssertionError(frame)


def test_trace_has_one_record_per_frame_with_the_labelled_signal(runs):
    root, _, debug = runs
    records = [json.loads(line) for line in (root / "trace.jsonl").read_text().splitlines()]
    assert len(records) == debug.frames
    ts = [r["t"] for r in records]
    assert ts == sorted(ts) and len(set(ts)) == len(ts)
    rules = {s["rule"] for s in records[0]["rules"]}
    assert rules == {"illegal_stopping", "red_light", "stop_line"}
    by_t = np.array(ts)
    for frame in (40, 120, 200, 240, 290, 340, 380):  # well inside the labelled phases
        r = records[int(np.argmin(np.abs(by_t - frame / FPS)))]
        head = r["signals"]["head-right"]
        assert head["state"] == labelled_state(frame), (frame, r["t"], head)
        assert set(head["lit"]) == {"red", "yellow", "green"}
        lit = head["lit"]
        assert max(lit, key=lit.get) == head["state"]
    # Rule states follow the scene: some vehicle is on the far side of the stop line while red.
    red = [r for r in records if r["signals"]["head-right"]["state"] == "red"]
    assert any(s["side"] == 1 for r in red for st in r["rules"] if st["rule"] == "red_light" for s in st["sides"])
    # Events in the trace are the analysis's own (the decision frames).
    assert sum(len(r["events"]) for r in records) == debug.events
    with open(root / "trace.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == debug.frames
    assert [row["head-right.state"] for row in rows] == [r["signals"]["head-right"]["state"] for r in records]
    assert float(rows[150]["head-right.lit.red"]) == records[150]["signals"]["head-right"]["lit"]["red"]


def test_cli_writes_debug_video_and_traces(tmp_path):
    """`python -m edge analyze ... --debug-video --trace` (a short clip: the littering demo)."""
    from edge.__main__ import main

    config = ROOT / "configs" / "cameras" / "indoor_bottle_drop_littering_demo.yaml"
    rc = main([
        "analyze", "indoor_bottle_drop_littering_demo.mp4", "--config", str(config), "--out", str(tmp_path / "out"),
        "--start-time", "2026-01-01T08:00:00+07:00", "--debug-video", str(tmp_path / "d.mp4"),
        "--trace", str(tmp_path / "t.jsonl"), "--trace", str(tmp_path / "t.csv"),
    ])
    assert rc == 0
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert len(_decoded(tmp_path / "d.mp4")) == summary["frames"] > 0
    records = [json.loads(x) for x in (tmp_path / "t.jsonl").read_text().splitlines()]
    assert len(records) == summary["frames"]
    assert {s["rule"] for s in records[0]["rules"]} == {"littering"}
    assert records[0]["signals"] == {}
    with open(tmp_path / "t.csv", newline="") as f:
        assert len(list(csv.DictReader(f))) == summary["frames"]
