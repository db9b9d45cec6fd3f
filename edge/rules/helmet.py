"""Riding without a helmet: heads from the helmet model, associated with the riders of tracked
motorcycles, decided by a vote over the track.

The helmet model finds heads, pedestrians' included, so only heads that sit on a motorcycle count:
the model runs on the rider region (the motorcycle's box joined with the people seated on it) and a
head counts when its centre lies over the motorcycle and above its middle. A track is checked a few
times (`checks_per_track`, `check_interval_s` apart), never per frame; it is reported once when at
least `min_votes` checks saw a head and a `min_share` of those saw one without a helmet. The
evidence carries the head crop.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
from pydantic import Field

from contract.events import Category
from edge.crops import CropDetection, clip_box, cut
from edge.geometry import PolygonZone
from edge.rules.base import (
    BuildContext,
    EvidenceImage,
    Observation,
    RuleSpec,
    Texts,
    Violation,
    ViolationKind,
    debug_box,
    register,
)
from edge.rules.traffic import Vehicle, VehicleMotion, vehicle_motion
from edge.scene import ZoneId, _Model

if TYPE_CHECKING:
    from edge.secondary import CropDetector, RunnerFactory

NO_HELMET = ViolationKind(
    "no_helmet",
    Category.TRAFFIC,
    title=Texts("Không đội mũ bảo hiểm", "Riding without a helmet"),
    subject=Texts("người điều khiển hoặc người ngồi trên xe mô tô, xe gắn máy", "a motorcyclist or passenger"),
    lead=Texts(
        "Camera {camera} ghi nhận {subject} không đội mũ bảo hiểm tại {place}.",
        "Camera {camera} recorded {subject} riding without a helmet at {place}.",
    ),
    names_vehicle=False,
)


class NoHelmetConfig(_Model):
    model: str = Field("helmet_yolo12m.onnx", description="head detector: With Helmet / Without Helmet")
    input_size: int = Field(160, ge=64, le=640, multiple_of=32, description="square input for rider crops")
    confidence: float = Field(0.35, gt=0, lt=1)
    checks_per_track: int = Field(5, ge=1, le=50, description="crops analysed per motorcycle track at most")
    check_interval_s: float = Field(0.4, gt=0)
    min_votes: int = Field(3, ge=1)
    min_share: float = Field(0.6, gt=0, le=1, description="share of votes 'without helmet' to decide")
    min_box_height: float = Field(40, gt=0, description="smaller motorcycles (pixels) are not checked")
    min_head_height: float = Field(18, gt=0, description="smaller heads (pixels) do not vote: too few pixels to tell")
    zone: ZoneId | None = None


WITHOUT = "Without Helmet"
HEAD_MIN_HEIGHT = 96


@dataclass
class _Votes:
    checks: int = 0
    last_check: float = -1e9
    without: int = 0
    with_: int = 0
    best: tuple[float, np.ndarray] | None = None  # (confidence, head crop) of the best 'without' head
    reported: bool = False
    confidences: list[float] = field(default_factory=list)


def rider_region(moto: np.ndarray, people: np.ndarray) -> np.ndarray:
    """The motorcycle's box joined with the people seated on it (their feet inside its box)."""
    x1, y1, x2, y2 = (float(v) for v in moto)
    w, h = x2 - x1, y2 - y1
    out = np.array([x1, y1, x2, y2], np.float32)
    for p in people:
        px1, py1, px2, py2 = (float(v) for v in p)
        overlap = max(0.0, min(x2, px2) - max(x1, px1))
        seated = overlap >= 0.5 * (px2 - px1) and y1 - 0.2 * h <= py2 <= y2 + 0.1 * h and py1 < y1 + 0.5 * h
        if seated and (px2 - px1) <= 2.0 * w:
            out = np.array([min(out[0], px1), min(out[1], py1), max(out[2], px2), max(out[3], py2)], np.float32)
    return out


def rider_heads(moto: np.ndarray, heads: list[CropDetection]) -> list[CropDetection]:
    """Heads over the motorcycle, above its middle: its riders' (not a pedestrian's beside it)."""
    x1, y1, x2, y2 = (float(v) for v in moto)
    pad = 0.15 * (x2 - x1)
    out = []
    for head in heads:
        cx = (head.box[0] + head.box[2]) / 2
        if x1 - pad <= cx <= x2 + pad and head.box[3] <= y1 + 0.5 * (y2 - y1):
            out.append(head)
    return out


