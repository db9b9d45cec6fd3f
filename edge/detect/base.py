"""The detector backend interface and its registry.

A backend is one module that calls `register_backend(BackendSpec(...))` at import: modules of
`edge.detect.backends` are found by listing the package, and installed distributions add theirs
through `ioc_edge.detectors` entry points. Nothing else names a backend; a node config picks one
with `detector.backend`.
"""

from __future__ import annotations

import functools
import importlib
import logging
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, Protocol

import numpy as np

log = logging.getLogger("edge.detect")

ENTRY_POINT_GROUP = "ioc_edge.detectors"


class DetectorError(Exception):
    pass


class Engine(Protocol):
    """A compiled model: NCHW float32 blob in, the model's first output out."""

    input_shape: tuple[Any, ...]  # (batch, channels, height, width); a dimension is an int or a name (dynamic)
    metadata: dict[str, str]  # the export's custom metadata (Ultralytics: names, stride, imgsz)
    device: str  # what runs it, for the log line and status (e.g. "CPU", "CUDA", "OpenVINO:GPU")
    why: str  # one line: why this device (what was wanted, what was missing)

    def run(self, blob: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True)
class BackendSpec:
    key: str
    open: Callable[..., Engine]  # (model_path, *, threads, providers, precision) -> Engine
    description: str = ""
    module: str = ""


_BACKENDS: dict[str, BackendSpec] = {}


def register_backend(spec: BackendSpec) -> BackendSpec:
    known = _BACKENDS.get(spec.key)
    if known is not None and known.module != spec.module:
        raise ValueError(f"detector backend {spec.key!r} is registered twice ({known.module} and {spec.module})")
    _BACKENDS[spec.key] = spec
    return spec


def backends() -> dict[str, BackendSpec]:
    """Every backend: this package's modules, then installed `ioc_edge.detectors` entry points."""
    _discover()
    return dict(_BACKENDS)


@functools.cache
def _discover() -> None:
    import edge.detect.backends as package

    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        if not info.name.startswith("_"):
            importlib.import_module(f"{package.__name__}.{info.name}")
    for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        try:
            importlib.import_module(ep.value.split(":")[0])
        except Exception as e:  # a broken third-party backend must not hide the built-in ones
            log.error("detector backend failed to load", extra={"fields": {"entry_point": ep.name, "error": repr(e)}})


def open_engine(backend: str, model_path: Path, **options: Any) -> Engine:
    specs = backends()
    if backend not in specs:
        raise DetectorError(f"unknown detector backend {backend!r} (have: {', '.join(sorted(specs))})")
    if not model_path.is_file():
        raise DetectorError(f"model file not found: {model_path} (set EDGE_DATA_DIR to the folder holding weights/)")
    return specs[backend].open(model_path, **options)
