"""Where the weights, videos and images live: EDGE_DATA_DIR, by default ../shared/data."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA_DIR = REPO_ROOT.parent / "shared" / "data"


def data_dir() -> Path:
    return Path(os.environ.get("EDGE_DATA_DIR") or DEFAULT_DATA_DIR).resolve()


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
