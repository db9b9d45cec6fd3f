"""Where the weights, videos and images live: EDGE_DATA_DIR, by default ../shared/data."""

from __future__ import annotations

import hashlib
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


def file_sha256(path: Path) -> str:
    """The sha256 of a file (weights, variants), read in 1 MB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
