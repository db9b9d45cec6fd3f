"""Riding without a helmet: heads from the helmet model, each judged as the head of one rider of a
tracked motorcycle, decided per rider by agreement over the track.

The helmet model finds heads, pedestrians' and neighbours' included, and on a crop of dense
traffic a head over a bike is often another bike's rider. So a head is judged only as the head of
a person seated on the bike being checked: its centre in the top part of that person's box
(`head_owner`). Heads no seated person owns are not evidence either way. Across the checks of a
track (`checks_per_track`, `check_interval_s` apart, never per frame) the heads are kept apart per
rider by where they sit on the bike (driver and pillion), and a rider is reported when at least
`min_votes` checks read that rider's head "without helmet" and no check read it "with helmet"
(`max_with_votes`: one helmeted reading of the same head is doubt, and doubt raises nothing; the
helmeted driver does not clear the bare-headed child behind). One event per motorcycle; the
evidence carries the head crop.

Riders carry their vehicle (edge.rules.traffic.VehicleMotion): a motorcycle whose box dropped (a
detector miss, or the bike mostly below the frame) is still checked while its bound rider is seen,
on the region predicted from the rider's box joined with the riders' own boxes.

Small heads (a pillion passenger's head is ~10 px at 640x480): the rider crop's model input is
chosen so that an expected head (HEAD_SHARE of the region's height) reaches `head_target` pixels
of model input, between `input_size` and `max_input_size`; a head under `min_head_share` of the
frame height does not vote "without" (too few pixels to tell), though a helmet read on it still
clears its rider. Sizes are shares of the frame height, not pixels (the old pixel keys
`min_box_height` / `min_head_height` still load: pixels of the scene's reference frame).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
from pydantic import Field, model_validator

from contract.events import Category
from edge.crops import CropDetection, clip_box, cut
from edge.geometry import PolygonZone, box_iou
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
    min_votes: int = Field(3, ge=1, description="checks that read one rider's head 'without helmet' to decide")
    # 0: one 'with helmet' reading of a rider's head clears that rider for the track. At 2 of 3
    # (min_share 0.6) a rider in a green open-face helmet on the Cilacap clip was accused (the head
    # model misread the helmet twice; the evidence crop shows it plainly).
    max_with_votes: int = Field(
        0, ge=0, description="a rider whose head was read 'with helmet' more often than this is never reported"
    )
    min_share: float = Field(0.75, gt=0, le=1, description="share of a rider's votes 'without helmet' to decide")
    # A 'without helmet' reading is looked at again in other views of the same crop (mirrored; at
    # ~1.4x the model input, or 1/1.4x above max_input_size; both): it stands only if no view reads
    # that head 'with helmet' and one confirms it. The Hai Phong rider in a black full-face helmet read 'without' in 3 checks of 3
    # at the crop's own input; a mirrored or larger view read 'with' in 2 of them.
    confirm_views: int = Field(
        3, ge=0, le=3, description="other views a 'without helmet' reading must survive (0: none, 3: all)"
    )
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
NOT_CONFIRMED = "unconfirmed"  # a 'without' reading no other view of the crop confirmed
TWO_WHEELERS = ("motorcycle", "bicycle")
HEAD_MIN_HEIGHT = 96
# A seated rider's head is about this share of the rider region (head top to wheels): ~0.25 m of ~1.6 m.
HEAD_SHARE = 0.15


# A head belongs to a seated person when its centre lies in the top HEAD_ZONE of the person's box
# (a little above it too: boxes are cut at the hair) and across it, and it is not half the person tall.
HEAD_ZONE = 0.35


@dataclass
class _Rider:
    """One rider's head on one motorcycle track, as the checks read it."""

    rel: np.ndarray  # head centre in the vehicle box, as shares of its width and height
    without: int = 0
    with_: int = 0
    confidences: list[float] = field(default_factory=list)
    best: tuple[float, np.ndarray] | None = None  # (confidence, head crop) of the best 'without' reading


