"""Licence plates for traffic evidence: the plate region cut from the vehicle's frames, and its text.

`VehicleMotion` keeps, per vehicle, the crop of the frame where its box was largest (nearest the
camera: the plate is most legible there). `WithPlates` also samples a few more crops of each
vehicle while it is tracked (at most one per `SAMPLE_SECONDS`), so the plate is read on several
frames: of the large ones (at least `LARGE_SHARE` of the largest box) the sharpest, since the
largest frame is often the one where the vehicle moves fastest across the view (motion blur). When a traffic rule reports a vehicle, `PlateCropper` runs
`license_plate_yolov8n.onnx` on those crops and on the crop of the moment, reads the text of every
plate found (`edge.plate_text`, on the node's inference workers when it has a pool) and votes per
vehicle; the sharpest, most confident plate becomes the ("plate", image) evidence file. Without the
recogniser installed, plates are cropped but not read (logged once).
"""

from __future__ import annotations

import dataclasses
import logging
from collections import OrderedDict
from typing import Any

import numpy as np

from edge.config import PlateConfig
from edge.crops import cut
from edge.plate_text import (
    PlateRead,
    PlateReader,
    PlateVote,
    TextLineFinder,
    TextLineModel,
    default_line_model,
    default_model,
    local_reader,
)
from edge.rules import Observation, Rule, Violation
from edge.rules.base import EvidenceImage
from edge.rules.traffic import VehicleMotion
from edge.secondary import CropDetector, RunnerFactory

log = logging.getLogger(__name__)

PLATE_MIN_HEIGHT = 64  # evidence crops are enlarged to at least this height
SAMPLE_SECONDS = 0.5  # at most one extra crop of a vehicle per this many seconds
SAMPLES = 3  # extra crops read per vehicle: the sharpest of the large ones
CANDIDATES = 2 * SAMPLES  # the largest crops kept per vehicle to choose them from
LARGE_SHARE = 0.6  # a crop is "large" with at least this share of the vehicle's largest box area
SHARPNESS_HEIGHT = 96  # px: crops are compared for sharpness at this height
VOTES_KEPT = 256  # vehicles whose plate votes are remembered (oldest dropped)


def sharpness(image: np.ndarray) -> float:
    """Variance of the Laplacian of the crop scaled to `SHARPNESS_HEIGHT`: high for crisp
    edges, low for motion blur or focus blur; comparable across crop sizes."""
    import cv2

    if image is None or image.size == 0:
        return 0.0
    gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image
    k = SHARPNESS_HEIGHT / max(1, gray.shape[0])
    gray = cv2.resize(gray, (max(1, round(gray.shape[1] * k)), SHARPNESS_HEIGHT), interpolation=cv2.INTER_AREA)
    return float(cv2.Laplacian(gray, cv2.CV_64F).var())


def sharpest_large(kept: list[tuple[float, float, np.ndarray]], n: int = SAMPLES) -> list[np.ndarray]:
    """Of (area, sharpness, crop) samples, the `n` sharpest among the large ones (area at least
    `LARGE_SHARE` of the largest): nearest the camera and least blurred first."""
    if not kept:
        return []
    largest = max(a for a, _, _ in kept)
    large = [k for k in kept if k[0] >= LARGE_SHARE * largest]
    return [c for _, _, c in sorted(large, key=lambda k: -k[1])[:n]]


def _pool_reader(runners: RunnerFactory | None) -> PlateReader | None:
    """The plate recogniser on the node's inference pool when `runners` is its `crop_models`
    (every camera shares its workers), else a local session; None without the package."""
    from edge.inference import InferencePool

    pool = getattr(runners, "__self__", None)
    path = default_model()
    if isinstance(pool, InferencePool) and path is not None:
        make: Any = lambda: TextLineModel(path)  # noqa: E731 - the pool's factory
        lines = default_line_model()
        finder = None
        if lines is not None:
            make_finder: Any = lambda: TextLineFinder(lines)  # noqa: E731
            finder = pool.runner(f"plate-lines@{lines.name}", make_finder)
        return PlateReader(pool.runner(f"plate-text@{path.name}", make), line_finder=finder)
    return local_reader()


def _sharpest_plate(found: list[tuple[np.ndarray, float]]) -> np.ndarray:
    """Of (plate image, detector confidence), the sharpest one whose confidence is >= 0.8 of the best."""
    best = max(c for _, c in found)
    return max((p for p in found if p[1] >= 0.8 * best), key=lambda p: sharpness(p[0]))[0]


class PlateCropper:
    def __init__(self, config: PlateConfig, runners: RunnerFactory | None = None, read_text: bool = True) -> None:
        self.config = config
        self.detector = CropDetector(config.model, config.input_size, config.confidence, runners=runners)
        self.reader = _pool_reader(runners) if read_text else None

    def plates(self, crops: list[np.ndarray]) -> list[tuple[np.ndarray, float]]:
        """The most confident plate of each crop: (plate image, detector confidence)."""
        out = []
        for crop in crops:
            if crop is None or crop.size == 0:
                continue
            h, w = crop.shape[:2]
            dets = self.detector(crop, (0, 0, w, h))
            if dets:
                det = max(dets, key=lambda d: d.confidence)
                out.append((cut(crop, det.box, margin=0.15, min_height=PLATE_MIN_HEIGHT), det.confidence))
        return out

    def best_plate(self, crops: list[np.ndarray]) -> tuple[np.ndarray, float] | None:
        found = self.plates(crops)
        return max(found, key=lambda p: p[1]) if found else None

    def attach(self, violation: Violation, crops: list[np.ndarray], vote: PlateVote | None = None) -> Violation:
        found = self.plates(crops)
        if not found:
            return dataclasses.replace(violation, details={**violation.details, "plate_found": False})
        image, confidence = max(found, key=lambda p: p[1])
        details: dict[str, Any] = {"plate_found": True, "plate_confidence": round(confidence, 3)}
        if self.reader is not None:
            vote = vote if vote is not None else PlateVote()
            reads = [(self.reader.read(img), img) for img, _ in found]
            for r, _ in reads:
                vote.add(r)
            result = vote.result()
            if result.readable:  # the evidence shows a plate that reads as the voted text
                image = max((p for p in reads if p[0].text == result.text), key=lambda p: p[0].confidence)[1]
            else:  # the sharpest of the plates the detector is nearly as sure of
                image = _sharpest_plate(found)
            details.update(
                plate_text=result.text,
                plate_text_confidence=result.confidence,
                plate_lines=result.lines,
                plate_reads=len(vote.reads),
            )
            if violation.offenders:
                details["plate_track"] = violation.offenders[0].track_id
        return dataclasses.replace(
            violation,
            images=violation.images + (EvidenceImage("plate", image),),
            details={**violation.details, **details},
        )


