"""YOLO (Ultralytics export) runner: letterbox -> engine -> decode -> NMS, on any backend.

Class names, stride and default input size come from the model's own metadata, so a different
export (another class list, a static shape) works without code changes.
"""

from __future__ import annotations

import ast
import logging
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from contract.paths import file_sha256
from edge.detect.base import DetectorError, open_engine
from edge.detections import Detections

log = logging.getLogger("edge.detector")


@dataclass(frozen=True, slots=True)
class Letterbox:
    scale: float
    pad_x: float
    pad_y: float


def letterbox(image: np.ndarray, size_hw: tuple[int, int], color: int = 114) -> tuple[np.ndarray, Letterbox]:
    """Resize keeping aspect ratio, pad to size_hw (centred), as the model was trained."""
    h, w = image.shape[:2]
    th, tw = size_hw
    scale = min(th / h, tw / w)
    nh, nw = round(h * scale), round(w * scale)
    resized = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_LINEAR) if (nh, nw) != (h, w) else image
    top, left = (th - nh) // 2, (tw - nw) // 2
    out = cv2.copyMakeBorder(resized, top, th - nh - top, left, tw - nw - left, cv2.BORDER_CONSTANT, value=(color,) * 3)
    return out, Letterbox(scale, float(left), float(top))


def to_blob(image: np.ndarray, size_hw: tuple[int, int]) -> tuple[np.ndarray, Letterbox]:
    """A BGR frame as the model's input: letterboxed to size_hw, RGB, NCHW float32 in 0..1."""
    boxed, lb = letterbox(image, size_hw)
    return boxed_to_blob(boxed), lb


def boxed_to_blob(boxed: np.ndarray) -> np.ndarray:
    """A letterboxed BGR image as a 1x3xHxW float32 RGB blob in 0..1."""
    return cv2.dnn.blobFromImage(boxed, 1 / 255.0, swapRB=True)


def auto_input_size(frame_hw: tuple[int, int], long_side: int, stride: int) -> tuple[int, int]:
    """Rectangular input: the long side at long_side, the short side rounded up to the stride."""
    h, w = frame_hw
    scale = long_side / max(h, w)

    def up(v: float) -> int:
        return int(np.ceil(v / stride) * stride)

    return up(h * scale), up(w * scale)


