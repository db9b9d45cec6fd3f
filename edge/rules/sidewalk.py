"""Sidewalk encroachment: vendor furniture, goods and parked vehicles occupying a sidewalk zone.

An incident with a life: it starts when something has stayed in the zone longer than
`min_seconds` (within `active_hours`), sends an update every `update_seconds` while it lasts (how
many objects, what share of the zone they cover, since when) and ends once the zone has been free
for `end_seconds`. A vendor who stays all afternoon is one incident.

What occupies the zone: detections of furniture classes (chair, table, umbrella, bench), vehicles
at rest, and class-agnostic static changes (stalls, goods) that no person or vehicle box covers.
People walking, vehicles passing and people waiting (a person is never an occupant) are not.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import numpy as np
from pydantic import Field

from contract.events import Category
from edge.geometry import PolygonZone, box_iou
from edge.rules.base import (
    BuildContext,
    EvidenceImage,
    Mark,
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
from edge.scene import HoursRange, ZoneId, _Model
from edge.static_change import FrameHistory, RecentBoxes, Snapshot, StaticChangeDetector, StaticChangeParams
from edge.stationary import track_since

SIDEWALK_ENCROACHMENT = ViolationKind(
    "sidewalk_encroachment",
    Category.URBAN_ORDER,
    title=Texts("Buôn bán, lấn chiếm vỉa hè", "Sidewalk encroachment"),
    subject=Texts("hàng quán, bàn ghế hoặc phương tiện", "stalls, tables, chairs or vehicles"),
    lead=Texts(
        "Camera {camera} ghi nhận {subject} lấn chiếm vỉa hè{duration} tại {place}.",
        "Camera {camera} recorded {subject} occupying the sidewalk{duration} at {place}.",
    ),
    names_vehicle=False,
)


class StaticChangeConfig(_Model):
    """Class-agnostic "new static object" detection (edge/static_change.py)."""

    enabled: bool = True
    static_seconds: float = Field(2.0, gt=0, description="unchanged this long to count as a static object")
    min_area: float = Field(0.0004, ge=0, lt=1, description="smallest object, share of the frame")
    max_area: float = Field(0.08, gt=0, le=1, description="largest object, share of the frame")


class SidewalkEncroachmentConfig(_Model):
    zones: list[ZoneId] = Field(min_length=1, description="ids of sidewalk zones")
    min_seconds: float = Field(60.0, gt=0, description="an object staying longer than this encroaches")
    active_hours: list[HoursRange] | None = Field(
        None, description='local time ranges "HH:MM-HH:MM" when the rule applies; null = always'
    )
    object_classes: list[str] = Field(default_factory=lambda: ["chair", "dining table", "umbrella", "bench"])
    vehicle_classes: list[str] = Field(default_factory=lambda: ["motorcycle", "car", "bicycle"])
    still_tolerance: float = Field(0.25, gt=0, le=2, description="vehicle movement allowed, share of box height")
    end_seconds: float = Field(30.0, gt=0, description="the zone free this long ends the incident")
    update_seconds: float = Field(60.0, gt=0, description="an update event this often while it lasts")
    forget_after_seconds: float = Field(3.0, gt=0, description="an object unseen this long has gone")
    static_change: StaticChangeConfig = Field(default_factory=StaticChangeConfig)


SAME_OBJECT_IOU = 0.3
STATIC = "static_object"
# A static-change blob belongs to a zone only when most of its footprint lies inside: a blob that
# merely touches a polygon's tip (a distant queue whose bottom edge grazes it) is not in the zone.
# The footprint, not the whole box: zones are drawn on the ground and a stall or an umbrella
# rises far above the strip it stands on.
MIN_INSIDE_SHARE = 0.5


def inside_share(zone: PolygonZone, box: np.ndarray, n: int = 6) -> float:
    """Share of the box's footprint (its bottom fifth) inside the zone, on an n x n grid of points."""
    xs = np.linspace(box[0], box[2], n)
    ys = np.linspace(box[3] - 0.2 * (box[3] - box[1]), box[3], n)
    grid = np.stack(np.meshgrid(xs, ys), axis=-1).reshape(-1, 2).astype(np.float32)
    return float(zone.contains(grid).mean())


