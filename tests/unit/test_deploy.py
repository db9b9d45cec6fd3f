"""deploy/: what the units, the compose file and the images run exists and parses (no Docker here)."""

from __future__ import annotations

import configparser
import re
import shlex
import tomllib
from pathlib import Path

import pytest
import yaml

import central.__main__ as central_main
import edge.__main__ as edge_main
import edge.logs
from central.config import load_central_config
from tests.support import REPO_ROOT

DEPLOY = REPO_ROOT / "deploy"
SCRIPTS = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["scripts"]


def _unit(name: str) -> configparser.ConfigParser:
    cp = configparser.ConfigParser(strict=False, interpolation=None)
    cp.optionxform = str  # type: ignore[assignment,method-assign]
    cp.read(DEPLOY / "systemd" / name, encoding="utf-8")
    return cp


def _accepts(argv: list[str], monkeypatch: pytest.MonkeyPatch, script: str) -> str:
    """The subcommand `argv` runs, parsed by the real CLI (nothing is started)."""
    if script == "ioc-central":
        return central_main._parser().parse_args(argv).command
    ran: list[str] = []
    monkeypatch.setattr(edge_main, "_cmd_run", lambda args: ran.append("run") or 0)
    monkeypatch.setattr(edge.logs, "setup_logging", lambda *a: None)  # keep pytest's log handlers
    assert edge_main.main(argv) == 0
    return ran[0]


@pytest.mark.parametrize(
    ("unit", "command"),
    [("ioc-edge.service", "run"), ("ioc-central.service", "run"), ("ioc-central-purge-evidence.service", "purge-evidence")],
)
def test_unit_execstart_is_a_console_script_and_subcommand(unit: str, command: str, monkeypatch) -> None:
    cp = _unit(unit)
    argv = shlex.split(cp["Service"]["ExecStart"])
    script = Path(argv[0]).name
    assert script in SCRIPTS, f"{unit}: {script} is not a console script of pyproject.toml"
    assert _accepts(argv[1:], monkeypatch, script) == command
    env = re.findall(r"^Environment=(.+)$", (DEPLOY / "systemd" / unit).read_text(encoding="utf-8"), re.M)
    assert any(re.fullmatch(r"(EDGE|CENTRAL)_STATE_DIR=/var/lib/ioc-(edge|central)", e) for e in env)  # not a checkout


def test_purge_timer_runs_the_purge_daily() -> None:
    timer = _unit("ioc-central-purge-evidence.timer")
    assert timer["Timer"]["Unit"] == "ioc-central-purge-evidence.service"
    assert re.fullmatch(r"(daily|\*-\*-\* \d\d:\d\d:\d\d)", timer["Timer"]["OnCalendar"])
    assert timer["Timer"]["Persistent"] == "true"
    assert _unit("ioc-central-purge-evidence.service")["Service"]["Type"] == "oneshot"


def test_compose_runs_central_with_mosquitto_and_postgres() -> None:
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text(encoding="utf-8"))
    services = compose["services"]
    assert {"central", "mosquitto", "postgres"} <= set(services)
    central = services["central"]
    assert central_main._parser().parse_args(central["command"]).command == "run"
    assert (DEPLOY / central["build"]["context"] / central["build"]["dockerfile"]).is_file()
    for svc in services.values():
        for vol in svc.get("volumes", []):
            src = vol.split(":")[0]
            if src.startswith("./"):
                assert (DEPLOY / src).is_file(), f"compose mounts a missing file {src}"
    assert "mosquitto.conf" in " ".join(services["mosquitto"]["volumes"])
    env = central["environment"]
    assert env["CENTRAL_DATABASE_URL"].startswith("postgresql+psycopg://") and "@postgres:" in env["CENTRAL_DATABASE_URL"]
    assert env["CENTRAL_MQTT_URL"] == "mqtt://mosquitto:1883"


def test_compose_central_config_loads(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("CENTRAL_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("CENTRAL_DATABASE_URL", "postgresql+psycopg://central:x@postgres:5432/central")
    cfg = load_central_config(DEPLOY / "config" / "central.yaml")
    assert cfg.evidence_dir == tmp_path / "evidence" and cfg.web.host == "0.0.0.0"


def test_mosquitto_conf_keeps_queued_messages() -> None:
    conf = (DEPLOY / "mosquitto" / "mosquitto.conf").read_text(encoding="utf-8")
    m = re.search(r"^max_queued_messages (\d+)$", conf, re.M)
    assert m and int(m.group(1)) >= 10_000  # the default 100 silently drops QoS 1 for central's sessions
    assert re.search(r"^persistence true$", conf, re.M)


def _apt_packages(text: str) -> set[str]:
    return set(re.findall(r"\b(gstreamer1\.0-[a-z0-9-]+|gir1\.2-[a-z0-9.-]+)\b", text))


@pytest.mark.parametrize("image", ["edge.Dockerfile", "central.Dockerfile"])
def test_images_never_carry_data_and_mount_it(image: str) -> None:
    text = (DEPLOY / image).read_text(encoding="utf-8")
    copies = re.findall(r"^COPY (?!--from)(.+)$", text, re.M)
    assert copies and not any(re.search(r"weights|videos|images|shared|var|\.onnx|\.mp4", c) for c in copies)
    assert "EDGE_DATA_DIR=/data" in text and re.search(r'VOLUME \[.*"/data"', text)
    assert (DEPLOY / f"{image}.dockerignore").is_file()


def test_edge_image_has_the_video_stack_of_setup_sh() -> None:
    wanted = _apt_packages((REPO_ROOT / "scripts" / "setup.sh").read_text(encoding="utf-8"))
    assert wanted, "setup.sh lists no GStreamer packages?"
    missing = wanted - _apt_packages((DEPLOY / "edge.Dockerfile").read_text(encoding="utf-8"))
    assert not missing, f"edge.Dockerfile lacks {sorted(missing)}"
