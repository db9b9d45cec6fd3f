"""`check-config` finds what a run would fail on: scene geometry off the reference snapshot, missing
model and video files, malformed camera URLs, a camera config given as a node config, key typos."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from contract.configfile import ConfigError, valid_keys
from edge.__main__ import main
from edge.config import CameraConfig, NodeConfig, load_camera_config, source_problem

REPO = Path(__file__).resolve().parents[2]
CAMERAS = REPO / "configs" / "cameras"
CAMERA = """
camera: {id: cam-1, analysis_fps: 5, source: vn_paved_parking_area_motorbike.mp4}
scene:
  reference_size: [640, 480]
  zones:
    - {id: z1, kind: no_stopping, polygon: [[0, 0], [100, 0], [100, 100]]}
  lines:
    - {id: l1, points: [[10, 400], [600, 400]]}
  lanes:
    - {id: lane1, polygon: [[0, 200], [640, 200], [640, 480], [0, 480]], direction: [[320, 470], [320, 210]]}
  signals:
    - {id: h1, lamps: [{color: red, box: [600, 10, 610, 20]}, {color: green, box: [600, 22, 610, 32]}]}
  calibration:
    image_points: [[100, 300], [540, 300], [620, 470], [20, 470]]
    ground_points_m: [[0, 0], [10, 0], [10, 20], [0, 20]]
rules:
  illegal_stopping: {zones: [z1], max_stop_seconds: 10}
  red_light: {line: l1, signal: h1}
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def check(capsys, *args: str) -> tuple[int, str, str]:
    rc = main(["--log-level", "WARNING", "check-config", *args])
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_the_test_camera_is_good(tmp_path, capsys):
    path = write(tmp_path, "cam.yaml", CAMERA)
    rc, out, err = check(capsys, "--camera", str(path))
    assert (rc, err) == (0, "")
    # The engine a run would open (backend auto: this machine's choice and why), then the verdict.
    assert out.startswith(f"{path}: detector yolo11n.onnx on ") and "(backend auto: " in out
    assert out.endswith(f"\n{path}: ok\n") and out.count("\n") == 2


@pytest.mark.parametrize(
    ("old", "new", "key"),
    [
        ("[[10, 400], [600, 400]]", "[[10, 400], [700, 400]]", "lines[0] (l1): point (700.0, 400.0)"),
        ("direction: [[320, 470], [320, 210]]", "direction: [[320, 490], [320, 210]]",
         "lanes[0] (lane1).direction: point (320.0, 490.0)"),
        ("[[0, 200], [640, 200]", "[[-5, 200], [640, 200]", "lanes[0] (lane1): point (-5.0, 200.0)"),
        ("box: [600, 22, 610, 32]", "box: [600, 22, 650, 32]", "signals[0] (h1).lamps[1].box: point (650.0, 32.0)"),
        ("[20, 470]]", "[20, 481]]", "calibration.image_points[3]: point (20.0, 481.0)"),
    ],
)
def test_scene_geometry_outside_the_reference_names_file_and_key(tmp_path, old, new, key):
    assert CAMERA.count(old) == 1
    path = write(tmp_path, "cam.yaml", CAMERA.replace(old, new))
    with pytest.raises(ConfigError) as err:
        load_camera_config(path)
    line = next(x for x in str(err.value).splitlines() if key in x)
    assert line.startswith(f"  {path}: scene: ") and "is outside the 640x480 reference" in line


def test_an_inverted_lamp_box_is_refused(tmp_path):
    path = write(tmp_path, "cam.yaml", CAMERA.replace("box: [600, 10, 610, 20]", "box: [610, 20, 600, 10]"))
    with pytest.raises(ConfigError, match=r"signals\[0\] \(h1\)\.lamps\[0\]\.box: need x1 < x2 and y1 < y2"):
        load_camera_config(path)


def test_every_problem_is_told_at_once(tmp_path):
    bad = CAMERA.replace("[[10, 400], [600, 400]]", "[[10, 400], [700, 400]]").replace("[20, 470]]", "[20, 481]]")
    with pytest.raises(ConfigError) as err:
        load_camera_config(write(tmp_path, "cam.yaml", bad))
    assert "lines[0] (l1)" in str(err.value) and "calibration.image_points[3]" in str(err.value)