def time_stamp(local: datetime | None) -> str:
    """A picture's local time as the snapshot stamp writes it: "2026-05-04 12:00:05 (UTC+7)"."""
    if local is None:
        return ""
    off = local.utcoffset()
    minutes = round(off.total_seconds() / 60) if off is not None else 0
    sign, minutes = ("+" if minutes >= 0 else "-"), abs(minutes)
    utc = f"UTC{sign}{minutes // 60}" + (f":{minutes % 60:02d}" if minutes % 60 else "")
    return f"{local:%Y-%m-%d %H:%M:%S} ({utc})"


def first_seen_picture(
    snap: Snapshot, marks: tuple[Mark, ...], obs: Observation, clock: Callable[[float], datetime] | None
) -> EvidenceImage:
    """The frame an incident or a drop was first seen in, with the frame's local time on the label
    of the mark drawn last (no other box is drawn over it). Made once and handed out unchanged (the
    rule's own copy of the frame): every phase's JPEG is then the same bytes, which central stores
    once (it keys files by sha256)."""
    stamp = time_stamp(local_time(obs, snap.t, None, clock))
    if marks and stamp:
        last = marks[-1]
        marks = (*marks[:-1], last._replace(label=f"{last.label}  {stamp}" if last.label else stamp))
    return EvidenceImage("first_seen", snap.image.copy(), marks)


def view_lost(obs: Observation) -> bool:
    """The camera looks elsewhere (camera_moved) or this frame could not be placed in the
    reference view: the static-change rules raise nothing and learn nothing until it is back."""
    reg = obs.registration
    return reg is not None and reg.available and (reg.moved or not reg.ok)


def in_hours(
    ranges: list[str] | None, obs: Observation, t: float, clock: Callable[[float], datetime] | None = None
) -> bool:
    """Whether camera time t falls in one of the local "HH:MM-HH:MM" ranges (an overnight range
    such as 22:00-06:00 wraps) of the camera's time zone. No ranges, or no wall clock to read them
    by: always."""
    if not ranges:
        return True
    local = local_time(obs, t, None, clock)
    return local is None or within_hours(ranges, local)


def static_detector_for(cfg: StaticChangeConfig) -> StaticChangeDetector | None:
    if not cfg.enabled:
        return None
    return StaticChangeDetector(StaticChangeParams(static_seconds=cfg.static_seconds))


@dataclass
class _Occupant:
    id: int
    zone: PolygonZone
    kind: str  # "object" (furniture class), "vehicle" or STATIC
    class_name: str
    box: np.ndarray
    anchor: np.ndarray  # where a vehicle came to rest
    first_seen: float
    last_seen: float
    confidence: float
    track_id: int | None = None
    appearance: Snapshot | None = None  # the frame when it first appeared


@dataclass
class _Incident:
    zone: PolygonZone
    started_at: float
    last_occupied: float
    last_update: float
    max_objects: int
    # The frame the first occupant appeared in, its box marked and the time stamped: on every
    # phase's event, so that "when it started" stays on the report for the incident's whole life.
    first_seen: EvidenceImage | None


