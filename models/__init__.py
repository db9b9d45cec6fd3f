"""The model registry: which weights the edge uses, with their sha256 and what they detect.

Two files: `registry.yaml` (the weights as shipped, under EDGE_DATA_DIR/weights) and `variants.yaml`
(static-shape FP32 and INT8 QDQ variants made from them by `python -m models build-variants`,
kept under EDGE_MODEL_CACHE, default ~/.cache/ioc-edge/models). A detector config names either a
file (`yolo11n.onnx`, a path) or a registered name (`yolo11n`, `yolo11n-384x640-int8`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from contract.paths import file_sha256, weights_path

REGISTRY_PATH = Path(__file__).with_name("registry.yaml")
VARIANTS_PATH = Path(__file__).with_name("variants.yaml")
CACHE_ENV = "EDGE_MODEL_CACHE"


def registry() -> dict[str, dict[str, Any]]:
    return yaml.safe_load(REGISTRY_PATH.read_text(encoding="utf-8"))["models"]


def registered_variants(path: Path | None = None) -> dict[str, dict[str, Any]]:
    """The registered variants by name (empty if the file does not exist yet)."""
    path = path or VARIANTS_PATH
    if not path.is_file():
        return {}
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return data.get("variants") or {}


def cache_dir() -> Path:
    """Where built variants live: EDGE_MODEL_CACHE, else $XDG_CACHE_HOME/ioc-edge/models (~/.cache/...)."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser().resolve()
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return (base / "ioc-edge" / "models").resolve()


def verify(name: str) -> Path:
    """The model's file under EDGE_DATA_DIR/weights, after checking its sha256 against the registry."""
    entry = registry()[name]
    path = weights_path(entry["file"])
    if not path.is_file():
        raise FileNotFoundError(f"model {name}: {path} not found (EDGE_DATA_DIR)")
    digest = file_sha256(path)
    if digest != entry["sha256"]:
        raise ValueError(f"model {name}: {path} has sha256 {digest}, registry says {entry['sha256']}")
    return path


def verify_variant(name: str, folder: Path | None = None, registry_path: Path | None = None) -> Path:
    """The variant's file in the model cache, after checking its sha256 against variants.yaml."""
    entry = registered_variants(registry_path)[name]
    path = (folder or cache_dir()) / entry["file"]
    if not path.is_file():
        raise FileNotFoundError(
            f"model variant {name}: {path} not found; build it with `python -m models build-variants` "
            f"(into {CACHE_ENV}, default ~/.cache/ioc-edge/models)"
        )
    digest = file_sha256(path)
    if digest != entry["sha256"]:
        raise ValueError(
            f"model variant {name}: {path} has sha256 {digest}, {VARIANTS_PATH.name} says {entry['sha256']} "
            "(rebuild it, or rebuild and re-register with `python -m models build-variants --register`)"
        )
    return path


def is_file_reference(model: str) -> bool:
    """`yolo11n.onnx`, `weights/x.onnx`, `/abs/path.onnx`: a file, not a registered name."""
    return model.endswith(".onnx") or "/" in model or os.sep in model


def check_model_name(model: str) -> None:
    """Raise ValueError unless `model` is a file reference or a usable registered name (for config validation)."""
    if is_file_reference(model):
        return
    if model in registry():
        return
    found = registered_variants()
    if model not in found:
        have = sorted(registry()) + sorted(n for n, e in found.items() if e.get("kept"))
        raise ValueError(
            f"unknown model {model!r}: neither a file name ending in .onnx nor a name registered in "
            f"models/{REGISTRY_PATH.name} or models/{VARIANTS_PATH.name} (have: {', '.join(have)})"
        )
    entry = found[model]
    if entry.get("kept") is not True:
        reason = entry.get("agreement", {}).get("verdict") or "agreement with FP32 not measured yet"
        raise ValueError(
            f"model variant {model!r} (models/{VARIANTS_PATH.name}) is not kept for use: {reason} "
            "(see `python -m models agreement`)"
        )


def resolve(model: str) -> Path:
    """The file to load for a detector config's `model`: a file under EDGE_DATA_DIR/weights (or a path)
    as given, else a registered model or variant after checking its sha256."""
    if is_file_reference(model):
        return weights_path(model)
    if model in registry():
        return verify(model)
    if model in registered_variants():
        return verify_variant(model)
    check_model_name(model)  # raises with the list of known names
    raise AssertionError("unreachable")