class WithPlates:
    """Adds the offender's plate crop and text (several frames of its track) to a traffic rule's
    violations."""

    def __init__(self, rule: Rule, plates: PlateCropper, motion: VehicleMotion | None) -> None:
        self.rule = rule
        self.plates = plates
        self.motion = motion
        self.board = getattr(rule, "board", None)
        # vehicle id -> (last sample time, [(area, sharpness, crop)]) and vehicle id -> its plate votes
        self._samples: OrderedDict[int, tuple[float, list[tuple[float, float, np.ndarray]]]] = OrderedDict()
        self._votes: OrderedDict[int, PlateVote] = OrderedDict()

    def _sample(self, obs: Observation) -> None:
        if self.motion is None or obs.image is None or self.plates.reader is None:
            return
        for veh in self.motion.current:
            last, kept = self._samples.get(veh.vid, (-1e9, []))
            if obs.t - last < SAMPLE_SECONDS:
                continue
            x1, y1, x2, y2 = (float(v) for v in veh.box)
            area = (x2 - x1) * (y2 - y1)
            if len(kept) >= CANDIDATES and area <= min(a for a, _, _ in kept):
                continue
            crop = cut(obs.image, veh.box, margin=0.1)
            kept = sorted([*kept, (area, sharpness(crop), crop)], key=lambda p: -p[0])[:CANDIDATES]
            self._samples[veh.vid] = (obs.t, kept)
            self._samples.move_to_end(veh.vid)
        while len(self._samples) > VOTES_KEPT:
            self._samples.popitem(last=False)

    def update(self, obs: Observation) -> list[Violation]:
        violations = self.rule.update(obs)
        self._sample(obs)
        return self._with_plates(violations, obs.image)

    def flush(self, t: float) -> list[Violation]:
        """The wrapped rule's held acts at the end of the stream, with the plates sampled so far."""
        from edge.rules.base import flush_rule

        return self._with_plates(flush_rule(self.rule, t), None)

    def _with_plates(self, violations: list[Violation], image: np.ndarray | None) -> list[Violation]:
        out = []
        for v in violations:
            crops = []
            veh = self.motion.by_track(v.offenders[0].track_id) if v.offenders and self.motion else None
            vote = None
            if veh is not None:
                if veh.best_crop is not None:
                    crops.append(veh.best_crop)
                crops += sharpest_large(self._samples.pop(veh.vid, (0.0, []))[1])
                vote = self._votes.setdefault(veh.vid, PlateVote())
                self._votes.move_to_end(veh.vid)
                while len(self._votes) > VOTES_KEPT:
                    self._votes.popitem(last=False)
            if image is not None and v.offenders:
                crops.append(cut(image, v.offenders[0].box, margin=0.1))
            out.append(self.plates.attach(v, crops, vote))
        return out


__all__ = ["PlateCropper", "PlateRead", "WithPlates", "read_images"]


def read_images(paths: list[str], input_size: int = 640, crop: bool = False) -> tuple[list[dict[str, Any]], bool]:
    """`python -m edge plates IMAGE...`: each image's plates (detected on the whole image, or the
    image taken as one plate crop with `crop`), one dict per image; the bool says all were read."""
    import cv2

    config = PlateConfig(input_size=input_size)
    detector = None if crop else CropDetector(config.model, config.input_size, config.confidence)
    reader = local_reader()
    if reader is None:
        from contract.configfile import ConfigError

        raise ConfigError("plate text needs the rapidocr package (pip install 'ioc-edge[plates]')")
    out: list[dict[str, Any]] = []
    ok = True
    for path in paths:
        image = cv2.imread(path)
        if image is None:
            out.append({"image": path, "error": "not an image file (or unreadable)"})
            ok = False
            continue
        h, w = image.shape[:2]
        if detector is None:
            boxes = [((0.0, 0.0, float(w), float(h)), 1.0)]
        else:
            boxes = [(d.box, d.confidence) for d in detector(image, (0, 0, w, h))]
        plates: list[dict[str, Any]] = []
        for box, det_conf in sorted(boxes, key=lambda b: b[0][0]):
            img = image if detector is None else cut(image, box, margin=0.15, min_height=PLATE_MIN_HEIGHT)
            r = reader.read(img)
            plates.append(
                {
                    "text": r.text,
                    "confidence": r.confidence,
                    "lines": r.lines,
                    "box": [round(float(v), 1) for v in box],
                    "detector_confidence": round(float(det_conf), 3),
                    **({"reason": r.reason} if r.reason else {}),
                }
            )
        out.append({"image": path, "width": w, "height": h, "plates": plates})
    return out, ok
