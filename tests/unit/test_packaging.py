"""The project installs like a package: one version, console scripts that resolve, shipped data."""

from __future__ import annotations

import importlib
import subprocess
import sys
import tomllib

import pytest

from contract.paths import packaged_config
from contract.version import __version__
from tests.support import REPO_ROOT

PYPROJECT = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def test_version_has_one_source() -> None:
    project = PYPROJECT["project"]
    assert "version" not in project and "version" in project["dynamic"]
    assert PYPROJECT["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "contract.version.__version__"}
    assert __version__.count(".") >= 2


@pytest.mark.parametrize("script", ["ioc-edge", "ioc-central"])
def test_console_scripts_point_at_a_main(script: str) -> None:
    target = PYPROJECT["project"]["scripts"][script]
    module, _, func = target.partition(":")
    assert callable(getattr(importlib.import_module(module), func))


@pytest.mark.parametrize("module", ["edge", "central", "models"])
def test_version_option(module: str) -> None:
    out = subprocess.run([sys.executable, "-m", module, "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == f"python -m {module} {__version__}"


def test_runtime_dependencies_cover_the_lock() -> None:
    """Every pinned runtime requirement is a dependency of the package (ranges may be wider)."""
    import re

    def name(req: str) -> str:
        return re.split(r"[<>=!~\[; ]", req.strip(), maxsplit=1)[0].lower()

    lock = {
        name(line)
        for line in (REPO_ROOT / "requirements.txt").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith(("#", "-"))
    }
    declared = {name(d) for d in PYPROJECT["project"]["dependencies"]}
    declared |= {name(d) for d in PYPROJECT["project"]["optional-dependencies"]["gst"]}
    declared |= {name(d) for d in PYPROJECT["project"]["optional-dependencies"]["plates"]}
    declared |= {name(d) for d in PYPROJECT["project"]["optional-dependencies"]["openvino"]}
    declared |= {name(d) for d in PYPROJECT["project"]["optional-dependencies"]["nats"]}
    declared |= {name(d) for d in PYPROJECT["project"]["optional-dependencies"]["rabbitmq"]}
    assert lock == declared


def test_shipped_configs_are_package_data() -> None:
    assert packaged_config("central.yaml").is_file()
    assert packaged_config("routing.yaml").is_file()
    assert packaged_config("report_templates", "violations.yaml").is_file()
    assert packaged_config("cameras", "vn_paved_parking_area_motorbike.yaml").is_file()
    globs = PYPROJECT["tool"]["setuptools"]["package-data"]["*"]
    assert {"*.yaml", "*.html", "*.mako"} <= set(globs)


def test_state_dirs_default_outside_the_checkout_when_installed(tmp_path, monkeypatch) -> None:
    import contract.paths as paths

    monkeypatch.delenv("EDGE_STATE_DIR", raising=False)
    monkeypatch.delenv("CENTRAL_STATE_DIR", raising=False)
    monkeypatch.delenv("EDGE_DATA_DIR", raising=False)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert paths.edge_state_dir() == REPO_ROOT / "var" / "edge"  # a checkout: as before
    monkeypatch.setattr(paths, "source_checkout", lambda: None)  # an installed wheel
    assert paths.edge_state_dir() == tmp_path / "state" / "ioc-edge"
    assert paths.central_state_dir() == tmp_path / "state" / "ioc-central"
    assert paths.data_dir() == tmp_path / "data" / "ioc-edge"
    monkeypatch.setenv("EDGE_STATE_DIR", str(tmp_path / "edge"))
    assert paths.edge_state_dir() == tmp_path / "edge"