class NoHelmetRule:
    def __init__(
        self, config: NoHelmetConfig, motion: VehicleMotion, zone: PolygonZone | None = None,
        detector: CropDetector | None = None,
        runners: RunnerFactory | None = None,
    ) -> None:
        self.config = config
        self.motion = motion
        self.zone = zone
        if detector is None:
            from edge.secondary import CropDetector  # the model runtime: loaded when a camera uses the rule

            detector = CropDetector(config.model, config.input_size, config.confidence, runners=runners)
        self.detector = detector
        self._votes: dict[int, _Votes] = {}
        self._reported: set[int] = set()

    def update(self, obs: Observation) -> list[Violation]:
        vehicles = self.motion.update(obs)
        if obs.image is None:
            return []
        # Every person detected, tracked or not: a rider is often too occluded to hold a track.
        dets = obs.detections if obs.detections is not None else obs.tracks
        people = np.array(
            [dets.xyxy[i] for i in range(len(dets)) if dets.class_name(i) == "person"], np.float32
        ).reshape(-1, 4)
        out: list[Violation] = []
        for veh in vehicles:
            if veh.class_name != "motorcycle" or float(veh.box[3] - veh.box[1]) < self.config.min_box_height:
                continue
            if self.zone is not None and not self.zone.contains(veh.point[None, :])[0]:
                continue
            votes = self._votes.setdefault(veh.vid, _Votes())
            if votes.reported or votes.checks >= self.config.checks_per_track:
                continue
            if obs.t - votes.last_check < self.config.check_interval_s:
                continue
            violation = self._check(obs, veh, people, votes)
            if violation is not None:
                out.append(violation)
        live = set(self.motion.vehicles)
        self._votes = {k: v for k, v in self._votes.items() if k in live}
        self._reported &= self.motion.relevant()
        return out

    def debug_state(self) -> dict:
        """The helmet votes of each motorcycle checked so far."""
        votes = []
        for vid, v in sorted(self._votes.items()):
            veh = self.motion.vehicles.get(vid)
            votes.append({
                "vehicle": vid, "track": veh.track_id if veh else None, "box": debug_box(veh.box) if veh else None,
                "checks": v.checks, "without": v.without, "with": v.with_, "reported": v.reported,
            })
        return {"rule": "no_helmet", "votes": votes}

    def _check(self, obs: Observation, veh: Vehicle, people: np.ndarray, votes: _Votes) -> Violation | None:
        image = obs.image
        assert image is not None
        votes.checks += 1
        votes.last_check = obs.t
        region = rider_region(veh.box, people)
        crop = clip_box(region, image.shape[:2], margin=0.1)
        heads = [
            h for h in rider_heads(veh.box, self.detector(image, crop))
            if h.box[3] - h.box[1] >= self.config.min_head_height
        ]
        if not heads:
            return None
        bare = [h for h in heads if h.label == WITHOUT]
        if bare:
            votes.without += 1
            head = max(bare, key=lambda h: h.confidence)
            votes.confidences.append(head.confidence)
            if votes.best is None or head.confidence > votes.best[0]:
                votes.best = (head.confidence, cut(image, head.box, margin=0.3))
        else:
            votes.with_ += 1
        total = votes.without + votes.with_
        if total < self.config.min_votes or votes.without / total < self.config.min_share or votes.best is None:
            return None
        votes.reported = True
        if self.motion.continues(veh, self._reported):
            return None  # the same rider, lost and found again under a new id
        self._reported.add(veh.vid)
        confidence = round(float(np.mean(votes.confidences)) * votes.without / total, 4)
        return Violation(
            type=NO_HELMET.id,
            started_at=veh.first_t,
            ended_at=obs.t,
            confidence=confidence,
            offenders=(veh.offender(),),
            zone=self.zone,
            details={"votes_without": votes.without, "votes_with": votes.with_, "checks": votes.checks},
            images=(EvidenceImage("crop", votes.best[1], min_height=HEAD_MIN_HEIGHT),),
        )


def _build(ctx: BuildContext, cfg: NoHelmetConfig) -> NoHelmetRule:
    zone = ctx.zones.get(cfg.zone) if cfg.zone else None
    return NoHelmetRule(cfg, vehicle_motion(ctx), zone, runners=ctx.crop_models)


register(
    RuleSpec(
        key="no_helmet",
        config=NoHelmetConfig,
        kinds=(NO_HELMET,),
        build=_build,
        description="a motorcyclist or passenger without a helmet (head model on rider crops, voted per track)",
        order=26,
        module=__name__,
    )
)
