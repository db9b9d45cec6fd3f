"""Scene rules: tracked objects + scene + time in, violations out. Pure: no video, network or disk.

A rule keeps its own per-track state and reports each act once. Times are seconds on the camera's
clock (the frame's pts); the pipeline turns them into UTC.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from contract.events import ViolationType
from edge.detections import TrackedObjects
from edge.geometry import PolygonZone


@dataclass(frozen=True, slots=True)
class Offender:
    track_id: int
    class_name: str
    box: tuple[float, float, float, float]
    confidence: float


@dataclass(frozen=True)
class Violation:
    type: ViolationType
    started_at: float  # camera-clock seconds
    ended_at: float
    confidence: float
    offenders: tuple[Offender, ...]
    zone: PolygonZone | None = None
    details: dict[str, float | int | str | bool] = field(default_factory=dict)


class Rule(Protocol):
    def update(self, tracks: TrackedObjects, t: float) -> list[Violation]: ...


def box_tuple(box: np.ndarray) -> tuple[float, float, float, float]:
    return (round(float(box[0]), 1), round(float(box[1]), 1), round(float(box[2]), 1), round(float(box[3]), 1))
