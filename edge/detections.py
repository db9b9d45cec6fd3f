"""One detections type: parallel numpy arrays, plain data (the supervision idea).

The detector makes `Detections`; the tracker returns the same type with `track_id` filled
(`TrackedObjects` is that type read as "confirmed tracks"); rules read either.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

# COCO classes that are vehicles (tracked together, followed by the traffic rules).
VEHICLES = frozenset({"bicycle", "car", "motorcycle", "bus", "truck", "train"})


@dataclass(frozen=True, slots=True)
class Detections:
    xyxy: np.ndarray  # (N, 4) float32, frame pixels
    confidence: np.ndarray  # (N,) float32
    class_id: np.ndarray  # (N,) int32
    names: tuple[str, ...] = field(default=())  # class id -> name, from the model
    track_id: np.ndarray | None = None  # (N,) int64 >= 0 once tracked; None straight from the detector

    @classmethod
    def empty(cls, names: tuple[str, ...] = ()) -> Detections:
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int32), names)

    def __len__(self) -> int:
        return int(self.xyxy.shape[0])

    def class_name(self, i: int) -> str:
        cid = int(self.class_id[i])
        return self.names[cid] if 0 <= cid < len(self.names) else str(cid)

    def class_names(self) -> np.ndarray:
        """Every detection's class name, as an object array (for vectorised class tests)."""
        lookup = np.array([*self.names, ""], dtype=object)
        ids = np.where((self.class_id >= 0) & (self.class_id < len(self.names)), self.class_id, len(self.names))
        return lookup[ids] if len(self) else np.zeros(0, dtype=object)

    def ground_points(self) -> np.ndarray:
        """Bottom-centre of each box: where the object touches the road."""
        return np.stack([(self.xyxy[:, 0] + self.xyxy[:, 2]) / 2, self.xyxy[:, 3]], axis=1)

    def select(self, mask: np.ndarray) -> Detections:
        track = self.track_id[mask] if self.track_id is not None else None
        return Detections(self.xyxy[mask], self.confidence[mask], self.class_id[mask], self.names, track)


class TrackedObjects(Detections):
    """Detections with a stable track id each (the tracker's confirmed tracks): the same type."""

    __slots__ = ()
    if TYPE_CHECKING:
        track_id: np.ndarray  # always set here

    def __init__(
        self,
        xyxy: np.ndarray,
        confidence: np.ndarray,
        class_id: np.ndarray,
        track_id: np.ndarray | None,
        names: tuple[str, ...] = (),
    ) -> None:
        Detections.__init__(self, xyxy, confidence, class_id, names, track_id)

    @classmethod
    def empty(cls, names: tuple[str, ...] = ()) -> TrackedObjects:
        return cls(
            np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int32), np.zeros(0, np.int64), names
        )
