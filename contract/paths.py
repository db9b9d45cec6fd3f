"""Where runtime files live, the same for a checkout and an installed wheel.

- **Data** (weights, videos, images; never in the repository, never downloaded): `EDGE_DATA_DIR`;
  else, in a source checkout, `<checkout>/../shared/data`; else `$XDG_DATA_HOME/ioc-edge`
  (`~/.local/share/ioc-edge`).
- **State** (edge outbox and evidence, central's SQLite file and evidence store): `EDGE_STATE_DIR`
  and `CENTRAL_STATE_DIR`; else, in a source checkout, `<checkout>/var/edge` and
  `<checkout>/var/central` (as before packaging); else `$XDG_STATE_HOME/ioc-edge` and
  `$XDG_STATE_HOME/ioc-central` (`~/.local/state/...`). The systemd units and the images set them
  to `/var/lib/...`.
- **Shipped configs** (central's default config, the routing table, the report texts, the example
  node and camera configs): the `configs` package's data, wherever it was installed.

Shared by edge, central, models and pipelines, so none of them reaches into another for a path.
"""

from __future__ import annotations

import hashlib
import os
from importlib.resources import files
from pathlib import Path

_ABOVE_PACKAGES = Path(__file__).resolve().parent.parent  # the checkout, or site-packages


def source_checkout() -> Path | None:
    """The repository root when running from a checkout (editable install or PYTHONPATH), else None."""
    root = _ABOVE_PACKAGES
    return root if (root / "pyproject.toml").is_file() and (root / "contract" / "paths.py").is_file() else None


def _xdg(var: str, fallback: str, app: str) -> Path:
    base = os.environ.get(var) or str(Path.home() / fallback)
    return Path(base) / app


def data_dir() -> Path:
    if os.environ.get("EDGE_DATA_DIR"):
        return Path(os.environ["EDGE_DATA_DIR"]).resolve()
    checkout = source_checkout()
    if checkout is not None:
        return (checkout.parent / "shared" / "data").resolve()
    return _xdg("XDG_DATA_HOME", ".local/share", "ioc-edge")


def resolve_data_path(name: str | os.PathLike[str], subdir: str) -> Path:
    """An absolute path as given, a path that exists as given, else EDGE_DATA_DIR/subdir/name."""
    p = Path(name)
    if p.is_absolute() or p.exists():
        return p.resolve()
    return data_dir() / subdir / p


def weights_path(name: str) -> Path:
    return resolve_data_path(name, "weights")


def video_path(name: str) -> Path:
    return resolve_data_path(name, "videos")


def file_sha256(path: Path) -> str:
    """The sha256 of a file (weights, variants), read in 1 MB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _state_dir(var: str, checkout_sub: str, app: str) -> Path:
    if os.environ.get(var):
        return Path(os.environ[var]).resolve()
    checkout = source_checkout()
    if checkout is not None:
        return checkout / "var" / checkout_sub
    return _xdg("XDG_STATE_HOME", ".local/state", app).resolve()


def edge_state_dir() -> Path:
    """Where an edge node keeps its outbox and evidence by default (one folder per node id below it)."""
    return _state_dir("EDGE_STATE_DIR", "edge", "ioc-edge")


def central_state_dir() -> Path:
    """What central's relative state paths (SQLite file, evidence store) are relative to."""
    return _state_dir("CENTRAL_STATE_DIR", "central", "ioc-central")


def packaged_config(*parts: str) -> Path:
    """A file shipped in the `configs` package, e.g. packaged_config("cameras", "x.yaml")."""
    return Path(str(files("configs").joinpath(*parts)))
