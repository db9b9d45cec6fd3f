"""What a rule is: plain data in (an observation), violations out; and how a rule plugs in.

A rule is one module under `edge/rules/` (or a package exposing the `ioc_edge.rules` entry point)
that calls `register(RuleSpec(...))` at import: its config key, its config model, the violation
types it raises (category and report texts as data) and a factory. The scene references a config
uses are declared by type (`edge.scene.ZoneId`, `LineId`, `SignalId`, `LaneId`) and checked
generically against the camera's scene (`scene_refs`). Nothing else names a rule: the camera
config's `rules` model, the build, the contract's type registry and central's report texts all
come from the specs (`edge.rules.registry`).

Pure: importing a rule module loads no model runtime, video, MQTT or database library (a test
checks it); pixels come in through `Observation.image` and time through `Observation`.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, Protocol, runtime_checkable
from zoneinfo import ZoneInfo

import numpy as np
from pydantic import BaseModel

from contract.events import Category, ViolationType, register_violation_type
from edge.detections import Detections, TrackedObjects
from edge.geometry import PolygonZone
from edge.scene import SceneRef

DEFAULT_TZ = "Asia/Ho_Chi_Minh"  # a camera without camera.timezone (pure tests) is in Vietnam

if TYPE_CHECKING:
    from edge.config import CameraConfig
    from edge.geometry import DirectedLine


@dataclass(frozen=True, slots=True)
class Offender:
    track_id: int
    class_name: str
    box: tuple[float, float, float, float]
    confidence: float


@dataclass(frozen=True)
class Observation:
    """What a rule sees of one analysed frame."""

    t: float  # camera-clock seconds
    tracks: TrackedObjects  # confirmed tracks
    image: np.ndarray | None = None  # the analysed frame, BGR; None in pure tests of track-only rules
    detections: Detections | None = None  # every detection of the frame, tracked or not
    # The wall clock of this frame (UTC) and the camera's time zone, for rules with local hours;
    # None in pure tests that have no clock (such rules then ignore their hours).
    wall_time: datetime | None = None
    tz: tzinfo | None = None
    # Where this frame lies in the camera's reference view (edge.registration.Registration);
    # None where nothing registers frames (pure tests). Zones are already mapped into the frame.
    registration: Any = None

    def utc_at(self, t: float) -> datetime | None:
        """The UTC time of camera-clock second `t` (None without a clock)."""
        if self.wall_time is None:
            return None
        return self.wall_time - timedelta(seconds=self.t - t)

    def local_at(self, t: float, tz: tzinfo | None = None) -> datetime | None:
        """The local time of camera-clock second `t` in `tz` (else the camera's zone)."""
        utc = self.utc_at(t)
        zone = tz or self.tz
        return None if utc is None else (utc.astimezone(zone) if zone is not None else utc)


class Mark(NamedTuple):
    """A box the evidence stage draws on an evidence image: the offender (red) or the object of
    the act (yellow), with a label."""

    box: tuple[float, float, float, float]
    label: str = ""
    role: Literal["offender", "object"] = "offender"


class EvidenceImage(NamedTuple):
    """A picture a rule keeps for the evidence (a head crop, the frame an object appeared in);
    the evidence stage draws its marks and encodes it. Rules never draw."""

    kind: str  # an evidence kind of the contract: "snapshot", "crop", "plate"
    image: np.ndarray  # BGR, the rule's own copy
    marks: tuple[Mark, ...] = ()
    min_height: int = 0  # the evidence stage enlarges a smaller picture to this height (a head crop)


class Moment(NamedTuple):
    """One moment of a crossing act for the composite evidence (before the line, at it, past it):
    where the offender was, what the signal showed, and the frame (a downscaled copy the rule
    kept when it happened; None in pure tests without pixels). A moment the rule never saw (the
    track began past the line) is absent from `Violation.moments`, never made up."""

    label: Literal["before", "at", "past"]
    t: float  # camera-clock seconds
    box: tuple[float, float, float, float]  # the offender, in frame pixels
    image: np.ndarray | None = None  # BGR, the frame scaled by `scale`
    scale: float = 1.0  # moment-image pixels per frame pixel
    utc: datetime | None = None  # the frame's wall clock (None without one)
    signal_state: str | None = None  # "red", "yellow", "green", "unknown"; None: no signal rule
    red_seconds: float | None = None  # how long it had been red by then


@dataclass(frozen=True)
class Overlay:
    """What the annotated snapshot shows besides the zone and the offenders: lines crossed and the
    signal head read (traffic rules)."""

    lines: tuple[tuple[str, tuple[float, float], tuple[float, float]], ...] = ()
    signal_id: str | None = None
    signal_state: str | None = None
    signal_boxes: tuple[tuple[str, tuple[int, int, int, int]], ...] = ()


def _minutes(hhmm: str) -> int:
    h, m = hhmm.split(":")
    return int(h) * 60 + int(m)


def within_hours(spans: list[str], local: datetime) -> bool:
    """Is the local time inside one of the 'HH:MM-HH:MM' spans (a span may wrap past midnight)?"""
    now = local.hour * 60 + local.minute
    for span in spans:
        a, b = (_minutes(x) for x in span.split("-"))
        if (a <= now < b) if a <= b else (now >= a or now < b):
            return True
    return False


def local_time(
    obs: Observation, t: float, tz: ZoneInfo | None, clock: Callable[[float], datetime] | None = None
) -> datetime | None:
    """Local time of camera second `t`: from the observation's wall clock and the camera's zone (or
    `tz` when the rule names one); a rule built with a `clock` (pure tests) uses that instead."""
    zone = tz or obs.tz or ZoneInfo(DEFAULT_TZ)
    if obs.wall_time is not None:
        return obs.local_at(t, zone)
    return clock(t).astimezone(zone) if clock is not None else None


@dataclass(frozen=True)
class Violation:
    type: ViolationType
    started_at: float  # camera-clock seconds
    ended_at: float
    confidence: float
    offenders: tuple[Offender, ...]
    zone: PolygonZone | None = None
    details: dict[str, float | int | str | bool] = field(default_factory=dict)
    # An incident with a life (a vendor all afternoon) reports phase start/update/end under one key;
    # a single act is a "point".
    phase: str = "point"
    incident_key: str | None = None
    # Extra evidence pictures the rule kept, e.g. a head crop, the plate, the moment of appearance.
    images: tuple[EvidenceImage, ...] = ()
    overlay: Overlay = field(default_factory=Overlay)
    # Crossing acts: the moments before / at / past the line, for the composite (edge.composite).
    moments: tuple[Moment, ...] = ()


class Rule(Protocol):
    def update(self, obs: Observation) -> list[Violation]: ...


@runtime_checkable
class Debuggable(Protocol):
    """Optional for a rule: its live state after the last `update`, as plain data (JSON-able:
    lists of {"track": id, "seconds": ..., "box": [x1, y1, x2, y2], ...}), for the debug video and
    the trace of `edge analyze --debug-video/--trace`. It must not change the rule's state. Rules
    without it show nothing; rules never draw (edge/debug_video.py does)."""

    def debug_state(self) -> dict[str, Any]: ...


@runtime_checkable
class Flushable(Protocol):
    """Optional for a rule that holds judged acts back (a crossing waiting for its "past" moment):
    `flush(t)` releases them when the stream ends, so the last seconds of a clip or of a camera's
    run lose no act. Called once, on the camera thread, after the last `update`."""

    def flush(self, t: float) -> list[Violation]: ...


def flush_rule(rule: object, t: float) -> list[Violation]:
    """A rule's held acts at the end of the stream (wrappers pass it on themselves)."""
    return rule.flush(t) if isinstance(rule, Flushable) else []


def rule_debug_state(rule: object) -> dict[str, Any] | None:
    """A rule's `debug_state()`, looking through wrappers that hold the rule as `.rule` (plates)."""
    seen = 0
    while not isinstance(rule, Debuggable) and hasattr(rule, "rule") and seen < 4:
        rule, seen = rule.rule, seen + 1
    return rule.debug_state() if isinstance(rule, Debuggable) else None


def debug_box(box: np.ndarray | tuple[float, ...]) -> list[float]:
    return [round(float(v), 1) for v in box[:4]]


def box_tuple(box: np.ndarray) -> tuple[float, float, float, float]:
    return (round(float(box[0]), 1), round(float(box[1]), 1), round(float(box[2]), 1), round(float(box[3]), 1))


# ------------------------------------------------------------------------------------ plug-ins


@dataclass(frozen=True)
class Texts:
    vi: str
    en: str


@dataclass(frozen=True)
class ViolationKind:
    """A violation type a rule raises, with the report texts central writes for it.

    `lead` is the first sentence of a report's description; placeholders: {subject}, {camera},
    {place}, {duration} (" trong 3 phút 5 giây" / " for 3 min 5 s", empty when unknown), {zone}.
    `names_vehicle`: the report's subject names the vehicle seen (and its plate) instead of
    `subject`.
    """

    type: str
    category: Category
    title: Texts
    subject: Texts
    lead: Texts
    names_vehicle: bool = True

    @property
    def id(self) -> ViolationType:
        return ViolationType(self.type)


class BuildContext:
    """What a rule factory gets: the camera config and its scene compiled to the frame's pixels,
    plus objects the rules of one camera share (one vehicle-motion model, one signal board, one
    background model), made once by the first rule that asks."""

    def __init__(
        self,
        camera: CameraConfig,
        zones: list[PolygonZone],
        frame_wh: tuple[int, int],
        clock: Callable[[float], datetime] | None = None,
        crop_models: Callable[[str, int, float], Any] | None = None,
    ) -> None:
        self.camera = camera
        # Secondary models (heads, plates) for rules that look closer at a crop: the node's shared
        # inference pool runs them (None: a local session, e.g. offline analysis).
        self.crop_models = crop_models
        self.zone_list = zones
        self.zones = {z.id: z for z in zones}
        self.frame_wh = frame_wh
        self.clock = clock
        self.built: dict[str, Rule] = {}  # rules already built, by key (for rules that defer to another)
        self._shared: dict[str, Any] = {}

    @property
    def reference_wh(self) -> tuple[int, int]:
        return self.camera.scene.reference_size

    def shared(self, key: str, factory: Callable[[], Any]) -> Any:
        if key not in self._shared:
            self._shared[key] = factory()
        return self._shared[key]

    def lines(self) -> dict[str, DirectedLine]:
        from edge.geometry import DirectedLine, scale_points

        def make() -> dict[str, DirectedLine]:
            out = {}
            for ln in self.camera.scene.lines:
                pts = scale_points(np.asarray(ln.points, np.float32), self.reference_wh, self.frame_wh)
                out[ln.id] = DirectedLine(ln.id, pts[0], pts[1])
            return out

        return self.shared("lines", make)


RuleFactory = Callable[[BuildContext, Any], "Rule | None"]


@dataclass(frozen=True)
class RuleSpec:
    """One rule plug-in. `key` is its key under a camera config's `rules:`; `config` its pydantic
    model; `kinds` the violation types it may raise; `build(ctx, cfg)` makes the rule for one
    camera (None: nothing to run, e.g. a check the scene cannot support). `after`: keys of rules
    to build first (a rule that defers to another). `check(cfg, scene)` raises ValueError for
    what types alone cannot say (e.g. speeding needs a calibration). `stage`: "traffic" rules get
    the plate stage's crops when `rules.plates` is configured."""

    key: str
    config: type[BaseModel]
    kinds: tuple[ViolationKind, ...]
    build: RuleFactory
    description: str = ""
    after: tuple[str, ...] = ()
    check: Callable[[Any, Any], None] | None = None
    order: int = 100  # rules run in this order each frame (then by key)
    module: str = ""

    @property
    def category(self) -> Category:
        return self.kinds[0].category


_SPECS: dict[str, RuleSpec] = {}


def register(spec: RuleSpec) -> RuleSpec:
    """Add a rule plug-in (called at import by its module). Its violation types go into the
    contract's type registry, so events of them validate on both sides."""
    if not spec.kinds:
        raise ValueError(f"rule {spec.key!r} declares no violation types")
    known = _SPECS.get(spec.key)
    if known is not None and known.module != spec.module:
        raise ValueError(f"rule key {spec.key!r} is registered twice ({known.module} and {spec.module})")
    for kind in spec.kinds:
        register_violation_type(kind.type, kind.category)
    _SPECS[spec.key] = spec
    return spec


def registered_specs() -> dict[str, RuleSpec]:
    return {s.key: s for s in sorted(_SPECS.values(), key=lambda s: (s.order, s.key))}


# --------------------------------------------------------------------------- scene references


def scene_refs(model: BaseModel, prefix: str = "") -> Iterator[tuple[str, str, str]]:
    """(key path, scene kind, id) for every field of `model` typed as a scene reference, nested
    models, lists and dict keys included: `red_light.line`, `illegal_stopping.zones[0]`,
    `forbidden_turn.turns[1].entry`, `illegal_stopping.zone_rules.<id>`."""
    for name, info in type(model).model_fields.items():
        yield from _walk(info.annotation, info.metadata, getattr(model, name), f"{prefix}{name}")


def _walk(annotation: Any, metadata: Iterable[Any], value: Any, path: str) -> Iterator[tuple[str, str, str]]:
    marker = next((m for m in metadata if isinstance(m, SceneRef)), None)
    if marker is not None and isinstance(value, str):
        yield path, marker.kind, value
        return
    if value is None:
        return
    if isinstance(value, BaseModel):
        yield from scene_refs(value, path + ".")
        return
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Annotated:
        yield from _walk(args[0], args[1:], value, path)
    elif origin in (typing.Union, types.UnionType):
        for arg in args:
            if arg is not type(None):
                yield from _walk(arg, (), value, path)
    elif origin in (list, tuple) and isinstance(value, list | tuple):
        item = args[0] if args else Any
        for i, v in enumerate(value):
            yield from _walk(item, (), v, f"{path}[{i}]")
    elif origin is dict and isinstance(value, dict) and args:
        for k, v in value.items():
            yield from _walk(args[0], (), k, f"{path}.{k}")
            yield from _walk(args[1], (), v, f"{path}.{k}")
