"""Stationary objects confirmed from repeated low-confidence detections at one place.

A scooter parked all day at the image edge, half cut off, is detected in a share of the frames
at 0.26-0.34: below the tracker's activation confidence, and never in enough consecutive frames,
so ByteTrack never starts a track; static change takes it as background because it was there
from the start. Neither the sidewalk nor the stopping rule ever sees it.

Frigate's answer for parked cars is the anchor here: an object that stays put is kept by its
position, not by the detector's certainty in each frame. This memory is keyed by PLACE (the IoU of
boxes over time, not track ids): detections the tracker did not take (vehicle classes by default,
at or above a floor) that recur at one place in a large enough share of the analysed frames over
a window of seconds (a hit share, not consecutive hits: detectors flicker) become a candidate;
before promotion one closer look runs the detector again on an upscaled crop around it and must
find the same class family there with a higher confidence (a road marking read as a car at 0.3
is not a car at twice the size). A confirmed object then reaches the rules as a track of its own
(stable id, class by vote, box by median) on every frame, seen or not that frame, until it has
not been seen for a while or moves away from its place. Its `since` (TrackedSince) is the first
hit at the place, so a dwell clock counts from when it was first seen, not from its promotion:
an object there from the first frame has dwelled since the first frame.

Cost: the memory is a few boxes per place; the closer looks are one detector run each, at most
one a second per camera, two per candidate (one look can be lucky: a road marking seen up close at some
crop sizes is a car in ~10% of the frames; two must agree, a second apart), cached while it stays
put (a rejected candidate is looked at again only after `closer_look_retry_s`).
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from edge.detections import VEHICLES, Detections, TrackedObjects
from edge.geometry import box_iou
from edge.rules.traffic import BIKES, seated

if TYPE_CHECKING:
    from edge.config import StationaryConfig

# Track ids of confirmed stationary objects start here: far above what the tracker's counters
# reach (ObjectTracker's ids grow by a few per new object), still inside a 32-bit integer.
STATIONARY_ID_BASE = 1_000_000_000


def class_family(name: str) -> str:
    """The families a closer look must agree on: a car seen closer as a truck is still a vehicle."""
    return "vehicle" if name in VEHICLES else name


class TrackedSince(TrackedObjects):
    """Confirmed tracks plus, per track, since when (camera seconds) the object has been at its
    place; NaN where unknown (the tracker's own tracks: a rule then counts from its first frame)."""

    __slots__ = ("since",)
    if TYPE_CHECKING:
        since: np.ndarray

    def __init__(self, tracks: TrackedObjects, since: np.ndarray) -> None:
        TrackedObjects.__init__(self, tracks.xyxy, tracks.confidence, tracks.class_id, tracks.track_id, tracks.names)
        object.__setattr__(self, "since", np.asarray(since, np.float64))


def track_since(tracks: Detections, i: int, default: float) -> float:
    """Since when track i has been where it is: the stationary memory's first hit at its place,
    else `default` (the frame the rule first sees it)."""
    since = getattr(tracks, "since", None)
    if since is None or not np.isfinite(since[i]):
        return default
    return min(float(since[i]), default)


@dataclass(frozen=True)
class StationaryParams:
    min_confidence: float = 0.2  # the floor; the detector's own confidence floor applies first
    window_s: float = 5.0  # the hit share is measured over this window; a candidate is at least this old
    min_hit_share: float = 0.3  # share of the window's analysed frames with a hit at the place
    same_place_iou: float = 0.5  # a detection this close to a place's box is a hit there
    forget_s: float = 5.0  # a place without a hit this long is free again (a confirmed object demoted)
    classes: frozenset[str] = VEHICLES
    closer_look: bool = True
    closer_look_context: float = 8.0  # the crop's side, in box sizes (the detector then upscales it)
    closer_look_iou: float = 0.3  # the closer look's box must overlap the place this much
    # One look can be lucky (a road marking up close is a car now and then): this many must agree,
    # on frames at least closer_look_gap_s apart; one that finds nothing rejects the candidate.
    closer_looks: int = 2
    closer_look_gap_s: float = 1.0
    closer_look_retry_s: float = 30.0  # a rejected candidate that stays put is looked at again after this
    # Per camera, at most one closer look this often (a busy scene's candidates wait their turn):
    # the stage's worst case is one detector run a second, not one a frame.
    look_interval_s: float = 1.0

    @classmethod
    def of(cls, cfg: StationaryConfig) -> StationaryParams:
        return cls(
            min_confidence=cfg.min_confidence,
            window_s=cfg.window_s,
            min_hit_share=cfg.min_hit_share,
            forget_s=cfg.forget_s,
            classes=frozenset(cfg.classes),
            closer_look=cfg.closer_look,
        )


@dataclass
class _Hit:
    t: float
    box: np.ndarray
    confidence: float
    class_id: int


@dataclass
class _Place:
    origin: np.ndarray  # where it was first seen: a median box drifting off it means it moved
    box: np.ndarray  # median of the hits in the window
    since: float  # first hit at this place
    last_hit: float
    hits: deque[_Hit] = field(default_factory=deque)
    track_id: int | None = None  # set once confirmed
    rejected_at: float | None = None  # the last closer look found nothing there
    looks: int = 0
    passed: int = 0  # closer looks in a row that found it
    looked_at: float | None = None

    def class_vote(self) -> int:
        return Counter(h.class_id for h in self.hits).most_common(1)[0][0]

    def confidence(self) -> float:
        return float(np.median([h.confidence for h in self.hits]))


# A detector as the pipeline holds it (YoloDetector or InferencePool): callable on a BGR image.
Detector = Callable[[np.ndarray], Detections]


class StationaryMemory:
    """Per camera: places with recurring untracked detections; confirmed ones join the tracks."""

    def __init__(self, params: StationaryParams, detector: Detector | None = None) -> None:
        self.params = params
        self.detector = detector if params.closer_look else None
        self.places: list[_Place] = []
        self._frames: deque[float] = deque()  # analysed frame times in the window
        self._next_id = 0
        self.looks = 0  # closer-look detector runs, for the cost report
        self._last_look: float | None = None
        self.look_seconds = 0.0

    def update(self, detections: Detections, tracks: TrackedObjects, image: np.ndarray | None, t: float) -> TrackedSince:
        p = self.params
        self._frames.append(t)
        while self._frames and self._frames[0] < t - p.window_s:
            self._frames.popleft()
        self._observe(detections, tracks, t)
        for place in self.places:
            if place.track_id is not None or not self._ready(place, t):
                continue
            if self.detector is not None:
                if place.rejected_at is not None and t - place.rejected_at < p.closer_look_retry_s:
                    continue
                if place.looked_at is not None and t - place.looked_at < p.closer_look_gap_s:
                    continue
                if image is None or (self._last_look is not None and t - self._last_look < p.look_interval_s):
                    continue
                self._last_look = place.looked_at = t
                if not self._closer_look(place, detections.names, image):
                    place.rejected_at, place.passed = t, 0
                    continue
                place.passed += 1
                if place.passed < p.closer_looks:
                    continue
            place.track_id = STATIONARY_ID_BASE + self._next_id
            self._next_id += 1
        return self._merge(tracks, t)

    def confirmed(self) -> list[_Place]:
        return [pl for pl in self.places if pl.track_id is not None]

    def _observe(self, detections: Detections, tracks: TrackedObjects, t: float) -> None:
        p = self.params
        names = detections.class_names()
        people = [
            detections.xyxy[i] for i in range(len(detections))
            if names[i] == "person" and float(detections.confidence[i]) >= p.min_confidence
        ]
        # A two-wheeler with someone seated on it is waiting (a red light, a queue), not parked.
        free = [
            i for i in range(len(detections))
            if names[i] in p.classes and float(detections.confidence[i]) >= p.min_confidence
            and not self._tracked(detections.xyxy[i], tracks)
            and not (names[i] in BIKES and any(seated(person, detections.xyxy[i]) for person in people))
        ]
        taken: set[int] = set()
        for i in sorted(free, key=lambda i: -float(detections.confidence[i])):
            box = detections.xyxy[i].astype(np.float32)
            best, best_iou = None, p.same_place_iou
            for k, place in enumerate(self.places):
                iou = box_iou(place.box, box)
                if k not in taken and iou >= best_iou:
                    best, best_iou = k, iou
            hit = _Hit(t, box, float(detections.confidence[i]), int(detections.class_id[i]))
            if best is None:
                self.places.append(_Place(box.copy(), box.copy(), t, t, deque([hit])))
                taken.add(len(self.places) - 1)
                continue
            taken.add(best)
            place = self.places[best]
            place.hits.append(hit)
            place.last_hit = t
            while place.hits and place.hits[0].t < t - p.window_s:
                place.hits.popleft()
            place.box = np.median(np.stack([h.box for h in place.hits]), axis=0).astype(np.float32)
            if box_iou(place.box, place.origin) < p.same_place_iou:
                # It moved: not the object that stood here. Start over where it is now.
                self.places[best] = _Place(box.copy(), box.copy(), t, t, deque([hit]))
        self.places = [pl for pl in self.places if t - pl.last_hit <= p.forget_s]

    def _tracked(self, box: np.ndarray, tracks: TrackedObjects) -> bool:
        """The tracker already follows it (the stationary memory is for what it misses)."""
        return any(box_iou(tracks.xyxy[j], box) >= self.params.same_place_iou for j in range(len(tracks)))

    def _ready(self, place: _Place, t: float) -> bool:
        p = self.params
        if t - place.since < p.window_s - 1e-6 or not self._frames:
            return False
        recent = sum(1 for h in place.hits if h.t >= t - p.window_s)
        return recent / len(self._frames) >= p.min_hit_share

    def _closer_look(self, place: _Place, names: tuple[str, ...], image: np.ndarray) -> bool:
        """Run the detector once more on an upscaled crop around the place: the same class family
        there with a higher confidence than the hits had, or it is not promoted."""
        import time

        assert self.detector is not None
        p = self.params
        h, w = image.shape[:2]
        x0, y0, x1, y1 = (float(v) for v in place.box)
        half = max(x1 - x0, y1 - y0, 8.0) * p.closer_look_context / 2
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        cx0, cy0 = int(max(0, cx - half)), int(max(0, cy - half))
        cx1, cy1 = int(min(w, cx + half)), int(min(h, cy + half))
        if cx1 - cx0 < 4 or cy1 - cy0 < 4:
            return False
        started = time.perf_counter()
        found = self.detector(np.ascontiguousarray(image[cy0:cy1, cx0:cx1]))
        self.look_seconds += time.perf_counter() - started
        self.looks += 1
        place.looks += 1
        cid = place.class_vote()
        family = class_family(names[cid] if 0 <= cid < len(names) else str(cid))
        offset = np.array([cx0, cy0, cx0, cy0], np.float32)
        for i in range(len(found)):
            if class_family(found.class_name(i)) != family or float(found.confidence[i]) <= place.confidence():
                continue
            if box_iou(found.xyxy[i] + offset, place.box) >= p.closer_look_iou:
                return True
        return False

    def _merge(self, tracks: TrackedObjects, t: float) -> TrackedSince:
        """The tracker's tracks plus the confirmed stationary objects it does not follow now."""
        extra = [pl for pl in self.confirmed() if not self._tracked(pl.box, tracks)]
        since = np.full(len(tracks), np.nan)
        if not extra:
            return TrackedSince(tracks, since)
        merged = TrackedObjects(
            xyxy=np.concatenate([tracks.xyxy.reshape(-1, 4), np.stack([pl.box for pl in extra])]).astype(np.float32),
            confidence=np.concatenate([tracks.confidence, [pl.confidence() for pl in extra]]).astype(np.float32),
            class_id=np.concatenate([tracks.class_id, [pl.class_vote() for pl in extra]]).astype(np.int32),
            track_id=np.concatenate([tracks.track_id, [pl.track_id for pl in extra]]).astype(np.int64),
            names=tracks.names,
        )
        return TrackedSince(merged, np.concatenate([since, [pl.since for pl in extra]]))
