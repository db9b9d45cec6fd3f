"""Scene geometry in the camera's pixel coordinates: polygon zones and directed lines. Pure."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class PolygonZone:
    id: str
    kind: str
    polygon: np.ndarray  # (K, 2) float32, pixel coordinates of the frame analysed

    def contains(self, points: np.ndarray) -> np.ndarray:
        """Boolean mask: which of the (N, 2) points lie inside or on the edge of the polygon."""
        if len(points) == 0:
            return np.zeros(0, dtype=bool)
        contour = self.polygon.reshape(-1, 1, 2).astype(np.float32)
        return np.array([cv2.pointPolygonTest(contour, (float(x), float(y)), False) >= 0 for x, y in points], bool)

    def area(self) -> float:
        return float(cv2.contourArea(self.polygon.astype(np.float32)))


@dataclass(frozen=True)
class DirectedLine:
    """A segment a to b; crossing 'forward' goes from its left side to its right side
    (image coordinates, y down: with a->b pointing right, 'forward' goes downwards)."""

    id: str
    a: np.ndarray  # (2,)
    b: np.ndarray  # (2,)

    def side(self, points: np.ndarray) -> np.ndarray:
        """Sign of the cross product per point: > 0 on the right (forward) side, < 0 on the left."""
        d = self.b - self.a
        rel = points - self.a
        return d[0] * rel[:, 1] - d[1] * rel[:, 0]

    def crossing(self, before: np.ndarray, after: np.ndarray) -> np.ndarray:
        """Per point pair (N, 2): +1 crossed forward, -1 crossed backward, 0 no crossing of the segment."""
        s0, s1 = np.sign(self.side(before)), np.sign(self.side(after))
        changed = (s0 != s1) & (s0 != 0) & (s1 != 0)
        # The path must also cut the segment itself, not the line's extension.
        ab = self.b - self.a
        out = np.zeros(len(before), dtype=np.int8)
        for i in np.nonzero(changed)[0]:
            p, q = before[i], after[i]
            pq = q - p
            denom = ab[0] * pq[1] - ab[1] * pq[0]
            if denom == 0:
                continue
            t = ((p[0] - self.a[0]) * pq[1] - (p[1] - self.a[1]) * pq[0]) / denom
            if 0.0 <= t <= 1.0:
                out[i] = 1 if s1[i] > 0 else -1
        return out


def scale_points(points: np.ndarray, from_wh: tuple[int, int], to_wh: tuple[int, int]) -> np.ndarray:
    """Map points drawn on a reference snapshot of one size to frames of another size."""
    sx, sy = to_wh[0] / from_wh[0], to_wh[1] / from_wh[1]
    return (points * np.array([sx, sy], dtype=np.float32)).astype(np.float32)


def box_iou(a: np.ndarray, b: np.ndarray) -> float:
    x1, y1 = max(a[0], b[0]), max(a[1], b[1])
    x2, y2 = min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x2 - x1) * max(0.0, y2 - y1)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0
