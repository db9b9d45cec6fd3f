"""Finds the rule plug-ins and builds a camera's rules from its config.

Plug-ins are the modules of this package that register a `RuleSpec` (found by listing the package,
so a new rule module needs no entry anywhere else) and any installed distribution's
`ioc_edge.rules` entry points (each names a module to import). Discovery runs once per process.
"""

from __future__ import annotations

import functools
import importlib
import logging
import pkgutil
from collections.abc import Callable
from datetime import datetime
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any

from edge.rules.base import BuildContext, Rule, RuleSpec, ViolationKind, registered_specs, scene_refs

if TYPE_CHECKING:
    from edge.config import CameraConfig
    from edge.geometry import PolygonZone
    from edge.scene import SceneConfig

log = logging.getLogger("edge.rules")

ENTRY_POINT_GROUP = "ioc_edge.rules"
# Modules of this package that are machinery, not rules.
_NOT_RULES = frozenset({"base", "registry"})


def rule_specs() -> dict[str, RuleSpec]:
    """Every registered rule, by config key, in the order they run (`RuleSpec.order`)."""
    _discover()
    return registered_specs()


@functools.cache
def _discover() -> None:
    import edge.rules as package

    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        if info.name not in _NOT_RULES and not info.name.startswith("_"):
            importlib.import_module(f"{package.__name__}.{info.name}")
    for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        try:
            importlib.import_module(ep.value.split(":")[0])
        except Exception as e:  # a broken third-party plug-in must not take the node down
            log.error("rule plug-in failed to load", extra={"fields": {"entry_point": ep.name, "error": repr(e)}})


def violation_kinds() -> dict[str, ViolationKind]:
    """Every violation type the registered rules raise, by type id (report texts, categories)."""
    out: dict[str, ViolationKind] = {}
    for spec in rule_specs().values():
        for kind in spec.kinds:
            out.setdefault(kind.type, kind)
    return out


def check_rules(rules: Any, scene: SceneConfig) -> None:
    """Every scene id a configured rule names must exist in the scene; then each rule's own check.
    Raises ValueError naming the rule's key path."""
    have = {
        "lines": {x.id for x in scene.lines},
        "signals": {x.id for x in scene.signals},
        "zones": {x.id for x in scene.zones},
        "lanes": {x.id for x in scene.lanes},
    }
    specs = rule_specs()
    for key, spec in specs.items():
        cfg = getattr(rules, key, None)
        if cfg is None:
            continue
        for path, kind, ref in scene_refs(cfg, f"{key}."):
            if ref not in have[kind]:
                raise ValueError(f"{path}: no {kind[:-1]} {ref!r} in scene.{kind} (have: {sorted(have[kind]) or 'none'})")
        if spec.check is not None:
            spec.check(cfg, scene)


def build_rules(
    camera: CameraConfig,
    zones: list[PolygonZone],
    frame_wh: tuple[int, int] | None = None,
    clock: Callable[[float], datetime] | None = None,
    crop_models: Callable[[str, int, float], Any] | None = None,
    shared: dict[str, Any] | None = None,
) -> list[Rule]:
    """The camera's configured rules, built by their plug-ins in dependency order; traffic rules
    get the plate stage when `rules.plates` is set. `crop_models` runs secondary models (the
    node's shared inference pool). `shared`: the dict the rules' shared objects go in (the
    analyzer keeps it to move the stop lines and lamp boxes as the camera drifts)."""
    ctx = BuildContext(camera, zones, frame_wh or camera.scene.reference_size, clock, crop_models)
    if shared is not None:
        ctx._shared = shared
    specs = rule_specs()
    wanted = [k for k in specs if getattr(camera.rules, k, None) is not None]
    order: list[str] = []

    def visit(key: str, path: tuple[str, ...] = ()) -> None:
        if key in order or key not in wanted:
            return
        if key in path:
            raise ValueError(f"rules: {' -> '.join((*path, key))} depend on each other")
        for dep in specs[key].after:
            visit(dep, (*path, key))
        order.append(key)

    for key in wanted:
        visit(key)
    rules: list[Rule] = []
    traffic: list[int] = []
    for key in order:
        rule = specs[key].build(ctx, getattr(camera.rules, key))
        if rule is None:
            continue
        ctx.built[key] = rule
        if specs[key].category == "traffic":
            traffic.append(len(rules))
        rules.append(rule)
    plates = getattr(camera.rules, "plates", None)
    if plates is not None and traffic:
        from edge.plates import PlateCropper, WithPlates  # loads a model: only when configured

        cropper = PlateCropper(plates, crop_models)
        motion = ctx.shared("vehicle_motion", lambda: None)
        rules = [WithPlates(r, cropper, motion) if i in traffic else r for i, r in enumerate(rules)]
    return rules
