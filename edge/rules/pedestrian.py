"""Pedestrian on the carriageway: a person walking or standing in the roadway outside a crossing.

A person's ground point (bottom centre of the box) inside one of the carriageway `zones` and not in
a `crossings` zone for `min_seconds` makes one event per person. Riders are not pedestrians: a
person whose box sits on a detected two-wheeler (its feet inside the bike's box, the boxes
overlapping by `rider_overlap` of the person's box) is skipped on that frame. A tracker id switch
on someone who has not moved does not make a second event.

This rule is also the worked example of a rule plug-in: this module, its test and a camera config
are all it takes (see `edge.rules.base`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from pydantic import Field

from contract.events import Category
from edge.geometry import PolygonZone, box_iou
from edge.rules.base import Observation, Offender, RuleSpec, Texts, Violation, ViolationKind, box_tuple, register
from edge.scene import ZoneId, _Model

PEDESTRIAN_ON_CARRIAGEWAY = ViolationKind(
    "pedestrian_on_carriageway",
    Category.TRAFFIC,
    title=Texts("Người đi bộ đi vào phần đường xe chạy", "Pedestrian on the carriageway"),
    subject=Texts("người đi bộ", "a pedestrian"),
    lead=Texts(
        "Camera {camera} ghi nhận {subject} đi vào phần đường dành cho xe chạy, ngoài nơi dành cho người đi bộ "
        "qua đường{duration} tại {place}.",
        "Camera {camera} recorded {subject} on the carriageway outside a pedestrian crossing{duration} at {place}.",
    ),
    names_vehicle=False,
)
TWO_WHEELERS = ("motorcycle", "bicycle")
SAME_PERSON_IOU = 0.5


class PedestrianOnCarriagewayConfig(_Model):
    zones: list[ZoneId] = Field(min_length=1, description="carriageway zones (scene.zones) where people may not walk")
    crossings: list[ZoneId] = Field(default_factory=list, description="pedestrian crossings inside them (allowed)")
    min_seconds: float = Field(3.0, gt=0, description="in the carriageway this long (crossing diagonally takes less)")
    person_classes: list[str] = Field(default_factory=lambda: ["person"], min_length=1)
    rider_overlap: float = Field(
        0.3, gt=0, le=1, description="a person whose box overlaps a two-wheeler's this much (share of theirs) rides it"
    )
    forget_after_seconds: float = Field(2.0, gt=0, description="a person unseen this long has gone")


@dataclass
class _Walker:
    since: float | None  # in the carriageway since (None: not in it now)
    last_seen: float
    box: np.ndarray
    zone: PolygonZone
    confidences: list[float] = field(default_factory=list)
    reported: bool = False


def riding(people: np.ndarray, bikes: np.ndarray, min_overlap: float) -> np.ndarray:
    """Which of the (N, 4) person boxes sit on one of the (M, 4) two-wheeler boxes: feet inside the
    bike's box and the boxes overlapping by `min_overlap` of the person's area. One array op."""
    if len(people) == 0 or len(bikes) == 0:
        return np.zeros(len(people), bool)
    p, b = people[:, None, :], bikes[None, :, :]
    iw = np.clip(np.minimum(p[..., 2], b[..., 2]) - np.maximum(p[..., 0], b[..., 0]), 0, None)
    ih = np.clip(np.minimum(p[..., 3], b[..., 3]) - np.maximum(p[..., 1], b[..., 1]), 0, None)
    area = np.maximum((p[..., 2] - p[..., 0]) * (p[..., 3] - p[..., 1]), 1e-6)
    feet_x, feet_y = (p[..., 0] + p[..., 2]) / 2, p[..., 3]
    feet_in = (feet_x >= b[..., 0]) & (feet_x <= b[..., 2]) & (feet_y >= b[..., 1]) & (feet_y <= b[..., 3] + 0.1 * (b[..., 3] - b[..., 1]))
    return ((iw * ih / area >= min_overlap) & feet_in).any(axis=1)


class PedestrianOnCarriagewayRule:
    def __init__(self, config: PedestrianOnCarriagewayConfig, zones: list[PolygonZone]) -> None:
        self.config = config
        self.zones = [z for z in zones if z.id in set(config.zones)]
        self.crossings = [z for z in zones if z.id in set(config.crossings)]
        self.people = set(config.person_classes)
        self._walkers: dict[int, _Walker] = {}
        self._reported: list[tuple[np.ndarray, float]] = []  # (box, t) of reported people, for id switches

    def update(self, obs: Observation) -> list[Violation]:
        tracks, t, cfg = obs.tracks, obs.t, self.config
        names = tracks.class_names()
        person = np.isin(names, list(self.people)) if len(tracks) else np.zeros(0, bool)
        dets = obs.detections if obs.detections is not None else tracks
        det_names = dets.class_names()
        bikes = dets.xyxy[np.isin(det_names, TWO_WHEELERS)] if len(dets) else np.zeros((0, 4), np.float32)
        idx = np.nonzero(person)[0]
        boxes = tracks.xyxy[idx]
        ground = tracks.ground_points()[idx] if len(idx) else np.zeros((0, 2), np.float32)
        on_bike = riding(boxes, bikes, cfg.rider_overlap)
        in_zone = np.stack([z.contains(ground) for z in self.zones]) if self.zones else np.zeros((0, len(idx)), bool)
        crossing = np.zeros(len(idx), bool)
        for z in self.crossings:
            crossing |= z.contains(ground)
        out: list[Violation] = []
        for k, i in enumerate(idx):
            tid = int(tracks.track_id[i])
            zone_hits: list[int] = np.nonzero(in_zone[:, k])[0].tolist() if len(self.zones) else []
            walker = self._walkers.get(tid)
            if bool(on_bike[k]) or bool(crossing[k]) or not zone_hits:
                if walker is not None:  # on the kerb, on a crossing or riding: the clock stops
                    walker.since, walker.last_seen = None, t
                continue
            if walker is None:
                walker = self._walkers[tid] = _Walker(t, t, boxes[k].copy(), self.zones[zone_hits[0]])
            if walker.since is None:
                walker.since = t
            walker.last_seen, walker.box = t, boxes[k].copy()
            walker.confidences.append(float(tracks.confidence[i]))
            if walker.reported or t - walker.since < cfg.min_seconds:
                continue
            walker.reported = True
            if any(box_iou(b, walker.box) >= SAME_PERSON_IOU for b, _ in self._reported):
                continue  # the same person, still there, under a new track id
            self._reported.append((walker.box.copy(), t))
            out.append(
                Violation(
                    type=PEDESTRIAN_ON_CARRIAGEWAY.id,
                    started_at=walker.since,
                    ended_at=t,
                    confidence=round(float(np.mean(walker.confidences[-20:])), 4),
                    offenders=(Offender(tid, str(names[i]), box_tuple(walker.box), float(tracks.confidence[i])),),
                    zone=walker.zone,
                    details={"on_carriageway_seconds": round(t - walker.since, 2)},
                )
            )
        self._walkers = {k: w for k, w in self._walkers.items() if t - w.last_seen <= cfg.forget_after_seconds}
        self._reported = [(b, rt) for b, rt in self._reported if t - rt < 60.0]
        return out

    def debug_state(self) -> dict:
        """People in the carriageway outside a crossing: since how long (against min_seconds)."""
        return {
            "rule": "pedestrian_on_carriageway",
            "dwell": [
                {"track": tid, "zone": w.zone.id, "box": list(box_tuple(w.box)),
                 "seconds": round(w.last_seen - w.since, 2) if w.since is not None else None,
                 "limit": self.config.min_seconds, "reported": w.reported}
                for tid, w in sorted(self._walkers.items())
            ],
        }


register(
    RuleSpec(
        key="pedestrian_on_carriageway",
        config=PedestrianOnCarriagewayConfig,
        kinds=(PEDESTRIAN_ON_CARRIAGEWAY,),
        build=lambda ctx, cfg: PedestrianOnCarriagewayRule(cfg, ctx.zone_list),
        description="a person in the carriageway outside a pedestrian crossing",
        order=27,
        module=__name__,
    )
)
