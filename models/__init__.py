"""The model registry: which weights the edge uses, with their sha256 and what they detect."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import yaml

from edge.data import weights_path

REGISTRY_PATH = Path(__file__).with_name("registry.yaml")


def registry() -> dict[str, dict[str, Any]]:
    return yaml.safe_load(REGISTRY_PATH.read_text(encoding="utf-8"))["models"]


def verify(name: str) -> Path:
    """The model's file under EDGE_DATA_DIR/weights, after checking its sha256 against the registry."""
    entry = registry()[name]
    path = weights_path(entry["file"])
    if not path.is_file():
        raise FileNotFoundError(f"model {name}: {path} not found (EDGE_DATA_DIR)")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != entry["sha256"]:
        raise ValueError(f"model {name}: {path} has sha256 {digest}, registry says {entry['sha256']}")
    return path
