"""The public version of a report's images: every person and every number plate blurred.

A published picture that shows a face or a readable plate harms someone who did nothing wrong, so
this errs on the side of blurring too much:
- heads from the helmet model (`helmet_yolo12m.onnx`, with and without helmet); people from the
  COCO detector (`yolo11n.onnx`): the upper part of every person (head and shoulders); riders from
  every two-wheeler box (a rider on a bike is often boxed as the bike): its upper part and a band
  above it;
- plates from `license_plate_yolov8n.onnx`, and for every vehicle in which no plate was found, the
  part of it where a plate sits (lower middle): a plate too small or too skewed for the plate
  model is still covered;
- the plate and COCO models at their usual input size and again at twice it (camera snapshots have
  small people and plates far away), at a confidence no higher than the rules use: a missed face
  costs more than a blurred bollard.
Models through `edge.detector.YoloDetector`, weights from EDGE_DATA_DIR. The offender's plate is
blurred too: it stays readable only in the original evidence, which the console serves to staff.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

import cv2
import numpy as np

from central.config import CentralConfig

Box = tuple[int, int, int, int]

_shared: dict[tuple[str, str, str, float], PublicBlurrer] = {}
_lock = threading.Lock()

TWO_WHEELERS = frozenset({"motorcycle", "bicycle"})
VEHICLES = frozenset({"car", "bus", "truck"}) | TWO_WHEELERS
SCALES = (640, 1280)  # input long sides: the usual one and twice it
PERSON_UPPER = 0.45  # share of a person box from its top that is blurred (head, face, shoulders)


class PublicBlurrer:
    def __init__(self, head_model: str, plate_model: str, person_model: str = "yolo11n.onnx", confidence: float = 0.25) -> None:
        from contract.paths import weights_path
        from edge.detector import YoloDetector

        def at_scales(model: str, classes: list[str] | None = None, scales: tuple[int, ...] = SCALES) -> list[YoloDetector]:
            return [
                YoloDetector(weights_path(model), confidence=confidence, long_side=side, classes=classes) for side in scales
            ]

        # The head model is a large one (YOLO12m): at twice its size it would cost seconds per image;
        # small heads are covered by the person and rider boxes of the small COCO model instead.
        self.heads = at_scales(head_model, scales=SCALES[:1])
        self.plates = at_scales(plate_model)
        self.people = at_scales(person_model, ["person", *sorted(VEHICLES)])
        self._lock = threading.Lock()  # one inference at a time per session: ORT sessions are heavy

    @classmethod
    def shared(cls, config: CentralConfig) -> PublicBlurrer:
        p = config.public
        key = (p.head_model, p.plate_model, p.person_model, p.confidence)
        with _lock:
            if key not in _shared:
                _shared[key] = cls(*key)
            return _shared[key]

    def boxes(self, image: np.ndarray) -> dict[str, list[Box]]:
        """What is blurred in `image`, by reason: heads, persons (upper part), riders (two-wheelers'
        upper part), plates (found) and plate_zones (vehicles with no plate found in them)."""
        h, w = image.shape[:2]
        with self._lock:
            heads = _merge(_int_boxes(d(image).xyxy) for d in self.heads)
            plates = _merge(_int_boxes(d(image).xyxy) for d in self.plates)
            found = [d(image) for d in self.people]
        persons: list[Box] = []
        riders: list[Box] = []
        zones: list[Box] = []
        for dets in found:
            for (x1, y1, x2, y2), cls in zip(_int_boxes(dets.xyxy), dets.class_id.tolist(), strict=True):
                name = dets.names[cls]
                bh = y2 - y1
                if name == "person":
                    persons.append((x1, y1, x2, y1 + max(2, round(bh * PERSON_UPPER))))
                    continue
                if name in TWO_WHEELERS:
                    # The rider's head is at the top of a box that holds the rider, or above a box
                    # that holds only the bike.
                    riders.append((x1, max(0, y1 - round(bh * 0.4)), x2, y1 + round(bh * 0.5)))
                if not any(_inside(p, (x1, y1, x2, y2)) for p in plates):
                    bw = x2 - x1
                    zones.append((x1 + round(bw * 0.15), y1 + round(bh * 0.55), x2 - round(bw * 0.15), y2))
        clip = lambda boxes: [b for b in (_clip(b, w, h) for b in _merge([boxes])) if b is not None]  # noqa: E731
        return {
            "heads": clip(heads),
            "persons": clip(persons),
            "riders": clip(riders),
            "plates": clip(plates),
            "plate_zones": clip(zones),
        }

    def blur(self, image: np.ndarray) -> tuple[np.ndarray, dict[str, int]]:
        out = image.copy()
        found = self.boxes(image)
        h, w = out.shape[:2]
        for x1, y1, x2, y2 in (b for boxes in found.values() for b in boxes):
            # A margin: a box that is a few pixels short would leave an ear or a digit readable.
            mx, my = max(2, (x2 - x1) // 6), max(2, (y2 - y1) // 6)
            x1, y1, x2, y2 = max(0, x1 - mx), max(0, y1 - my), min(w, x2 + mx), min(h, y2 + my)
            if x2 <= x1 or y2 <= y1:
                continue
            roi = out[y1:y2, x1:x2]
            k = max(3, ((min(x2 - x1, y2 - y1) // 2) | 1))
            small = cv2.resize(roi, (max(1, (x2 - x1) // 8), max(1, (y2 - y1) // 8)), interpolation=cv2.INTER_AREA)
            out[y1:y2, x1:x2] = cv2.GaussianBlur(cv2.resize(small, (x2 - x1, y2 - y1)), (k, k), 0)
        return out, {
            "heads_blurred": len(found["heads"]),
            "persons_blurred": len(found["persons"]) + len(found["riders"]),
            "plates_blurred": len(found["plates"]) + len(found["plate_zones"]),
        }

    def blur_jpeg(self, data: bytes) -> tuple[bytes, dict[str, int]]:
        image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        if image is None:
            raise ValueError("not a decodable image")
        out, counts = self.blur(image)
        ok, enc = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, 90])
        if not ok:
            raise ValueError("JPEG encoding failed")
        return enc.tobytes(), counts


def _int_boxes(xyxy: np.ndarray) -> list[Box]:
    return [(int(x1), int(y1), int(x2), int(y2)) for x1, y1, x2, y2 in xyxy.tolist()]


def _iou(a: Box, b: Box) -> float:
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _merge(groups: Iterable[list[Box]]) -> list[Box]:
    """The boxes of several passes, one per object (a box that overlaps a kept one by IoU > 0.5
    widens it to cover both): counts say objects, not passes."""
    kept: list[Box] = []
    for box in (b for g in groups for b in g):
        for i, k in enumerate(kept):
            if _iou(box, k) > 0.5:
                kept[i] = (min(box[0], k[0]), min(box[1], k[1]), max(box[2], k[2]), max(box[3], k[3]))
                break
        else:
            kept.append(box)
    return kept


def _inside(inner: Box, outer: Box) -> bool:
    cx, cy = (inner[0] + inner[2]) / 2, (inner[1] + inner[3]) / 2
    return outer[0] <= cx <= outer[2] and outer[1] <= cy <= outer[3]


def _clip(box: Box, w: int, h: int) -> Box | None:
    x1, y1, x2, y2 = max(0, box[0]), max(0, box[1]), min(w, box[2]), min(h, box[3])
    return (x1, y1, x2, y2) if x2 > x1 and y2 > y1 else None
