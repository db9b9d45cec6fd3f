"""Scene geometry in the camera's pixel coordinates: polygon zones and directed lines. Pure numpy,
vectorised over points (no per-point Python loop on the hot path)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class PolygonZone:
    id: str
    kind: str
    polygon: np.ndarray  # (K, 2) float32, pixel coordinates of the frame analysed

    def contains(self, points: np.ndarray) -> np.ndarray:
        """Boolean mask: which of the (N, 2) points lie inside or on the edge of the polygon."""
        return points_in_polygon(points, self.polygon)

    def area(self) -> float:
        x, y = self.polygon[:, 0].astype(np.float64), self.polygon[:, 1].astype(np.float64)
        return float(abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))) / 2)


def points_in_polygon(points: np.ndarray, polygon: np.ndarray) -> np.ndarray:
    """Inside-or-on-the-edge test of (N, 2) points against a (K, 2) polygon, as one array
    computation over N x K (even-odd crossings of a ray to +x, plus a distance test for the edge)."""
    pts = np.asarray(points, np.float64).reshape(-1, 2)
    if len(pts) == 0:
        return np.zeros(0, dtype=bool)
    a = np.asarray(polygon, np.float64).reshape(-1, 2)
    b = np.roll(a, -1, axis=0)
    px, py = pts[:, 0:1], pts[:, 1:2]  # (N, 1) against (K,) edges
    ax, ay, bx, by = a[:, 0], a[:, 1], b[:, 0], b[:, 1]
    straddles = (ay > py) != (by > py)
    with np.errstate(divide="ignore", invalid="ignore"):
        x_cross = ax + (py - ay) * (bx - ax) / (by - ay)
    inside = (straddles & (px < x_cross)).sum(axis=1) % 2 == 1
    # On an edge: within a tiny distance of the segment (OpenCV's pointPolygonTest counts it in).
    ex, ey = bx - ax, by - ay
    length2 = np.maximum(ex * ex + ey * ey, 1e-12)
    u = np.clip(((px - ax) * ex + (py - ay) * ey) / length2, 0.0, 1.0)
    dist2 = (ax + u * ex - px) ** 2 + (ay + u * ey - py) ** 2
    return inside | (dist2 <= 1e-10).any(axis=1)


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
        pq = after - before
        denom = ab[0] * pq[:, 1] - ab[1] * pq[:, 0]
        with np.errstate(divide="ignore", invalid="ignore"):
            t = ((before[:, 0] - self.a[0]) * pq[:, 1] - (before[:, 1] - self.a[1]) * pq[:, 0]) / denom
        cuts = changed & (denom != 0) & (t >= 0.0) & (t <= 1.0)
        return np.where(cuts, np.where(s1 > 0, 1, -1), 0).astype(np.int8)


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
