"""Scene rules: an observation (tracked objects, time, the frame) in, violations out.

Pure: no video I/O, network or disk. A rule keeps its own per-track state and reports each act
once. Times are seconds on the camera's clock (the frame's pts); the pipeline turns them into UTC.
Rules that read pixels (signal lamps, helmets, static-change) use `Observation.image`; the rest
ignore it, so tests can pass `image=None`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from contract.events import ViolationType
from edge.detections import Detections, TrackedObjects
from edge.geometry import PolygonZone


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
    # Extra evidence images the rule cut out (kind, BGR image), e.g. ("crop", head), ("plate", plate).
    images: tuple[tuple[str, np.ndarray], ...] = ()


class Rule(Protocol):
    def update(self, obs: Observation) -> list[Violation]: ...


def box_tuple(box: np.ndarray) -> tuple[float, float, float, float]:
    return (round(float(box[0]), 1), round(float(box[1]), 1), round(float(box[2]), 1), round(float(box[3]), 1))
