"""Detections and tracked objects: parallel numpy arrays, plain data (the supervision idea)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

# COCO classes that are vehicles (tracked together, followed by the traffic rules).
VEHICLES = frozenset({"bicycle", "car", "motorcycle", "bus", "truck", "train"})


@dataclass(frozen=True, slots=True)
class Detections:
    xyxy: np.ndarray  # (N, 4) float32, frame pixels
    confidence: np.ndarray  # (N,) float32
    class_id: np.ndarray  # (N,) int32
    names: tuple[str, ...] = field(default=())  # class id -> name, from the model

    @classmethod
    def empty(cls, names: tuple[str, ...] = ()) -> Detections:
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int32), names)

    def __len__(self) -> int:
        return int(self.xyxy.shape[0])

    def class_name(self, i: int) -> str:
        cid = int(self.class_id[i])
        return self.names[cid] if 0 <= cid < len(self.names) else str(cid)

    def select(self, mask: np.ndarray) -> Detections:
        return Detections(self.xyxy[mask], self.confidence[mask], self.class_id[mask], self.names)


@dataclass(frozen=True, slots=True)
class TrackedObjects:
    """Detections that carry a stable track id (only confirmed tracks)."""

    xyxy: np.ndarray  # (N, 4)
    confidence: np.ndarray  # (N,)
    class_id: np.ndarray  # (N,)
    track_id: np.ndarray  # (N,) int64, >= 0
    names: tuple[str, ...] = field(default=())

    @classmethod
    def empty(cls, names: tuple[str, ...] = ()) -> TrackedObjects:
        return cls(
            np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int32), np.zeros(0, np.int64), names
        )

    def __len__(self) -> int:
        return int(self.xyxy.shape[0])

    def class_name(self, i: int) -> str:
        cid = int(self.class_id[i])
        return self.names[cid] if 0 <= cid < len(self.names) else str(cid)

    def ground_points(self) -> np.ndarray:
        """Bottom-centre of each box: where the object touches the road."""
        return np.stack([(self.xyxy[:, 0] + self.xyxy[:, 2]) / 2, self.xyxy[:, 3]], axis=1)