@pytest.mark.parametrize(
    ("old", "new", "key", "suggestion"),
    [
        ("max_stop_seconds: 10", "max_stop_seconds: 10, max_stop_secnds: 3", "rules.illegal_stopping.max_stop_secnds",
         "max_stop_seconds"),
        ("red_light: {", "red_lite: {", "rules.red_lite", "red_light"),
        ("analysis_fps: 5", "analysis_fsp: 5", "camera.analysis_fsp", "analysis_fps"),
        ("{id: z1, kind", "{id: z1, nmae: walkway, kind", "scene.zones[0].nmae", "name"),
        ("{color: red, box", "{colour: red, color: red, box", "scene.signals[0].lamps[0].colour", "color"),
        ("  calibration:", "  calibraton:", "scene.calibraton", "calibration"),
    ],
)
def test_a_key_typo_suggests_the_nearest_valid_key(tmp_path, old, new, key, suggestion):
    assert CAMERA.count(old) == 1
    path = write(tmp_path, "cam.yaml", CAMERA.replace(old, new))
    with pytest.raises(ConfigError) as err:
        load_camera_config(path)
    lines = [x for x in str(err.value).splitlines() if f": {key}: " in x]
    assert len(lines) == 1, str(err.value)
    assert lines[0].startswith(f"  {path}: {key}: Extra inputs are not permitted")
    assert lines[0].endswith(f"; did you mean {suggestion!r}?")


def test_no_suggestion_when_nothing_is_near(tmp_path):
    path = write(tmp_path, "cam.yaml", CAMERA + "\nsurprise: 1\n")
    with pytest.raises(ConfigError) as err:
        load_camera_config(path)
    assert "surprise: Extra inputs are not permitted (got 1)" in str(err.value) and "did you mean" not in str(err.value)


def test_valid_keys_follow_the_models():
    assert "max_stop_seconds" in valid_keys(CameraConfig, ("rules", "illegal_stopping"))
    assert "max_stop_seconds" in valid_keys(CameraConfig, ("rules", "illegal_stopping", "zone_rules", "z1"))
    assert valid_keys(CameraConfig, ("scene", "signals", 0, "lamps", 3)) == ["arrow", "box", "color"]
    assert "red_light" in valid_keys(CameraConfig, ("rules",)) and "plates" in valid_keys(CameraConfig, ("rules",))
    assert "detector" in valid_keys(NodeConfig, ()) and valid_keys(NodeConfig, ("nowhere",)) == []


def test_node_config_typo_suggests_too(tmp_path):
    write(tmp_path, "cam.yaml", CAMERA)
    node = write(tmp_path, "node.yaml", "node: {id: n1}\ndetectr: {model: yolo11n.onnx}\ncameras:\n  - {config: cam.yaml}\n")
    rc, _, err = check_cli(node)
    assert rc == 2 and f"{node}: detectr: Extra inputs are not permitted" in err and "did you mean 'detector'?" in err


def check_cli(*args: Path | str) -> tuple[int, str, str]:
    r = subprocess.run([sys.executable, "-m", "edge", "check-config", *map(str, args)], cwd=REPO, capture_output=True,
                       text=True, timeout=60)
    assert "Traceback" not in r.stderr
    return r.returncode, r.stdout, r.stderr


def test_a_camera_config_without_camera_flag_is_recognised(tmp_path, capsys):
    path = write(tmp_path, "cam.yaml", CAMERA)
    rc, out, err = check(capsys, str(path))
    assert rc == 0 and err == ""
    assert out.startswith(f"{path}: a camera config (top-level camera/scene keys): checked as one, as with --camera\n")
    assert out.endswith(f"{path}: ok\n") and out.count("\n") == 3  # and the detector line between
    # and its errors are the camera config's own, not five confusing node errors
    bad = write(tmp_path, "bad.yaml", CAMERA.replace("max_stop_seconds: 10", "max_stop_seconds: -1"))
    rc, out, err = check(capsys, str(bad))
    assert rc == 2 and "a camera config" in out
    assert err.splitlines() == [
        f"{bad}: invalid config (1 problem)",
        f"  {bad}: rules.illegal_stopping.max_stop_seconds: Input should be greater than 0 (got -1)",
    ]


