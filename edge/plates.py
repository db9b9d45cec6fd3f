"""Licence plates for traffic evidence: the plate region cut from the vehicle's best frame.

`VehicleMotion` keeps, per vehicle, the crop of the frame where its box was largest (nearest the
camera: the plate is most legible there). When a traffic rule reports a vehicle, `PlateCropper`
runs `license_plate_yolov8n.onnx` on that crop (and on the crop of the moment, if they differ) and
adds the best plate as a ("plate", image) evidence file. Text reading (OCR) is not done here.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from edge.config import PlateConfig
from edge.crops import cut
from edge.rules import Observation, Rule, Violation
from edge.rules.base import EvidenceImage
from edge.rules.traffic import VehicleMotion
from edge.secondary import CropDetector, RunnerFactory

PLATE_MIN_HEIGHT = 64  # evidence crops are enlarged to at least this height


class PlateCropper:
    def __init__(self, config: PlateConfig, runners: RunnerFactory | None = None) -> None:
        self.config = config
        self.detector = CropDetector(config.model, config.input_size, config.confidence, runners=runners)

    def best_plate(self, crops: list[np.ndarray]) -> tuple[np.ndarray, float] | None:
        best: tuple[np.ndarray, float] | None = None
        for crop in crops:
            if crop is None or crop.size == 0:
                continue
            h, w = crop.shape[:2]
            for det in self.detector(crop, (0, 0, w, h)):
                if best is None or det.confidence > best[1]:
                    best = (cut(crop, det.box, margin=0.15, min_height=PLATE_MIN_HEIGHT), det.confidence)
        return best

    def attach(self, violation: Violation, crops: list[np.ndarray]) -> Violation:
        found = self.best_plate(crops)
        if found is None:
            return dataclasses.replace(violation, details={**violation.details, "plate_found": False})
        image, confidence = found
        return dataclasses.replace(
            violation,
            images=violation.images + (EvidenceImage("plate", image),),
            details={**violation.details, "plate_found": True, "plate_confidence": round(confidence, 3)},
        )


class WithPlates:
    """Adds the offender's plate crop (best frame of its track) to a traffic rule's violations."""

    def __init__(self, rule: Rule, plates: PlateCropper, motion: VehicleMotion | None) -> None:
        self.rule = rule
        self.plates = plates
        self.motion = motion
        self.board = getattr(rule, "board", None)

    def update(self, obs: Observation) -> list[Violation]:
        out = []
        for v in self.rule.update(obs):
            crops = []
            veh = self.motion.by_track(v.offenders[0].track_id) if v.offenders and self.motion else None
            if veh is not None and veh.best_crop is not None:
                crops.append(veh.best_crop)
            if obs.image is not None and v.offenders:
                crops.append(cut(obs.image, v.offenders[0].box, margin=0.1))
            out.append(self.plates.attach(v, crops))
        return out
