"""The public version of a report's images: every head and every number plate blurred.

Heads come from the helmet model (`helmet_yolo12m.onnx`, classes with and without helmet), plates
from `license_plate_yolov8n.onnx`, both through `edge.detector.YoloDetector` with weights from
EDGE_DATA_DIR. The public version blurs the offender's plate too: it stays readable only in the
original evidence, which the console serves to logged-in staff.
"""

from __future__ import annotations

import threading

import cv2
import numpy as np

from central.config import CentralConfig

_shared: dict[tuple[str, str, float], PublicBlurrer] = {}
_lock = threading.Lock()


class PublicBlurrer:
    def __init__(self, head_model: str, plate_model: str, confidence: float = 0.25) -> None:
        from contract.paths import weights_path
        from edge.detector import YoloDetector

        self.heads = YoloDetector(weights_path(head_model), confidence=confidence)
        self.plates = YoloDetector(weights_path(plate_model), confidence=confidence)
        self._lock = threading.Lock()  # one inference at a time per session: ORT sessions are heavy

    @classmethod
    def shared(cls, config: CentralConfig) -> PublicBlurrer:
        key = (config.public.head_model, config.public.plate_model, config.public.confidence)
        with _lock:
            if key not in _shared:
                _shared[key] = cls(*key)
            return _shared[key]

    def boxes(self, image: np.ndarray) -> dict[str, list[tuple[int, int, int, int]]]:
        with self._lock:
            heads = self.heads(image)
            plates = self.plates(image)
        return {"heads": _int_boxes(heads.xyxy), "plates": _int_boxes(plates.xyxy)}

    def blur(self, image: np.ndarray) -> tuple[np.ndarray, dict[str, int]]:
        out = image.copy()
        found = self.boxes(image)
        h, w = out.shape[:2]
        for x1, y1, x2, y2 in found["heads"] + found["plates"]:
            # A margin: a box that is a few pixels short would leave an ear or a digit readable.
            mx, my = max(2, (x2 - x1) // 6), max(2, (y2 - y1) // 6)
            x1, y1, x2, y2 = max(0, x1 - mx), max(0, y1 - my), min(w, x2 + mx), min(h, y2 + my)
            if x2 <= x1 or y2 <= y1:
                continue
            roi = out[y1:y2, x1:x2]
            k = max(3, ((min(x2 - x1, y2 - y1) // 2) | 1))
            small = cv2.resize(roi, (max(1, (x2 - x1) // 8), max(1, (y2 - y1) // 8)), interpolation=cv2.INTER_LINEAR)
            out[y1:y2, x1:x2] = cv2.GaussianBlur(cv2.resize(small, (x2 - x1, y2 - y1)), (k, k), 0)
        return out, {"heads_blurred": len(found["heads"]), "plates_blurred": len(found["plates"])}

    def blur_jpeg(self, data: bytes) -> tuple[bytes, dict[str, int]]:
        image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        if image is None:
            raise ValueError("not a decodable image")
        out, counts = self.blur(image)
        ok, enc = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, 90])
        if not ok:
            raise ValueError("JPEG encoding failed")
        return enc.tobytes(), counts


def _int_boxes(xyxy: np.ndarray) -> list[tuple[int, int, int, int]]:
    return [(int(x1), int(y1), int(x2), int(y2)) for x1, y1, x2, y2 in xyxy.tolist()]
