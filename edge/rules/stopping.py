"""Illegal stopping / parking: a vehicle stationary inside a no-stopping zone longer than allowed.

One event per vehicle visit to a zone: the clock starts when the vehicle comes to rest, creeping
forward in a queue restarts the clock but never makes a second event, and a tracker id switch on a
vehicle that has not moved (same place, same size) does not make a new one either.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

import numpy as np

from contract.events import ViolationType
from edge.config import IllegalStoppingConfig
from edge.geometry import PolygonZone, box_iou
from edge.rules import Observation, Offender, Violation, box_tuple

# Boxes of one parked vehicle seen under two track ids overlap at least this much.
SAME_VEHICLE_IOU = 0.5
MIN_TOLERANCE_PX = 3.0


@dataclass
class _Visit:
    """One vehicle's time in one zone."""

    zone: PolygonZone
    class_name: str
    anchor: np.ndarray  # ground point where it came to rest
    anchor_box: np.ndarray
    still_since: float
    last_seen: float
    moving_since: float | None = None
    reported: bool = False
    confidences: list[float] = field(default_factory=list)


@dataclass
class _Reported:
    """A reported stop, remembered while its vehicle is still there, to absorb id switches."""

    zone_id: str
    box: np.ndarray
    last_seen: float


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


class IllegalStoppingRule:
    """`clock` maps camera-clock seconds to UTC (the pipeline's); without it, allowed hours are ignored."""

    def __init__(
        self, config: IllegalStoppingConfig, zones: list[PolygonZone], clock: Callable[[float], datetime] | None = None
    ) -> None:
        wanted = set(config.zones)
        self.zones = [z for z in zones if z.id in wanted]
        self.config = config
        self.clock = clock
        self.tz = ZoneInfo(config.timezone)
        self.vehicle_classes = set(config.vehicle_classes)
        self._visits: dict[int, _Visit] = {}
        self._reported: list[_Reported] = []

    def update(self, obs: Observation) -> list[Violation]:
        tracks, t = obs.tracks, obs.t
        ground = tracks.ground_points()
        inside = [z.contains(ground) for z in self.zones]
        out: list[Violation] = []
        seen: set[int] = set()
        for i in range(len(tracks)):
            class_name = tracks.class_name(i)
            if class_name not in self.vehicle_classes:
                continue
            zone = next((z for z, mask in zip(self.zones, inside, strict=True) if mask[i]), None)
            tid = int(tracks.track_id[i])
            box = tracks.xyxy[i]
            self._refresh_reported(box, t)
            if zone is None:
                self._visits.pop(tid, None)  # left the zone: the visit is over
                continue
            seen.add(tid)
            visit = self._visits.get(tid)
            if visit is None or visit.zone.id != zone.id:
                visit = _Visit(zone, class_name, ground[i].copy(), box.copy(), t, t)
                self._visits[tid] = visit
            else:
                self._follow(visit, ground[i], box, t)
            visit.last_seen = t
            visit.confidences.append(float(tracks.confidence[i]))
            if self._allowed_now(zone.id, t):
                visit.still_since = t  # stopping is allowed now: the clock starts when the allowed hours end
            stopped = t - visit.still_since
            # Never while it is moving: the grace only keeps a brief jitter from restarting the clock.
            if not visit.reported and visit.moving_since is None and stopped >= self.limit(zone.id):
                visit.reported = True
                if self._already_reported(zone.id, visit.anchor_box):
                    continue
                self._reported.append(_Reported(zone.id, visit.anchor_box.copy(), t))
                out.append(self._violation(visit, tid, box, t))
        self._expire(t, seen)
        return out

    def limit(self, zone_id: str) -> float:
        zr = self.config.zone_rules.get(zone_id)
        return zr.max_stop_seconds if zr is not None and zr.max_stop_seconds is not None else self.config.max_stop_seconds

    def _allowed_now(self, zone_id: str, t: float) -> bool:
        zr = self.config.zone_rules.get(zone_id)
        if zr is None or not zr.allowed_hours or self.clock is None:
            return False
        return within_hours(zr.allowed_hours, self.clock(t).astimezone(self.tz))

    def _follow(self, visit: _Visit, point: np.ndarray, box: np.ndarray, t: float) -> None:
        tolerance = max(MIN_TOLERANCE_PX, self.config.still_tolerance * float(box[3] - box[1]))
        if np.linalg.norm(point - visit.anchor) <= tolerance:
            visit.moving_since = None
            return
        if visit.moving_since is None:
            visit.moving_since = t
        if t - visit.moving_since >= self.config.move_grace_seconds:
            # It drove on: a new rest starts where it is now (same visit, so no second event).
            visit.anchor, visit.anchor_box = point.copy(), box.copy()
            visit.still_since, visit.moving_since = t, None

    def _violation(self, visit: _Visit, tid: int, box: np.ndarray, t: float) -> Violation:
        confidence = float(np.mean(visit.confidences)) if visit.confidences else 0.0
        return Violation(
            type=ViolationType.ILLEGAL_STOPPING,
            started_at=visit.still_since,
            ended_at=t,
            confidence=round(confidence, 4),
            offenders=(Offender(tid, visit.class_name, box_tuple(box), round(confidence, 4)),),
            zone=visit.zone,
            details={
                "stopped_seconds": round(t - visit.still_since, 2),
                "max_stop_seconds": self.limit(visit.zone.id),
            },
        )

    def _already_reported(self, zone_id: str, box: np.ndarray) -> bool:
        return any(r.zone_id == zone_id and box_iou(r.box, box) >= SAME_VEHICLE_IOU for r in self._reported)

    def _refresh_reported(self, box: np.ndarray, t: float) -> None:
        for r in self._reported:
            if box_iou(r.box, box) >= SAME_VEHICLE_IOU:
                r.last_seen = t

    def _expire(self, t: float, seen: set[int]) -> None:
        horizon = t - self.config.forget_after_seconds
        for tid in [k for k, v in self._visits.items() if k not in seen and v.last_seen < horizon]:
            del self._visits[tid]
        self._reported = [r for r in self._reported if r.last_seen >= horizon]
