"""Illegal stopping / parking: a vehicle stationary inside a no-stopping zone longer than allowed.

One event per vehicle visit to a zone: the clock starts when the vehicle comes to rest, creeping
forward in a queue restarts the clock but never makes a second event, and a tracker id switch on a
vehicle that has not moved (same place, same size) does not make a new one either.

Waiting for a signal is not stopping (the road traffic law exempts a stop the signal orders): in a
zone that a red-light or stop-line rule's stop line reaches, or that names its heads, time at rest
while those heads show red or amber, and for `discharge_seconds` after (the queue moving off),
does not count towards the limit. A vehicle parked there still collects its time between reds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
from pydantic import Field, model_validator

from contract.events import Category
from edge.geometry import PolygonZone, box_iou
from edge.rules.base import (
    BuildContext,
    Observation,
    Offender,
    RuleSpec,
    Texts,
    Violation,
    ViolationKind,
    box_tuple,
    debug_box,
    local_time,
    register,
    within_hours,
)

__all__ = ["IllegalStoppingConfig", "IllegalStoppingRule", "StoppingZoneRule", "within_hours"]
from edge.rules.signals import SignalBoard, SignalState, camera_signal_board
from edge.scene import VEHICLE_CLASSES, HoursRange, SignalId, ZoneId, _Model
from edge.stationary import track_since

ILLEGAL_STOPPING = ViolationKind(
    "illegal_stopping",
    Category.TRAFFIC,
    title=Texts("Dừng, đỗ xe sai quy định", "Illegal stopping or parking"),
    subject=Texts("phương tiện", "a vehicle"),
    lead=Texts(
        "Camera {camera} ghi nhận {subject} dừng, đỗ trong khu vực cấm dừng, đỗ xe{duration} tại {place}.",
        "Camera {camera} recorded {subject} stopped in a no-stopping zone{duration} at {place}.",
    ),
)


class StoppingZoneRule(_Model):
    max_stop_seconds: float | None = Field(None, gt=0, description="this zone's limit (default: the rule's)")
    allowed_hours: list[HoursRange] = Field(
        default_factory=list, description="local 'HH:MM-HH:MM' spans when stopping here is allowed (may wrap midnight)"
    )
    waits_for: list[SignalId] | None = Field(
        None,
        description="signal heads whose red or amber a vehicle here may be waiting for (default: the heads"
        " of the red-light / stop-line rules whose stop line reaches this zone; [] for none)",
    )


class IllegalStoppingConfig(_Model):
    zones: list[ZoneId] = Field(min_length=1, description="ids of no_stopping / no_parking zones")
    max_stop_seconds: float = Field(gt=0, description="stationary longer than this is a violation")
    vehicle_classes: list[str] = Field(default_factory=lambda: list(VEHICLE_CLASSES), min_length=1)
    still_tolerance: float = Field(0.25, gt=0, le=2, description="movement allowed, as a share of the box height")
    move_grace_seconds: float = Field(1.0, ge=0, description="moving for less than this does not end the stop")
    forget_after_seconds: float = Field(3.0, gt=0, description="a vehicle unseen this long has gone")
    zone_rules: dict[ZoneId, StoppingZoneRule] = Field(
        default_factory=dict, description="per-zone limit and allowed hours, by zone id"
    )
    timezone: str | None = Field(None, description="the zone of allowed_hours (default: the camera's camera.timezone)")
    discharge_seconds: float = Field(
        10.0, ge=0, description="after a red or amber ends, a waiting queue gets this long to move off"
    )

    @model_validator(mode="after")
    def _zone_rules_for_listed_zones(self) -> IllegalStoppingConfig:
        for zone_id in self.zone_rules:
            if zone_id not in self.zones:
                raise ValueError(f"zone_rules.{zone_id}: not one of zones {self.zones}")
        if self.timezone is not None:
            try:
                ZoneInfo(self.timezone)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError(f"timezone: unknown time zone {self.timezone!r}") from None
        return self


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
    waited: float = 0.0  # seconds of this rest spent waiting for a signal (not counted)
    reported: bool = False
    confidences: list[float] = field(default_factory=list)


@dataclass
class _Reported:
    """A reported stop, remembered while its vehicle is still there, to absorb id switches."""

    zone_id: str
    box: np.ndarray
    last_seen: float


class IllegalStoppingRule:
    """`clock` maps camera-clock seconds to UTC (the pipeline's); without it, allowed hours are ignored."""

    def __init__(
        self,
        config: IllegalStoppingConfig,
        zones: list[PolygonZone],
        clock: Callable[[float], datetime] | None = None,
        board: SignalBoard | None = None,
        waits_for: dict[str, list[str]] | None = None,
    ) -> None:
        wanted = set(config.zones)
        self.zones = [z for z in zones if z.id in wanted]
        self.config = config
        self.clock = clock  # fallback for observations without a wall clock (pure tests)
        self.tz = ZoneInfo(config.timezone) if config.timezone else None
        self.vehicle_classes = set(config.vehicle_classes)
        self._visits: dict[int, _Visit] = {}
        self._reported: list[_Reported] = []
        # Zone id -> the heads a vehicle at rest there may be waiting for; the board reads them.
        self.waits_for = {z: list(h) for z, h in (waits_for or {}).items() if h and z in wanted}
        if self.waits_for and board is None:
            raise ValueError("illegal_stopping: signal waits need the camera's signal board")
        self.board = board if self.waits_for else None
        self._stop_phase_at: dict[str, float] = {}  # zone id -> the last frame its heads showed red/amber

    def update(self, obs: Observation) -> list[Violation]:
        tracks, t = obs.tracks, obs.t
        if self.board is not None:
            self.board.update(t, obs.image)  # once a frame, whichever rule reads the board first
        waiting = {z.id: self._signal_wait(z.id, t) for z in self.zones}
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
                # A vehicle the stationary memory confirmed has stood here since its first sighting.
                visit = _Visit(zone, class_name, ground[i].copy(), box.copy(), track_since(tracks, i, t), t)
                self._visits[tid] = visit
            else:
                rest_began = visit.still_since
                self._follow(visit, ground[i], box, t)
                if waiting[zone.id] and visit.still_since == rest_began:
                    visit.waited += max(0.0, t - visit.last_seen)
            visit.last_seen = t
            visit.confidences.append(float(tracks.confidence[i]))
            if self._allowed_now(zone.id, obs, t):
                visit.still_since = t  # stopping is allowed now: the clock starts when the allowed hours end
                visit.waited = 0.0
            stopped = t - visit.still_since - visit.waited
            # Never while it is moving: the grace only keeps a brief jitter from restarting the clock.
            if not visit.reported and visit.moving_since is None and stopped >= self.limit(zone.id):
                visit.reported = True
                if self._already_reported(zone.id, visit.anchor_box):
                    continue
                self._reported.append(_Reported(zone.id, visit.anchor_box.copy(), t))
                out.append(self._violation(visit, tid, box, t))
        self._expire(t, seen)
        return out

    def debug_state(self) -> dict:
        """Dwell timers: each vehicle in a zone, how long at rest there against the zone's limit."""
        return {
            "rule": "illegal_stopping",
            "dwell": [
                {
                    "track": tid,
                    "zone": v.zone.id,
                    "seconds": round(v.last_seen - v.still_since - v.waited, 2),
                    "waited_for_signal": round(v.waited, 2),
                    "limit": self.limit(v.zone.id),
                    "moving": v.moving_since is not None,
                    "reported": v.reported,
                    "box": debug_box(v.anchor_box),
                }
                for tid, v in sorted(self._visits.items())
            ],
        }

    def limit(self, zone_id: str) -> float:
        zr = self.config.zone_rules.get(zone_id)
        return (
            zr.max_stop_seconds if zr is not None and zr.max_stop_seconds is not None else self.config.max_stop_seconds
        )

    def _signal_wait(self, zone_id: str, t: float) -> bool:
        """Whether a vehicle at rest in this zone may now be waiting for its signal: the heads read
        red or amber, or did within `discharge_seconds` (unreadable frames in a red phase, and the
        queue moving off after it, are covered by the same window)."""
        heads = self.waits_for.get(zone_id)
        if not heads or self.board is None:
            return False
        if self.board.combined(heads).state in (SignalState.RED, SignalState.YELLOW):
            self._stop_phase_at[zone_id] = t
            return True
        last = self._stop_phase_at.get(zone_id)
        return last is not None and 0.0 <= t - last <= self.config.discharge_seconds

    def _allowed_now(self, zone_id: str, obs: Observation, t: float) -> bool:
        zr = self.config.zone_rules.get(zone_id)
        if zr is None or not zr.allowed_hours:
            return False
        local = local_time(obs, t, self.tz, self.clock)
        return local is not None and within_hours(zr.allowed_hours, local)

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
            visit.still_since, visit.moving_since, visit.waited = t, None, 0.0

    def _violation(self, visit: _Visit, tid: int, box: np.ndarray, t: float) -> Violation:
        confidence = float(np.mean(visit.confidences)) if visit.confidences else 0.0
        return Violation(
            type=ILLEGAL_STOPPING.id,
            started_at=visit.still_since,  # when it came to rest (signal waits inside it not counted)
            ended_at=t,
            confidence=round(confidence, 4),
            offenders=(Offender(tid, visit.class_name, box_tuple(box), round(confidence, 4)),),
            zone=visit.zone,
            details={
                "stopped_seconds": round(t - visit.still_since - visit.waited, 2),
                "max_stop_seconds": self.limit(visit.zone.id),
                **({"waited_for_signal_seconds": round(visit.waited, 2)} if visit.waited else {}),
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


def line_reaches_zone(a: np.ndarray, b: np.ndarray, zone: PolygonZone, samples: int = 65) -> bool:
    """Whether the segment a-b runs into the zone (some point along it inside or on its edge)."""
    ts = np.linspace(0.0, 1.0, samples, dtype=np.float32)[:, None]
    points = a[None, :] * (1 - ts) + b[None, :] * ts
    return bool(zone.contains(points.astype(np.float32)).any())


def signal_waits(ctx: BuildContext, cfg: IllegalStoppingConfig) -> dict[str, list[str]]:
    """Per zone, the heads a vehicle at rest there may be waiting for: the zone's own `waits_for`,
    else those of every red-light / stop-line rule whose stop line reaches the zone."""
    controlled: list[tuple[str, list[str]]] = []  # (stop line id, heads)
    for key in ("red_light", "stop_line"):
        rule_cfg = getattr(ctx.camera.rules, key, None)
        if rule_cfg is not None:
            controlled.append((rule_cfg.line, list(rule_cfg.heads)))
    lines = ctx.lines() if controlled else {}
    out: dict[str, list[str]] = {}
    for zone_id in cfg.zones:
        zr = cfg.zone_rules.get(zone_id)
        if zr is not None and zr.waits_for is not None:
            out[zone_id] = list(zr.waits_for)
            continue
        zone = ctx.zones.get(zone_id)
        heads: list[str] = []
        for line_id, line_heads in controlled:
            line = lines.get(line_id)
            if zone is not None and line is not None and line_reaches_zone(line.a, line.b, zone):
                heads += [h for h in line_heads if h not in heads]
        if heads:
            out[zone_id] = heads
    return out


def _build(ctx: BuildContext, cfg: IllegalStoppingConfig) -> IllegalStoppingRule:
    waits = signal_waits(ctx, cfg)
    return IllegalStoppingRule(cfg, ctx.zone_list, board=camera_signal_board(ctx) if waits else None, waits_for=waits)


register(
    RuleSpec(
        key="illegal_stopping",
        config=IllegalStoppingConfig,
        kinds=(ILLEGAL_STOPPING,),
        build=_build,
        description="a vehicle stationary in a no-stopping zone longer than allowed",
        order=10,
        module=__name__,
    )
)