class SidewalkEncroachmentRule:
    def __init__(
        self,
        config: SidewalkEncroachmentConfig,
        zones: list[PolygonZone],
        *,
        static: StaticChangeDetector | None = None,
        clock: Callable[[float], datetime] | None = None,
    ) -> None:
        wanted = set(config.zones)
        self.zones = [z for z in zones if z.id in wanted]
        self.config = config
        self.clock = clock
        self.static = static if static is not None else static_detector_for(config.static_change)
        # Only as far back as a static change can date itself: each occupant keeps its own frame.
        self.history = FrameHistory(config.static_change.static_seconds + 3.0, rate=1.0)
        self.occupants: list[_Occupant] = []
        self.incidents: dict[str, _Incident] = {}
        self.recent = RecentBoxes()
        self._masks: dict[str, np.ndarray] = {}
        self._next_id = 1

    def update(self, obs: Observation) -> list[Violation]:
        cfg, t = self.config, obs.t
        if view_lost(obs):
            return []  # incidents neither start nor end while the view is elsewhere
        if obs.image is not None:
            self.history.add(Snapshot(t, obs.image, np.zeros((0, 4), np.float32), np.zeros(0, np.int64), ()))
        self._observe(obs)
        active = in_hours(cfg.active_hours, obs, t, self.clock)
        out: list[Violation] = []
        for zone in self.zones:
            here = [
                o for o in self.occupants
                if o.zone.id == zone.id and o.last_seen >= t - 1e-6 and t - o.first_seen >= cfg.min_seconds
            ]
            inc = self.incidents.get(zone.id)
            if inc is None:
                if here and active:
                    first = min(here, key=lambda o: o.first_seen)
                    picture = None
                    if first.appearance is not None:
                        mark = Mark(box_tuple(first.anchor), role="object")  # where it stood when it appeared
                        picture = first_seen_picture(first.appearance, (mark,), obs, self.clock)
                    inc = _Incident(zone, first.first_seen, t, t, len(here), picture)
                    self.incidents[zone.id] = inc
                    out.append(self._violation(inc, "start", here, obs))
                continue
            if here and active:
                inc.last_occupied = t
                inc.max_objects = max(inc.max_objects, len(here))
                if t - inc.last_update >= cfg.update_seconds:
                    inc.last_update = t
                    out.append(self._violation(inc, "update", here, obs))
            elif t - inc.last_occupied >= cfg.end_seconds or not active:
                del self.incidents[zone.id]
                out.append(self._violation(inc, "end", [], obs))
        return out

    def debug_state(self) -> dict:
        """What occupies each zone and for how long (against min_seconds), and the open incidents."""
        return {
            "rule": "sidewalk_encroachment",
            "occupants": [
                {"id": o.id, "track": o.track_id, "zone": o.zone.id, "kind": o.kind, "class": o.class_name,
                 "box": debug_box(o.box), "seconds": round(o.last_seen - o.first_seen, 2),
                 "limit": self.config.min_seconds}
                for o in self.occupants
            ],
            "incidents": [
                {"zone": z, "since": round(inc.started_at, 2), "max_objects": inc.max_objects}
                for z, inc in sorted(self.incidents.items())
            ],
        }

    def _observe(self, obs: Observation) -> None:
        """Match this frame's occupants to the ones already known; forget the long unseen."""
        cfg, t = self.config, obs.t
        found: list[tuple[str, str, np.ndarray, float, int | None, float]] = []
        tr, det = obs.tracks, obs.detections
        for i in range(len(tr)):
            if tr.class_name(i) in cfg.vehicle_classes:
                # A parked vehicle confirmed by the stationary memory has been there since its first
                # sighting (from the first frame, for one parked before the camera started).
                since = track_since(tr, i, t)
                found.append(("vehicle", tr.class_name(i), tr.xyxy[i], float(tr.confidence[i]), int(tr.track_id[i]), since))
        if det is not None:
            for i in range(len(det)):
                if det.class_name(i) in cfg.object_classes:
                    found.append(("object", det.class_name(i), det.xyxy[i], float(det.confidence[i]), None, t))
        if self.static is not None and obs.image is not None:
            h, w = obs.image.shape[:2]
            movers = [tr.xyxy[i] for i in range(len(tr)) if tr.class_name(i) == "person" or tr.class_name(i) in cfg.vehicle_classes]
            if det is not None:
                movers += [det.xyxy[i] for i in range(len(det)) if det.class_name(i) == "person" or det.class_name(i) in cfg.vehicle_classes]
            exclude = self.recent.add(t, np.asarray(movers, np.float32).reshape(-1, 4))
            self.static.update(obs.image, t, exclude, obs.registration)
            sc = cfg.static_change
            for so in self.static.objects(exclude):
                if sc.min_area * w * h <= so.area <= sc.max_area * w * h:
                    found.append((STATIC, STATIC, np.asarray(so.box, np.float32), 0.5, None, so.first_seen))
        for kind, cls, box, conf, tid, first in found:
            ground = np.array([[(box[0] + box[2]) / 2, box[3]]], np.float32)
            zone = next((z for z in self.zones if z.contains(ground)[0]), None)
            if zone is None or (kind == STATIC and inside_share(zone, box) < MIN_INSIDE_SHARE):
                continue
            occ = self._match(zone, kind, box, tid)
            if occ is None:
                self.occupants.append(
                    _Occupant(self._next_id, zone, kind, cls, box.copy(), box.copy(), first, t, conf, tid,
                              self.history.at(first))
                )
                self._next_id += 1
                continue
            # A vehicle that moves starts a new rest; so does a static-change blob, which does
            # not move at all when it is one object (a blob that creeps is a crowd of movers).
            if kind in ("vehicle", STATIC) and not self._still(occ, box):
                occ.anchor, occ.first_seen = box.copy(), t  # it moved: a new rest starts here
                occ.appearance = self.history.at(t)
            occ.box, occ.last_seen, occ.confidence = box.copy(), t, max(occ.confidence, conf)
            if tid is not None:
                occ.track_id = tid
        self.occupants = [o for o in self.occupants if t - o.last_seen <= cfg.forget_after_seconds]

    def _match(self, zone: PolygonZone, kind: str, box: np.ndarray, tid: int | None) -> _Occupant | None:
        best, best_iou = None, SAME_OBJECT_IOU
        for o in self.occupants:
            if o.zone.id != zone.id or (o.kind == "vehicle") != (kind == "vehicle"):
                continue
            if tid is not None and o.track_id == tid:
                return o
            iou = box_iou(o.box, box)
            if iou >= best_iou:
                best, best_iou = o, iou
        return best

    def _still(self, occ: _Occupant, box: np.ndarray) -> bool:
        a = np.array([(occ.anchor[0] + occ.anchor[2]) / 2, occ.anchor[3]])
        b = np.array([(box[0] + box[2]) / 2, box[3]])
        return float(np.linalg.norm(a - b)) <= self.config.still_tolerance * float(box[3] - box[1])

    def _share(self, zone: PolygonZone, boxes: list[np.ndarray], shape: tuple[int, int] | None) -> float:
        """Share of the zone covered by the union of the occupants' boxes."""
        import cv2

        if not boxes:
            return 0.0
        poly = zone.polygon.astype(np.int32)
        x0, y0 = poly.min(axis=0)
        x1, y1 = poly.max(axis=0)
        zmask = np.zeros((y1 - y0 + 1, x1 - x0 + 1), np.uint8)
        cv2.fillPoly(zmask, [poly - [x0, y0]], 1)
        occ = np.zeros_like(zmask)
        for b in boxes:
            bx0, by0 = max(0, int(b[0]) - x0), max(0, int(b[1]) - y0)
            bx1, by1 = int(b[2]) - x0, int(b[3]) - y0
            if bx1 > bx0 and by1 > by0:
                occ[by0:by1, bx0:bx1] = 1
        area = int(zmask.sum())
        return float((occ & zmask).sum()) / area if area else 0.0

    def _violation(self, inc: _Incident, phase: str, here: list[_Occupant], obs: Observation) -> Violation:
        t = obs.t
        offenders = tuple(
            Offender(o.track_id if o.track_id is not None else o.id, o.class_name,
                     box_tuple(o.box), round(o.confidence, 4))
            for o in here
        )
        share = self._share(inc.zone, [o.box for o in here], None)
        images = (inc.first_seen,) if inc.first_seen is not None else ()
        return Violation(
            type=SIDEWALK_ENCROACHMENT.id,
            started_at=inc.started_at,
            ended_at=inc.last_occupied if phase == "end" else t,
            confidence=round(float(np.mean([o.confidence for o in here])), 4) if here else 0.0,
            offenders=offenders,
            zone=inc.zone,
            details={
                "objects": len(here),
                "max_objects": inc.max_objects,
                "occupied_share": round(share, 3),
                "occupied_seconds": round((inc.last_occupied if phase == "end" else t) - inc.started_at, 1),
                "vehicles": sum(o.kind == "vehicle" for o in here),
                "static_objects": sum(o.kind == STATIC for o in here),
            },
            phase=phase,
            incident_key=inc.zone.id,
            images=images,
        )


def shared_static_detector(ctx: BuildContext, cfg: StaticChangeConfig) -> StaticChangeDetector | None:
    """One background model per camera for the urban rules whose static-change settings agree."""
    detectors = ctx.shared("static_change", dict)
    key = cfg.model_dump_json()
    if key not in detectors:
        detectors[key] = static_detector_for(cfg)
    return detectors[key]


register(
    RuleSpec(
        key="sidewalk_encroachment",
        config=SidewalkEncroachmentConfig,
        kinds=(SIDEWALK_ENCROACHMENT,),
        build=lambda ctx, cfg: SidewalkEncroachmentRule(
            cfg, ctx.zone_list, static=shared_static_detector(ctx, cfg.static_change)
        ),
        description="stalls, furniture or parked vehicles occupying a sidewalk zone (an incident with a life)",
        order=30,
        module=__name__,
    )
)
