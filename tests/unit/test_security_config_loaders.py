"""Issue 18, defect 9: hostile config files fail fast with an error naming the file and the key.

Each case is attacked through the real entry points (`edge check-config`, the node loader that
`edge run` uses, `central`'s loader) in a subprocess with a wall-clock limit, so a hang or a
MemoryError/RecursionError traceback fails the test instead of stalling the suite.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from contract.configfile import ConfigError, read_yaml
from contract.yaml_safe import MAX_CONFIG_BYTES, MAX_DEPTH, safe_load, short_repr

REPO = Path(__file__).resolve().parents[2]
CAMERA = REPO / "configs" / "cameras" / "vn_paved_parking_area_motorbike.yaml"

LAUGHS = "\n".join(
    [
        'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]',
        *(f"{c}: &{c} [{', '.join([f'*{p}'] * 9)}]" for p, c in zip("abcdefgh", "bcdefghi", strict=True)),
    ]
)


def run_py(code: str, *args: str, timeout: float = 20.0) -> tuple[int, str, float]:
    """Run `code` in a fresh interpreter; (rc, stdout+stderr, seconds). A hang is a failure."""
    t0 = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=timeout, cwd=REPO
    )
    return proc.returncode, proc.stdout + proc.stderr, time.monotonic() - t0


def edge_check(path: Path | str, *flags: str) -> tuple[int, str, float]:
    return run_py(
        "import sys; from edge.__main__ import main; sys.exit(main(['--log-level', 'ERROR', 'check-config', *sys.argv[1:]]))",
        *flags,
        str(path),
    )


def node_yaml(tmp_path: Path, camera: str | Path = CAMERA, mqtt: str = "") -> Path:
    p = tmp_path / "node.yaml"
    p.write_text(
        f"node: {{id: node-1}}\nmqtt: {{url: 'mqtt://127.0.0.1:1883'{mqtt}}}\n"
        f"cameras:\n  - config: {camera}\n    source: rtsp://127.0.0.1:8554/cam\n",
        encoding="utf-8",
    )
    return p


def assert_clean_refusal(rc: int, out: str, seconds: float, *needles: str) -> None:
    assert rc != 0, out
    assert "Traceback" not in out and "MemoryError" not in out and "RecursionError" not in out, out
    assert seconds < 15, f"took {seconds:.1f} s"
    for needle in needles:
        assert needle in out, out
    # Bounded error text: one short line per problem, never the expanded value.
    assert len(out) < 2000, len(out)


@pytest.fixture
def fifo(tmp_path: Path) -> Path:
    p = tmp_path / "pipe.yaml"
    os.mkfifo(p)
    return p


def test_billion_laughs_camera_config(tmp_path):
    cam = tmp_path / "lol.yaml"
    cam.write_text(LAUGHS, encoding="utf-8")
    rc, out, s = edge_check(cam, "--camera")
    assert_clean_refusal(rc, out, s, str(cam), "aliases repeated too often")


def test_billion_laughs_inside_a_valid_key_does_not_hang_the_error_formatter(tmp_path):
    # Under the expansion cap but big: the error line must still be short (bounded repr).
    text = "\n".join(LAUGHS.splitlines()[:4]) + "\n" + CAMERA.read_text(encoding="utf-8") + "\n"
    text = text.replace("camera:\n", "camera:\n  name: *d\n", 1)
    cam = tmp_path / "big.yaml"
    cam.write_text(text, encoding="utf-8")
    rc, out, s = edge_check(cam, "--camera")
    assert_clean_refusal(rc, out, s, str(cam), ": d: Extra inputs")


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/urandom"])
def test_device_as_config(device):
    rc, out, s = edge_check(device)
    assert_clean_refusal(rc, out, s, device, "not a regular file")


def test_fifo_as_config(fifo):
    rc, out, s = edge_check(fifo)
    assert_clean_refusal(rc, out, s, str(fifo), "FIFO")


@pytest.mark.parametrize("camera", ["/dev/zero", "/dev/urandom", "FIFO"])
def test_device_or_fifo_as_camera_config(tmp_path, camera):
    if camera == "FIFO":
        camera = str(tmp_path / "cam.fifo")
        os.mkfifo(camera)
    node = node_yaml(tmp_path, camera)
    rc, out, s = edge_check(node)
    assert_clean_refusal(rc, out, s, str(node), "cameras[0].config", camera, "not a regular file")


def test_deep_nesting(tmp_path):
    cam = tmp_path / "deep.yaml"
    cam.write_text("camera: " + "[" * 5000 + "]" * 5000 + "\n", encoding="utf-8")
    rc, out, s = edge_check(cam, "--camera")
    assert_clean_refusal(rc, out, s, str(cam), f"nested deeper than {MAX_DEPTH} levels")


def test_oversized_config(tmp_path):
    cam = tmp_path / "huge.yaml"
    with cam.open("w", encoding="utf-8") as f:
        f.write("camera: {id: c}\n")
        f.write("# " + "x" * (MAX_CONFIG_BYTES + 10) + "\n")
    with pytest.raises(ConfigError, match=f"{cam}: cannot read config file: .*bytes, more than"):
        read_yaml(cam)


@pytest.mark.parametrize("target", ["/dev/zero", "FIFO"])
def test_password_file_that_would_kill_edge_run_fails_check_config(tmp_path, target):
    if target == "FIFO":
        target = str(tmp_path / "pw.fifo")
        os.mkfifo(target)
    node = node_yaml(tmp_path, mqtt=f", password_file: '{target}'")
    rc, out, s = edge_check(node)
    assert_clean_refusal(rc, out, s, str(node), "mqtt.password_file", target)
    # And the loader `edge run` uses refuses it the same way (before any client is built).
    rc, out, s = run_py(
        "import sys\nfrom contract.configfile import ConfigError\nfrom edge.config import load_node_config\n"
        "try:\n    load_node_config(sys.argv[1])\nexcept ConfigError as e:\n    print(e); sys.exit(2)\n",
        str(node),
    )
    assert_clean_refusal(rc, out, s, "mqtt.password_file", target)


def test_password_file_still_works(tmp_path):
    pw = tmp_path / "pw"
    pw.write_text("s3cret\n", encoding="utf-8")
    from edge.config import load_node_config

    node, _ = load_node_config(node_yaml(tmp_path, mqtt=f", password_file: '{pw}'"))
    assert node.mqtt.secret() == "s3cret"


CENTRAL_LOAD = (
    "import sys\nfrom contract.configfile import ConfigError\nfrom central.config import load_central_config\n"
    "try:\n    load_central_config(sys.argv[1])\nexcept ConfigError as e:\n    print(e); sys.exit(2)\n"
)


def central_yaml(tmp_path: Path, body: str) -> Path:
    p = tmp_path / "central.yaml"
    p.write_text(body, encoding="utf-8")
    return p


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/urandom"])
def test_central_device_as_config(device):
    rc, out, s = run_py(CENTRAL_LOAD, device)
    assert_clean_refusal(rc, out, s, device, "not a regular file")


def test_central_fifo_and_laughs(tmp_path, fifo):
    rc, out, s = run_py(CENTRAL_LOAD, str(fifo))
    assert_clean_refusal(rc, out, s, str(fifo), "FIFO")
    lol = central_yaml(tmp_path, LAUGHS)
    rc, out, s = run_py(CENTRAL_LOAD, str(lol))
    assert_clean_refusal(rc, out, s, str(lol), "aliases repeated too often")


def test_central_evidence_dir_fifo(tmp_path, fifo):
    cfg = central_yaml(tmp_path, f"database_url: 'sqlite:///{tmp_path}/c.db'\nevidence_dir: '{fifo}'\n")
    rc, out, s = run_py(CENTRAL_LOAD, str(cfg))
    assert_clean_refusal(rc, out, s, str(cfg), "evidence_dir", "is not a folder")


def test_central_sqlite_in_missing_folder_is_refused_not_created(tmp_path):
    missing = tmp_path / "typo" / "deeper"
    cfg = central_yaml(tmp_path, f"database_url: 'sqlite:///{missing}/central.db'\n")
    rc, out, s = run_py(CENTRAL_LOAD, str(cfg))
    assert_clean_refusal(rc, out, s, str(cfg), "database_url", "does not exist")
    assert not (tmp_path / "typo").exists()


def test_central_sqlite_in_state_dir_is_still_made_on_demand(tmp_path, monkeypatch):
    monkeypatch.setenv("CENTRAL_STATE_DIR", str(tmp_path / "state"))
    cfg = central_yaml(tmp_path, "database_url: 'sqlite:///sub/central.db'\n")
    from central.config import load_central_config

    assert load_central_config(cfg).database_url.endswith("state/sub/central.db")


def test_central_password_file_dev_zero(tmp_path):
    cfg = central_yaml(tmp_path, f"database_url: 'sqlite:///{tmp_path}/c.db'\nmqtt: {{password_file: /dev/zero}}\n")
    rc, out, s = run_py(CENTRAL_LOAD, str(cfg))
    assert_clean_refusal(rc, out, s, str(cfg), "mqtt.password_file", "/dev/zero")


def test_safe_load_keeps_ordinary_aliases_and_bounds_repr():
    data = safe_load("base: &b {x: 1, y: [1, 2]}\none: *b\ntwo: *b\n")
    assert data == {"base": {"x": 1, "y": [1, 2]}, "one": {"x": 1, "y": [1, 2]}, "two": {"x": 1, "y": [1, 2]}}
    shared: list = ["x" * 1000]
    for _ in range(30):  # 2**30 leaves if expanded: repr() would never finish
        shared = [shared, shared]
    t0 = time.monotonic()
    assert len(short_repr(shared)) <= 80
    assert time.monotonic() - t0 < 1