@dataclass
class _Votes:
    checks: int = 0
    last_check: float = -1e9
    reported: bool = False
    riders: list[_Rider] = field(default_factory=list)

    @property
    def without(self) -> int:
        return sum(r.without for r in self.riders)

    @property
    def with_(self) -> int:
        return sum(r.with_ for r in self.riders)


def seated_people(moto: np.ndarray, people: np.ndarray) -> list[np.ndarray]:
    """The people seated on a motorcycle: over its box, their feet inside it, their top above its middle."""
    x1, y1, x2, y2 = (float(v) for v in moto)
    w, h = x2 - x1, y2 - y1
    out = []
    for p in people:
        px1, py1, px2, py2 = (float(v) for v in p)
        overlap = max(0.0, min(x2, px2) - max(x1, px1))
        seated = overlap >= 0.5 * (px2 - px1) and y1 - 0.2 * h <= py2 <= y2 + 0.1 * h and py1 < y1 + 0.5 * h
        if seated and (px2 - px1) <= 2.0 * w:
            out.append(np.asarray(p, np.float32))
    return out


def over_bike(person: np.ndarray, bike: np.ndarray, share: float = 0.2) -> bool:
    """A person's body over a two-wheeler loosely (a `share` of their width over it, feet within
    its height): could be riding it, as a pillion seen beside the driver is."""
    x1, y1, x2, y2 = (float(v) for v in bike)
    px1, py1, px2, py2 = (float(v) for v in person)
    h = y2 - y1
    overlap = max(0.0, min(x2, px2) - max(x1, px1))
    return overlap >= share * (px2 - px1) and y1 - 0.2 * h <= py2 <= y2 + 0.1 * h and py1 < y1 + 0.5 * h


def rider_region(moto: np.ndarray, people: np.ndarray) -> np.ndarray:
    """The motorcycle's box joined with the people seated on it (their feet inside its box)."""
    out = np.array([float(v) for v in moto], np.float32)
    for p in seated_people(moto, people):
        out = np.array([min(out[0], p[0]), min(out[1], p[1]), max(out[2], p[2]), max(out[3], p[3])], np.float32)
    return out


def rider_heads(moto: np.ndarray, heads: list[CropDetection]) -> list[CropDetection]:
    """Heads over the motorcycle, above its middle (the association before heads had owners; the
    benchmarks count found heads with it)."""
    x1, y1, x2, y2 = (float(v) for v in moto)
    pad = 0.15 * (x2 - x1)
    out = []
    for head in heads:
        cx = (head.box[0] + head.box[2]) / 2
        if x1 - pad <= cx <= x2 + pad and head.box[3] <= y1 + 0.5 * (y2 - y1):
            out.append(head)
    return out


