"""Littering / dumping: an object left in a watched zone, still there after whoever left it has gone.

Objects come from the detector where COCO has a class (bottle, cup, bags, suitcase) and from the
class-agnostic static-change detector for everything else (rubbish bags, cartons). The owner is the
person or vehicle nearest the object when it appeared; the event waits until the owner has been
away for `left_seconds` with the object still lying there. Something picked up again before that
is forgotten; a parked vehicle is excluded (its own box masks the static change); a shadow or a
lighting change does not pass the static-change test. Evidence: the scene now (the object left,
its owner gone) and a crop of it, plus the drop (`first_seen`): the frame in which the owner stood
nearest the object as it appeared, both marked, the time stamped.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
from pydantic import Field

from contract.events import Category
from edge.geometry import PolygonZone, box_iou
from edge.rules.base import (
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
    register,
)
from edge.rules.sidewalk import (
    MIN_INSIDE_SHARE,
    StaticChangeConfig,
    first_seen_picture,
    in_hours,
    inside_share,
    shared_static_detector,
    static_detector_for,
    view_lost,
)
from edge.scene import HoursRange, ZoneId, _Model
from edge.static_change import FrameHistory, RecentBoxes, Snapshot, StaticChangeDetector

LITTERING = ViolationKind(
    "littering",
    Category.SANITATION,
    title=Texts("Đổ rác thải trái nơi quy định", "Littering or illegal dumping"),
    subject=Texts("một đối tượng", "someone"),
    lead=Texts(
        "Camera {camera} ghi nhận {subject} để lại rác thải, vật dụng không đúng nơi quy định tại {place}.",
        "Camera {camera} recorded {subject} leaving rubbish or objects where it is not allowed at {place}.",
    ),
    names_vehicle=False,
)


class LitteringConfig(_Model):
    zones: list[ZoneId] = Field(min_length=1, description="ids of watched zones")
    left_seconds: float = Field(5.0, gt=0, description="the object still there this long after its owner left")
    static_seconds: float = Field(2.0, gt=0, description="lying still this long makes it an object")
    active_hours: list[HoursRange] | None = None
    object_classes: list[str] = Field(default_factory=lambda: ["bottle", "cup", "backpack", "handbag", "suitcase"])
    owner_classes: list[str] = Field(default_factory=lambda: ["person", "motorcycle", "bicycle", "car"])
    owner_radius: float = Field(0.6, gt=0, description="owner near the object: gap at most this x owner height")
    require_owner: bool = Field(True, description="ignore objects nobody was near when they appeared")
    forget_after_seconds: float = Field(2.0, gt=0, description="an object unseen (and not hidden) this long is gone")
    static_change: StaticChangeConfig = Field(default_factory=StaticChangeConfig)

SAME_OBJECT_IOU = 0.2
UNKNOWN = "unknown_object"


@dataclass
class _Owner:
    track_id: int
    class_name: str
    box: np.ndarray
    confidence: float


@dataclass
class _Item:
    id: int
    zone: PolygonZone
    class_name: str
    box: np.ndarray
    first_seen: float
    last_seen: float
    confidence: float
    owner: _Owner | None
    appearance: Snapshot | None
    owner_last_near: float
    reported: bool = False
    sources: set[str] = field(default_factory=set)


def _gap(obj: np.ndarray, box: np.ndarray) -> float:
    """Pixels between two boxes (0 when they overlap)."""
    dx = max(0.0, float(max(obj[0], box[0]) - min(obj[2], box[2])))
    dy = max(0.0, float(max(obj[1], box[1]) - min(obj[3], box[3])))
    return float(np.hypot(dx, dy))


def _box(b: np.ndarray) -> tuple[float, float, float, float]:
    return (float(b[0]), float(b[1]), float(b[2]), float(b[3]))


def _containment(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over the smaller box."""
    iw = max(0.0, float(min(a[2], b[2]) - max(a[0], b[0])))
    ih = max(0.0, float(min(a[3], b[3]) - max(a[1], b[1])))
    smaller = min(float((a[2] - a[0]) * (a[3] - a[1])), float((b[2] - b[0]) * (b[3] - b[1])))
    return iw * ih / smaller if smaller > 0 else 0.0