class YoloDetector:
    def __init__(
        self,
        model_path: Path,
        *,
        input_size: tuple[int, int] | None = None,
        long_side: int = 640,
        confidence: float = 0.25,
        iou: float = 0.45,
        classes: list[str] | None = None,
        providers: list[str] | None = None,
        threads: int = 1,
        backend: str = "onnxruntime",
        precision: str = "auto",
    ) -> None:
        # `precision` only when one is asked for: a backend written before it existed still opens.
        extra = {} if precision == "auto" else {"precision": precision}
        self.engine = open_engine(backend, model_path, threads=threads, providers=providers, **extra)
        self.backend = backend
        self.provider = self.engine.device
        why = self.engine.why
        meta = self.engine.metadata
        try:
            names_map = ast.literal_eval(meta["names"])
            self.names: tuple[str, ...] = tuple(names_map[i] for i in range(len(names_map)))
        except (KeyError, ValueError, SyntaxError) as e:
            raise DetectorError(f"{model_path.name}: no class names in the model metadata ({e})") from None
        self.stride = int(meta.get("stride", 32))
        shape = self.engine.input_shape
        static = [d for d in shape[2:] if isinstance(d, int)]
        self.static_size = (int(shape[2]), int(shape[3])) if len(static) == 2 else None
        # A model exported with a fixed batch (an int) cannot take a larger one.
        self.max_batch = shape[0] if isinstance(shape[0], int) else None
        if self.static_size and input_size and tuple(input_size) != self.static_size:
            log.warning(
                "detector %s: static input %dx%d, configured input_size %s ignored",
                model_path.name,
                *self.static_size,
                list(input_size),
            )
        self.fixed_size = self.static_size or (tuple(input_size) if input_size else None)
        size = "x".join(map(str, self.fixed_size)) if self.fixed_size else f"long side {long_side}"
        static_note = " (static)" if self.static_size else ""
        log.info(
            "detector %s: input %s%s; backend %s, execution provider %s, threads=%d",
            model_path.name,
            size,
            static_note,
            backend,
            why,
            threads,
        )
        self.long_side = long_side
        self.confidence = confidence
        self.iou = iou
        self.model_name = model_path.stem
        # The file the engine runs (an INT8 IR made from this model is another file, so another version).
        self.model_version = file_sha256(getattr(self.engine, "model_file", model_path))[:12]
        self.keep_class: np.ndarray | None = None
        if classes:
            unknown = sorted(set(classes) - set(self.names))
            if unknown:
                raise DetectorError(f"{model_path.name}: unknown classes {unknown}")
            self.keep_class = np.array([n in classes for n in self.names])

    def input_size_for(self, frame_hw: tuple[int, int]) -> tuple[int, int]:
        if self.fixed_size is not None:
            return (int(self.fixed_size[0]), int(self.fixed_size[1]))
        return auto_input_size(frame_hw, self.long_side, self.stride)

    # The runner's three steps: the inference pool runs `preprocess` on the camera's thread and
    # `infer` + `decode` on its workers (a batch of blobs is one `infer`).
    def preprocess(self, image: np.ndarray) -> tuple[np.ndarray, Letterbox]:
        return to_blob(image, self.input_size_for(image.shape[:2]))

    def infer(self, blob: np.ndarray) -> np.ndarray:
        return self.engine.run(blob)

    def __call__(self, image: np.ndarray) -> Detections:
        blob, lb = self.preprocess(image)
        return self.decode(self.infer(blob)[0], lb, image.shape[:2])

    def postprocess(self, pred: np.ndarray, lb: Letterbox, frame_hw: tuple[int, int]) -> Detections:
        return self.decode(pred, lb, frame_hw)

    def decode(self, pred: np.ndarray, lb: Letterbox, frame_hw: tuple[int, int]) -> Detections:
        # pred: (4 + num_classes, anchors), boxes as centre x, y, w, h in input pixels.
        scores_all = pred[4:]
        class_id = scores_all.argmax(axis=0)
        scores = scores_all[class_id, np.arange(scores_all.shape[1])]
        keep = scores >= self.confidence
        if self.keep_class is not None:
            keep &= self.keep_class[class_id]
        if not keep.any():
            return Detections.empty(self.names)
        cx, cy, w, h = pred[0, keep], pred[1, keep], pred[2, keep], pred[3, keep]
        scores, class_id = scores[keep], class_id[keep]
        xyxy = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)
        xyxy[:, [0, 2]] = (xyxy[:, [0, 2]] - lb.pad_x) / lb.scale
        xyxy[:, [1, 3]] = (xyxy[:, [1, 3]] - lb.pad_y) / lb.scale
        fh, fw = frame_hw
        np.clip(xyxy[:, [0, 2]], 0, fw, out=xyxy[:, [0, 2]])
        np.clip(xyxy[:, [1, 3]], 0, fh, out=xyxy[:, [1, 3]])
        xywh = np.concatenate([xyxy[:, :2], xyxy[:, 2:] - xyxy[:, :2]], axis=1)
        # Per-class NMS (OpenCV's batched variant), as Ultralytics does by default.
        kept = cv2.dnn.NMSBoxesBatched(xywh.tolist(), scores.tolist(), class_id.tolist(), self.confidence, self.iou)
        idx = np.asarray(kept, dtype=np.int64).reshape(-1)
        return Detections(
            xyxy[idx].astype(np.float32), scores[idx].astype(np.float32), class_id[idx].astype(np.int32), self.names
        )
