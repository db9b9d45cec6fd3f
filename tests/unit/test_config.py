"""Bad configs are refused with the file, the key path and what was expected."""

import subprocess
import sys
from pathlib import Path

import pytest

from contract.configfile import ConfigError
from edge.config import load_camera_config, load_node_config

REPO = Path(__file__).resolve().parents[2]
GOOD_CAMERA = """
camera: {id: cam-1, analysis_fps: 5}
scene:
  reference_size: [640, 480]
  zones:
    - {id: z1, kind: no_stopping, polygon: [[0, 0], [100, 0], [100, 100]]}
rules:
  illegal_stopping: {zones: [z1], max_stop_seconds: 10}
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def test_good_camera_config_loads(tmp_path):
    cfg = load_camera_config(write(tmp_path, "cam.yaml", GOOD_CAMERA))
    assert cfg.camera.id == "cam-1"
    assert cfg.rules.illegal_stopping.max_stop_seconds == 10


@pytest.mark.parametrize(
    ("bad", "expect"),
    [
        (GOOD_CAMERA.replace("max_stop_seconds: 10", "max_stop_seconds: -1"), "rules.illegal_stopping.max_stop_seconds"),
        (GOOD_CAMERA.replace("max_stop_seconds: 10", "max_stop_seconds: soon"), "rules.illegal_stopping.max_stop_seconds"),
        (GOOD_CAMERA.replace("zones: [z1]", "zones: [nope]"), "no zone 'nope'"),
        (GOOD_CAMERA.replace("id: cam-1", "id: 'Cam 1'"), "camera.id"),
        (GOOD_CAMERA.replace("[[0, 0], [100, 0], [100, 100]]", "[[0, 0], [100, 0]]"), "scene.zones[0].polygon"),
        (GOOD_CAMERA.replace("[100, 100]]", "[900, 100]]"), "outside the 640x480 reference"),
        (GOOD_CAMERA + "\nsurprise: 1\n", "surprise"),
        (GOOD_CAMERA.replace("kind: no_stopping", "kind: nonsense"), "scene.zones[0].kind"),
    ],
)
def test_bad_camera_config_names_file_and_key(tmp_path, bad, expect):
    path = write(tmp_path, "cam.yaml", bad)
    with pytest.raises(ConfigError) as err:
        load_camera_config(path)
    assert str(path) in str(err.value)
    assert expect in str(err.value)


def test_yaml_syntax_error_names_line(tmp_path):
    path = write(tmp_path, "cam.yaml", "camera: {id: [unclosed\n")
    with pytest.raises(ConfigError, match=r"not valid YAML: line \d+"):
        load_camera_config(path)


def test_node_config_errors_name_the_camera_file(tmp_path):
    write(tmp_path, "cam.yaml", GOOD_CAMERA.replace("max_stop_seconds: 10", "max_stop_seconds: x"))
    node = write(tmp_path, "node.yaml", "node: {id: n1}\ncameras:\n  - {config: cam.yaml, source: rtsp://h/x}\n")
    with pytest.raises(ConfigError) as err:
        load_node_config(node)
    assert str(tmp_path / "cam.yaml") in str(err.value)


def test_a_camera_config_path_no_file_can_have_is_a_config_error(tmp_path):
    # Found by the config fuzz test: a NUL in the path made pathlib raise a bare ValueError.
    node = write(tmp_path, "node.yaml", 'node: {id: n1}\ncameras:\n  - {config: "cam\\0.yaml", source: rtsp://h/x}\n')
    with pytest.raises(ConfigError) as err:
        load_node_config(node)
    assert str(node) in str(err.value) and "cameras[0].config" in str(err.value)
    assert "cannot contain a NUL" in str(err.value)


def test_node_config_missing_source(tmp_path):
    write(tmp_path, "cam.yaml", GOOD_CAMERA)
    node = write(tmp_path, "node.yaml", "node: {id: n1}\ncameras:\n  - {config: cam.yaml}\n")
    with pytest.raises(ConfigError, match=r"cameras\[0\]\.source"):
        load_node_config(node)


def test_cli_bad_config_exit_code_and_no_traceback(tmp_path):
    path = write(tmp_path, "cam.yaml", GOOD_CAMERA.replace("analysis_fps: 5", "analysis_fps: fast"))
    r = subprocess.run(
        [sys.executable, "-m", "edge", "check-config", "--camera", str(path)], cwd=REPO, capture_output=True, text=True
    )
    assert r.returncode == 2
    assert "camera.analysis_fps" in r.stderr and str(path) in r.stderr
    assert "Traceback" not in r.stderr


def test_shipped_camera_configs_are_valid():
    files = sorted((REPO / "configs" / "cameras").glob("*.yaml"))
    assert files, "configs/cameras is empty"
    for f in files:
        load_camera_config(f)