def head_owner(head: CropDetection, riders: list[np.ndarray]) -> int | None:
    """The index of the seated person whose head this is, or None: its centre across the person's
    box and in its top HEAD_ZONE, the head at most half the person's height; the nearest such."""
    hx1, hy1, hx2, hy2 = head.box
    hx, hy, hh = (hx1 + hx2) / 2, (hy1 + hy2) / 2, hy2 - hy1
    best, best_d = None, 1e9
    for j, (px1, py1, px2, py2) in enumerate(riders):
        pw, ph = float(px2 - px1), float(py2 - py1)
        if pw <= 0 or ph <= 0 or hh > 0.5 * ph:
            continue
        if not (px1 - 0.1 * pw <= hx <= px2 + 0.1 * pw and py1 - 0.15 * ph <= hy <= py1 + HEAD_ZONE * ph):
            continue
        d = abs(hx - (px1 + px2) / 2) / pw + abs(hy - py1) / ph
        if d < best_d:
            best, best_d = j, d
    return best


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
        # When a list: each check appended as a dict (benchmarks and probes read it).
        self.trace: list[dict] | None = None

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
        # Every two-wheeler seen: a rider over two of them could be either's (see _check).
        bikes = [np.asarray(dets.xyxy[i], np.float32) for i in range(len(dets)) if dets.class_name(i) in TWO_WHEELERS]
        bikes += [v.box for v in vehicles if v.class_name in TWO_WHEELERS]
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
            violation = self._check(obs, veh, people, bikes, votes, frame_h)
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
        self, obs: Observation, veh: Vehicle, people: np.ndarray, bikes: list[np.ndarray], votes: _Votes,
        frame_h: float,
    ) -> Violation | None:
        image = obs.image
        assert image is not None
        riders = seated_people(veh.box, people)
        # A rider whose body is also over another two-wheeler (a pillion seen beside the driver
        # over the next bike, dense queues) could be either bike's: their head may clear a rider,
        # never accuse one (the event would name the wrong bike and plate).
        others = [b for b in bikes if box_iou(b, veh.box) < 0.5]
        unsure = [any(over_bike(r, b) for b in others) for r in riders]
        region = rider_region(veh.box, people)
        # What of it the frame shows: a bike mostly below the frame edge leaves its riders.
        rx1, ry1, rx2, ry2 = clip_box(region, image.shape[:2])
        if ry2 - ry1 < self.min_rider * frame_h or rx2 <= rx1:
            return None  # too small to tell (not a check: it may come closer)
        if not riders:
            return None  # no rider seen on it: no head could be judged as a rider's (it may come)
        votes.checks += 1
        votes.last_check = obs.t
        # The whole region, not only the band where heads are: with the bike and bodies around
        # them the model finds more heads (Hanoi rider crops, docs/benchmarks.md).
        crop = clip_box(region, image.shape[:2], margin=0.1)
        size = self.input_size((crop[3] - crop[1], crop[2] - crop[0]), float(ry2 - ry1))
        found = self._detector(size)(image, crop)
        # This check's reading of each rider's head: 'with' wins over 'without' on one rider.
        readings: dict[int, CropDetection] = {}
        for head in found:
            owner = head_owner(head, riders)
            if owner is None:
                continue  # not the head of anyone seated on this bike: a neighbour's, a pedestrian's
            small = head.box[3] - head.box[1] < self.min_head * frame_h
            if head.label == WITHOUT and (small or unsure[owner]):
                continue  # too few pixels to call bare, or perhaps another bike's rider
            k = self._rider(votes, veh.box, head)
            prev = readings.get(k)
            if prev is None or (prev.label == WITHOUT and head.label != WITHOUT) or (
                prev.label == head.label and head.confidence > prev.confidence
            ):
                readings[k] = head
        for k, head in list(readings.items()):
            if head.label == WITHOUT and self.config.confirm_views:
                readings[k] = self._confirm(image, crop, size, head)
        if self.trace is not None:
            self.trace.append({
                "t": round(obs.t, 3), "vehicle": veh.vid, "box": debug_box(veh.box), "size": size, "crop": list(crop),
                "riders": [debug_box(r) for r in riders], "unsure": unsure,
                "heads": [(h.label, [round(float(v), 1) for v in h.box], round(h.confidence, 3)) for h in found],
                "readings": {k: (h.label, round(h.confidence, 3)) for k, h in readings.items()},
            })
        for k, head in readings.items():
            rider = votes.riders[k]
            if head.label == NOT_CONFIRMED:
                continue
            if head.label == WITHOUT:
                rider.without += 1
                rider.confidences.append(head.confidence)
                if rider.best is None or head.confidence > rider.best[0]:
                    rider.best = (head.confidence, cut(image, head.box, margin=0.3))
            else:
                rider.with_ += 1
        cfg = self.config
        bare = [
            r for r in votes.riders
            if r.best is not None and r.without >= cfg.min_votes and r.with_ <= cfg.max_with_votes
            and r.without / (r.without + r.with_) >= cfg.min_share
        ]
        if not bare:
            return None
        votes.reported = True
        if self.motion.continues(veh, self._reported):
            return None  # the same rider, lost and found again under a new id
        self._reported.add(veh.vid)
        worst = max(bare, key=lambda r: (r.without, float(np.mean(r.confidences))))
        assert worst.best is not None
        total = worst.without + worst.with_
        confidence = round(float(np.mean(worst.confidences)) * worst.without / total, 4)
        return Violation(
            type=NO_HELMET.id,
            started_at=veh.first_t,
            ended_at=obs.t,
            confidence=confidence,
            offenders=(veh.offender(),),
            zone=self.zone,
            details={
                "votes_without": worst.without, "votes_with": worst.with_, "checks": votes.checks,
                "riders_without": len(bare), "riders_judged": len(votes.riders),
            },
            images=(EvidenceImage("crop", worst.best[1], min_height=HEAD_MIN_HEIGHT),),
        )

    def _confirm(self, image: np.ndarray, crop: tuple[int, int, int, int], size: int, head: CropDetection) -> CropDetection:
        """The 'without helmet' reading of `head` looked at again in other views of the crop
        (mirrored at the same input; at another scale; both): 'with helmet' when any view reads
        that head so (IoU >= 0.3), unchanged when one reads it 'without', else not a reading (its
        label becomes NOT_CONFIRMED: it neither votes nor clears)."""
        x1, y1, x2, y2 = crop
        mirrored = np.ascontiguousarray(image[y1:y2, x1:x2][:, ::-1])
        w = x2 - x1
        # another scale: ~1.4x the input, or ~1/1.4 where that would pass max_input_size (a view
        # never costs more than the largest first look)
        other = 32 * int(np.ceil(1.4 * size / 32))
        if other > self.config.max_input_size:
            other = max(64, 32 * int(round(size / 1.4 / 32)))
        views = [(True, size), (False, other), (True, other)][: self.config.confirm_views]
        confirmed = False
        helmets: list[CropDetection] = []
        target = np.array(head.box, np.float32)
        for flip, side in views:
            if flip:
                found = [
                    CropDetection(h.label, (x1 + w - h.box[2], y1 + h.box[1], x1 + w - h.box[0], y1 + h.box[3]), h.confidence)
                    for h in self._detector(side)(mirrored, (0, 0, w, y2 - y1))
                ]
            else:
                found = self._detector(side)(image, crop)
            same = [h for h in found if box_iou(np.array(h.box, np.float32), target) >= 0.3]
            helmets += [h for h in same if h.label != WITHOUT]
            confirmed = confirmed or any(h.label == WITHOUT for h in same)
        if helmets:
            best = max(helmets, key=lambda h: h.confidence)
            return CropDetection(best.label, head.box, best.confidence)
        return head if confirmed else CropDetection(NOT_CONFIRMED, head.box, head.confidence)

    @staticmethod
    def _rider(votes: _Votes, box: np.ndarray, head: CropDetection) -> int:
        """Which rider of the track this head is: the one whose head sat at the same place on the
        bike (within 0.75 head heights), else a new one."""
        x1, y1, x2, y2 = (float(v) for v in box)
        w, h = max(x2 - x1, 1.0), max(y2 - y1, 1.0)
        hx, hy = (head.box[0] + head.box[2]) / 2, (head.box[1] + head.box[3]) / 2
        rel = np.array([(hx - x1) / w, (hy - y1) / h], np.float32)
        hh = max(head.box[3] - head.box[1], 1.0)
        best, best_d = None, 0.75 * hh
        for k, r in enumerate(votes.riders):
            d = float(np.hypot((rel[0] - r.rel[0]) * w, (rel[1] - r.rel[1]) * h))
            if d <= best_d:
                best, best_d = k, d
        if best is None:
            votes.riders.append(_Rider(rel))
            return len(votes.riders) - 1
        r = votes.riders[best]
        r.rel = 0.5 * (r.rel + rel)  # follows the rider as the view of the bike changes
        return best


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