def test_shipped_configs_pass_check_config(capsys):
    for path in [*sorted(CAMERAS.glob("*.yaml")), REPO / "configs" / "node.example.yaml"]:
        rc, out, err = check(capsys, str(path))
        assert (rc, err) == (0, ""), (path, err)
        assert out.endswith(f"{path}: ok\n")


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("source: vn_paved_parking_area_motorbike.mp4", "source: no_such_clip.mp4",
         "camera.source: video file not found: {data}/videos/no_such_clip.mp4"),
        ("source: vn_paved_parking_area_motorbike.mp4", "source: 'rtsp://cam.example:99999/live'",
         "camera.source: malformed URL 'rtsp://cam.example:99999/live': the port is not a number from 0 to 65535"),
        ("source: vn_paved_parking_area_motorbike.mp4", "source: 'rtsp:///live'",
         "camera.source: malformed URL 'rtsp:///live': no host"),
        ("source: vn_paved_parking_area_motorbike.mp4", "source: 'http://cam.example/live'",
         "camera.source: 'http://cam.example/live' is neither an rtsp:// or rtsps:// URL nor a video file"),
        ("red_light: {line: l1, signal: h1}", "red_light: {line: l1, signal: h1}\n  no_helmet: {model: gone.onnx}",
         "rules.no_helmet.model: model file not found: {data}/weights/gone.onnx"),
        ("red_light: {line: l1, signal: h1}", "red_light: {line: l1, signal: h1}\n  plates: {model: gone.onnx}",
         "rules.plates.model: model file not found: {data}/weights/gone.onnx"),
    ],
)
def test_what_a_camera_run_would_fail_on(tmp_path, capsys, old, new, message):
    from edge.data import data_dir

    path = write(tmp_path, "cam.yaml", CAMERA.replace(old, new))
    load_camera_config(path)  # valid as a config: only a run would fail
    rc, out, err = check(capsys, "--camera", str(path))
    assert rc == 2 and out == ""
    lines = err.splitlines()
    assert len(lines) == 2 and lines[0] == f"{path}: a run would fail (1 problem)"
    assert lines[1].startswith(f"  {path}: {message.format(data=data_dir())}")


def test_what_a_node_run_would_fail_on(tmp_path, capsys):
    write(tmp_path, "cam.yaml", CAMERA.replace("source: vn_paved_parking_area_motorbike.mp4", "source: gone.mp4"))
    node = write(tmp_path, "node.yaml", "node: {id: n1}\ndetector: {model: nothere.onnx}\ncameras:\n"
                 "  - {config: cam.yaml, source: 'rtsp://user:secret@cam.example:0x/live'}\n"
                 "  - {config: cam.yaml, id: cam-2}\n")
    rc, out, err = check(capsys, str(node))
    assert rc == 2 and out == ""
    lines = err.splitlines()
    assert lines[0] == f"{node}: a run would fail (3 problems)"
    assert lines[1].startswith(f"  {node}: detector.model: model file not found: ") and "nothere.onnx" in lines[1]
    # the first camera's source is the node's override (the camera file's own is not used): named there
    assert lines[2] == (f"  {node}: cameras[0].source: malformed URL 'rtsp://user:***@cam.example:0x/live': "
                        "the port is not a number from 0 to 65535")
    assert lines[3].startswith(f"  {tmp_path / 'cam.yaml'}: camera.source: video file not found: ")
    assert "secret" not in err


def test_source_problem():
    assert source_problem("rtsp://user:pw@10.0.0.5:554/Streaming/Channels/101") is None
    assert source_problem("RTSPS://cam.example/live") is None
    assert source_problem("vn_paved_parking_area_motorbike.mp4") is None  # under EDGE_DATA_DIR/videos
    assert "white space" in (source_problem("rtsp://cam example/live") or "")
    assert "not found" in (source_problem("file:///nowhere/x.mp4") or "")


def test_check_config_cli_no_traceback(tmp_path):
    path = write(tmp_path, "cam.yaml", CAMERA.replace("source: vn_paved_parking_area_motorbike.mp4", "source: x.mp4"))
    rc, _, err = check_cli(path)
    assert rc == 2 and f"{path}: camera.source: video file not found" in err