class LitteringRule:
    def __init__(
        self,
        config: LitteringConfig,
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
        self.history = FrameHistory(config.static_change.static_seconds + 8.0)
        self.items: list[_Item] = []
        self.recent = RecentBoxes()
        self.forgotten = 0  # objects that went away before they became litter (picked up)
        self._next_id = 1

    def update(self, obs: Observation) -> list[Violation]:
        cfg, t = self.config, obs.t
        if view_lost(obs):
            return []  # the view is elsewhere: what was seen before is forgotten unless seen again
        owners = self._owners(obs)
        if obs.image is not None:
            self.history.add(
                Snapshot(t, obs.image, owners[0], owners[1], owners[2])
            )
        candidates = self._candidates(obs, owners[0])
        for zone, cls, box, conf, first in candidates:
            item = self._match(zone, box)
            if item is None:
                self._new_item(zone, cls, box, conf, first, t)
                continue
            item.box, item.last_seen = box, t
            if cls != UNKNOWN:
                item.class_name, item.confidence = cls, max(item.confidence, conf)
        out: list[Violation] = []
        active = in_hours(cfg.active_hours, obs, t, self.clock)
        for item in list(self.items):
            near = self._owner_near(item, owners)
            if near:
                item.owner_last_near = t
            hidden = any(box_iou(item.box, b) > 0 or _gap(item.box, b) == 0 for b in owners[0])
            if item.last_seen < t and hidden:
                item.last_seen = t  # someone stands over it: not gone, just hidden
            if t - item.last_seen > cfg.forget_after_seconds:
                self.items.remove(item)
                if not item.reported:
                    self.forgotten += 1
                continue
            if item.reported or item.last_seen < t or not active:
                continue
            if item.owner is None and cfg.require_owner:
                continue
            if t - item.first_seen < cfg.static_seconds or t - item.owner_last_near < cfg.left_seconds:
                continue
            item.reported = True
            out.append(self._violation(item, obs))
        return out

    def debug_state(self) -> dict:
        """Candidate objects left in a zone: since when, who brought them, how long they have been away."""
        return {
            "rule": "littering",
            "items": [
                {"id": it.id, "zone": it.zone.id, "class": it.class_name, "box": debug_box(it.box),
                 "seconds": round(it.last_seen - it.first_seen, 2),
                 "owner": it.owner.track_id if it.owner else None,
                 "owner_away": round(it.last_seen - it.owner_last_near, 2) if it.owner else None,
                 "left_seconds": self.config.left_seconds, "reported": it.reported}
                for it in self.items
            ],
        }

    def _owners(self, obs: Observation) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
        tr = obs.tracks
        keep = [i for i in range(len(tr)) if tr.class_name(i) in self.config.owner_classes]
        return (
            tr.xyxy[keep].astype(np.float32).reshape(-1, 4),
            tr.track_id[keep],
            tuple(tr.class_name(i) for i in keep),
        )

    def _candidates(self, obs: Observation, owner_boxes: np.ndarray) -> list[tuple]:
        """(zone, class, box, confidence, first seen) of everything that looks left in a zone now."""
        cfg, t = self.config, obs.t
        out: list[tuple] = []
        det = obs.detections
        if det is not None:
            for i in range(len(det)):
                cls = det.class_name(i)
                if cls not in cfg.object_classes:
                    continue
                box = det.xyxy[i].astype(np.float32)
                zone = self._zone_of(box)
                if zone is not None:
                    out.append((zone, cls, box, float(det.confidence[i]), t))
        if self.static is not None and obs.image is not None:
            h, w = obs.image.shape[:2]
            exclude = owner_boxes
            if det is not None and len(det):
                # Every detected person/vehicle, tracked or not, masks its own pixels.
                keep = [i for i in range(len(det)) if det.class_name(i) in cfg.owner_classes]
                exclude = np.concatenate([owner_boxes, det.xyxy[keep].reshape(-1, 4)])
            exclude = self.recent.add(t, exclude)
            self.static.update(obs.image, t, exclude, obs.registration)
            sc = cfg.static_change
            for so in self.static.objects(exclude):
                if not (sc.min_area * w * h <= so.area <= sc.max_area * w * h):
                    continue
                box = np.asarray(so.box, np.float32)
                zone = self._zone_of(box)
                if zone is not None and inside_share(zone, box) >= MIN_INSIDE_SHARE:
                    out.append((zone, UNKNOWN, box, 0.5, so.first_seen))
        return out

    def _zone_of(self, box: np.ndarray) -> PolygonZone | None:
        centre = np.array([[(box[0] + box[2]) / 2, (box[1] + box[3]) / 2]], np.float32)
        return next((z for z in self.zones if z.contains(centre)[0]), None)

    def _match(self, zone: PolygonZone, box: np.ndarray) -> _Item | None:
        """The known object this box is: overlapping enough, or one containing the other (a blob
        grows when the person who half hid it steps away)."""
        best, best_score = None, SAME_OBJECT_IOU
        for item in self.items:
            if item.zone.id != zone.id:
                continue
            score = max(box_iou(item.box, box), 0.5 * _containment(item.box, box))
            if score >= best_score:
                best, best_score = item, score
        return best

    def _new_item(self, zone: PolygonZone, cls: str, box: np.ndarray, conf: float, first: float, t: float) -> None:
        # Who was nearest while it appeared: the snapshots from its first change until it settled.
        owner, snap, best = None, self.history.at(first), self.config.owner_radius
        for s in self.history.between(first, first + self.config.static_seconds + 1.0):
            for b, tid, cls_name in zip(s.boxes, s.track_ids, s.classes, strict=True):
                gap = _gap(box, b) / max(1.0, float(b[3] - b[1]))
                if gap <= best:
                    owner, snap, best = _Owner(int(tid), cls_name, b.copy(), 0.0), s, gap
        near_t = snap.t if owner is not None and snap is not None else -1e9
        self.items.append(_Item(self._next_id, zone, cls, box, first, t, conf, owner, snap, near_t))
        self._next_id += 1

    def _owner_near(self, item: _Item, owners: tuple[np.ndarray, np.ndarray, tuple[str, ...]]) -> bool:
        """The owner (by track id) is still within reach of the object."""
        if item.owner is None:
            return False
        for box, tid in zip(owners[0], owners[1], strict=True):
            if int(tid) == item.owner.track_id:
                return _gap(item.box, box) / max(1.0, float(box[3] - box[1])) <= self.config.owner_radius
        return False

    def _violation(self, item: _Item, obs: Observation) -> Violation:
        offenders = [Offender(item.id, item.class_name, box_tuple(item.box), round(item.confidence, 4))]
        images: list[EvidenceImage] = []
        if item.owner is not None:
            o = item.owner
            offenders.append(Offender(o.track_id, o.class_name, box_tuple(o.box), 0.0))
        if item.appearance is not None:  # the drop: the owner with the object
            images.append(first_seen_picture(item.appearance, self._appearance_marks(item), obs, self.clock))
        if obs.image is not None:
            x1, y1, x2, y2 = (int(v) for v in item.box)
            pad = max(8, (x2 - x1) // 2)
            h, w = obs.image.shape[:2]
            crop = obs.image[max(0, y1 - pad) : min(h, y2 + pad), max(0, x1 - pad) : min(w, x2 + pad)]
            if crop.size:
                images.append(EvidenceImage("crop", crop.copy()))
        return Violation(
            type=LITTERING.id,
            started_at=item.first_seen,
            ended_at=obs.t,
            confidence=round(item.confidence, 4),
            offenders=tuple(offenders),
            zone=item.zone,
            details={
                "object": item.class_name,
                "appeared_seconds_ago": round(obs.t - item.first_seen, 2),
                "owner_left_seconds_ago": round(obs.t - item.owner_last_near, 2) if item.owner else -1.0,
                "owner": item.owner.class_name if item.owner else "unknown",
            },
            images=tuple(images),
        )

    @staticmethod
    def _appearance_marks(item: _Item) -> tuple[Mark, ...]:
        """On the frame when the object appeared: the object, and who left it."""
        marks = [Mark(_box(item.box), "", "object")]
        if item.owner is not None:
            marks.append(Mark(_box(item.owner.box), f"#{item.owner.track_id} {item.owner.class_name}"))
        return tuple(marks)


register(
    RuleSpec(
        key="littering",
        config=LitteringConfig,
        kinds=(LITTERING,),
        build=lambda ctx, cfg: LitteringRule(cfg, ctx.zone_list, static=shared_static_detector(ctx, cfg.static_change)),
        description="an object left in a watched zone, still there after whoever left it has gone",
        order=31,
        module=__name__,
    )
)
