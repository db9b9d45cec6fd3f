"""Riding without a helmet: heads from the helmet model, associated with the riders of tracked
motorcycles, decided by a vote over the track.

The helmet model finds heads, pedestrians' included, so only heads that sit on a motorcycle count:
the model runs on the rider region (the motorcycle's box joined with the people seated on it) and a
head counts when its centre lies over the motorcycle and above its middle. A track is checked a few
times (`checks_per_track`, `check_interval_s` apart), never per frame; it is reported once when at
least `min_votes` checks saw a head and a `min_share` of those saw one without a helmet. The
evidence carries the head crop.

Riders carry their vehicle (edge.rules.traffic.VehicleMotion): a motorcycle whose box dropped (a
detector miss, or the bike mostly below the frame) is still checked while its bound rider is seen,
on the region predicted from the rider's box joined with the riders' own boxes.

Small heads (a pillion passenger's head is ~10 px at 640x480): the rider crop's model input is
chosen so that an expected head (HEAD_SHARE of the region's height) reaches `head_target` pixels
of model input, between `input_size` and `max_input_size`. Sizes are shares of the frame height, not pixels (the old pixel
keys `min_box_height` / `min_head_height` still load: pixels of the scene's reference frame).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
from pydantic import Field, model_validator

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
    input_size: int = Field(160, ge=64, le=640, multiple_of=32, description="square input for rider crops (smallest)")
    max_input_size: int = Field(
        320, ge=64, le=640, multiple_of=32, description="largest input a crop of small riders is upscaled to"
    )
    # The model (trained on street scenes) finds heads best at ~12-16 px of its input; upscaled to
    # 32-48 px it finds far fewer (measured on Hanoi rider crops: docs/benchmarks.md).
    head_target: float = Field(14, ge=4, le=160, description="model-input pixels an expected head is scaled to")
    confidence: float = Field(0.35, gt=0, lt=1)
    checks_per_track: int = Field(5, ge=1, le=50, description="crops analysed per motorcycle track at most")
    check_interval_s: float = Field(0.4, gt=0)
    min_votes: int = Field(3, ge=1)
    # 0.75: a rider seen with a helmet in one check of three is in doubt, and doubt raises nothing.
    # At 0.6, 2 of 3 accused a rider in a green open-face helmet on the Cilacap clip (the head
    # model misread the helmet twice; the evidence crop shows it plainly).
    min_share: float = Field(0.75, gt=0, le=1, description="share of votes 'without helmet' to decide")
    min_rider_share: float = Field(
        0.08, gt=0, lt=1, description="smaller rider regions (bike + riders), as a share of the frame height, are not checked"
    )
    min_head_share: float = Field(
        0.018, gt=0, lt=1, description="smaller heads, as a share of the frame height, do not vote: too few pixels to tell"
    )
    # Before sizes were relative (v0.1): pixels of the scene's reference frame; when given they
    # replace the shares above (divided by the reference height), min_box_height now gating the
    # rider region as min_rider_share does.
    min_box_height: float | None = Field(None, gt=0, description="old: min_rider_share in reference-frame pixels")
    min_head_height: float | None = Field(None, gt=0, description="old: min_head_share in reference-frame pixels")
    zone: ZoneId | None = None

    @model_validator(mode="after")
    def _sizes(self) -> NoHelmetConfig:
        if self.max_input_size < self.input_size:
            raise ValueError(f"max_input_size ({self.max_input_size}) is below input_size ({self.input_size})")
        return self


WITHOUT = "Without Helmet"
HEAD_MIN_HEIGHT = 96
# A seated rider's head is about this share of the rider region (head top to wheels): ~0.25 m of ~1.6 m.
HEAD_SHARE = 0.15


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
        reference_height: float | None = None,
    ) -> None:
        self.config = config
        self.motion = motion
        self.zone = zone
        self.runners = runners
        # One detector per input size, made when a crop first needs it; a given one serves every size.
        self._fixed = detector
        self._detectors: dict[int, CropDetector] = {}
        if detector is None:
            self._detector(config.input_size)
        # Old configs' pixel sizes, as shares of the reference frame (else of the analysed frame).
        ref = reference_height
        self.min_rider = config.min_rider_share if config.min_box_height is None else config.min_box_height / (ref or 1)
        self.min_head = config.min_head_share if config.min_head_height is None else config.min_head_height / (ref or 1)
        self._pixels = ref is None and (config.min_box_height is not None or config.min_head_height is not None)
        self._votes: dict[int, _Votes] = {}
        self._reported: set[int] = set()

    @property
    def detector(self) -> CropDetector:
        return self._fixed if self._fixed is not None else self._detectors[self.config.input_size]

    def _detector(self, size: int) -> CropDetector:
        if self._fixed is not None:
            return self._fixed
        if size not in self._detectors:
            from edge.secondary import CropDetector  # the model runtime: loaded when a camera uses the rule

            self._detectors[size] = CropDetector(self.config.model, size, self.config.confidence, runners=self.runners)
        return self._detectors[size]

    def input_size(self, crop_hw: tuple[int, int], region_height: float) -> int:
        """The model input for a crop: an expected head (HEAD_SHARE of the rider region) scaled to
        `head_target` pixels, in steps of 32, between input_size and max_input_size."""
        head = max(1.0, HEAD_SHARE * region_height)
        side = max(crop_hw) * self.config.head_target / head
        size = 32 * int(np.ceil(side / 32))
        return int(min(self.config.max_input_size, max(self.config.input_size, size)))

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
        frame_h = 1.0 if self._pixels else float(obs.image.shape[0])
        for veh in vehicles:
            if veh.class_name != "motorcycle":
                continue
            if self.zone is not None and not self.zone.contains(veh.point[None, :])[0]:
                continue
            votes = self._votes.setdefault(veh.vid, _Votes())
            if votes.reported or votes.checks >= self.config.checks_per_track:
                continue
            if obs.t - votes.last_check < self.config.check_interval_s:
                continue
            violation = self._check(obs, veh, people, votes, frame_h)
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

    def _check(
        self, obs: Observation, veh: Vehicle, people: np.ndarray, votes: _Votes, frame_h: float
    ) -> Violation | None:
        image = obs.image
        assert image is not None
        region = rider_region(veh.box, people)
        # What of it the frame shows: a bike mostly below the frame edge leaves its riders.
        rx1, ry1, rx2, ry2 = clip_box(region, image.shape[:2])
        if ry2 - ry1 < self.min_rider * frame_h or rx2 <= rx1:
            return None  # too small to tell (not a check: it may come closer)
        votes.checks += 1
        votes.last_check = obs.t
        # The whole region, not only the band where heads are: with the bike and bodies around
        # them the model finds more heads (Hanoi rider crops, docs/benchmarks.md).
        crop = clip_box(region, image.shape[:2], margin=0.1)
        size = self.input_size((crop[3] - crop[1], crop[2] - crop[0]), float(ry2 - ry1))
        heads = [
            h for h in rider_heads(veh.box, self._detector(size)(image, crop))
            if h.box[3] - h.box[1] >= self.min_head * frame_h
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
    return NoHelmetRule(cfg, vehicle_motion(ctx), zone, runners=ctx.crop_models, reference_height=ctx.reference_wh[1])


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
