"""A camera's scene drawn on one of its frames: to check a config by eye before it runs.

`draw_scene(frame, camera)` is a pure function (a picture and a config in, a picture out), used by
`python -m edge draw` and meant for the console as well. It draws, scaled from
`scene.reference_size` to the frame's size (`edge.geometry.scale_points`, as the analysis scales):

- a coordinate grid in reference pixels, every 50 px (every 100 px when the reference is larger
  than 1000 px), labelled along the top and left edges;
- every zone filled translucent in its kind's colour, outlined and named by its id;
- every lane outlined, with its direction arrow and id;
- every line with an arrow a -> b along it, and a second arrow across its middle from its left to
  its right side labelled "forward": the way a crossing counts as `forward`
  (`edge.geometry.DirectedLine`: from the line's left to its right, image y pointing down);
- every signal lamp box outlined in its lamp's colour, the head's id above the head;
- the calibration's image points, numbered 1-4 in the order of `image_points`, with their ground
  coordinates in metres.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from edge.config import CameraConfig
from edge.geometry import scale_points
from edge.scene import Point

# BGR. Zones by kind; the other elements one colour each, all distinct so a drawing can be read
# (and tested) by colour.
ZONE_COLORS = {
    "no_stopping": (0, 140, 255),
    "no_parking": (40, 40, 220),
    "sidewalk": (255, 150, 0),
    "littering_watch": (200, 70, 255),
    "lane": (80, 200, 80),
    "other": (0, 220, 255),
}
ZONE_ALPHA = 0.3
LINE_COLOR = (255, 0, 255)
FORWARD_COLOR = (255, 255, 0)
LANE_COLOR = (60, 230, 60)
LAMP_COLORS = {"red": (0, 0, 255), "yellow": (0, 255, 255), "green": (0, 255, 0)}
CALIBRATION_COLOR = (255, 255, 255)
GRID_COLOR = (230, 230, 230)
GRID_ALPHA = 0.35
TEXT_COLOR = (255, 255, 255)
OUTLINE = (0, 0, 0)
FONT = cv2.FONT_HERSHEY_SIMPLEX


def grid_step(reference_size: tuple[int, int]) -> int:
    """Grid spacing in reference pixels: 50, or 100 for references larger than 1000 px."""
    return 100 if max(reference_size) > 1000 else 50


def forward_arrow(a: np.ndarray, b: np.ndarray, frame_size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """The (tail, tip) of the arrow across line a -> b at its middle, tip on the forward side: the
    side where `DirectedLine.side` > 0 (the right of a -> b with image y down). The tail starts a
    little on the other side, so the arrow visibly crosses the line."""
    d = (b - a).astype(np.float32)
    length = float(np.linalg.norm(d))
    n = np.array([-d[1], d[0]], np.float32) / max(length, 1e-6)  # unit normal towards the forward side
    reach = float(np.clip(0.3 * length, 24.0, max(24.0, 0.15 * min(frame_size))))
    mid = (a + b) / 2
    return mid - n * (0.35 * reach), mid + n * reach


class _Painter:
    """Sizes of lines and text for one frame, and text with a dark outline (readable anywhere)."""

    def __init__(self, img: np.ndarray) -> None:
        self.img = img
        self.h, self.w = img.shape[:2]
        short = min(self.w, self.h)
        self.thick = max(2, round(short / 300))
        self.scale = max(0.4, short / 1100)
        self.text_thick = max(1, round(short / 700))
        self.tags: list[tuple[int, int, int, int]] = []

    def text(self, text: str, org: tuple[float, float], color: tuple[int, int, int], scale: float | None = None,
             centre: bool = False) -> None:
        """`org` is the text's bottom-left corner (or its centre); kept inside the frame."""
        s = scale or self.scale
        (tw, th), base = cv2.getTextSize(text, FONT, s, self.text_thick)
        x, y = org
        if centre:
            x, y = x - tw / 2, y + th / 2
        x = min(max(2.0, x), self.w - tw - 2.0)
        y = min(max(th + 2.0, y), self.h - base - 2.0)
        p = (round(x), round(y))
        cv2.putText(self.img, text, p, FONT, s, OUTLINE, self.text_thick + 2, cv2.LINE_AA)
        cv2.putText(self.img, text, p, FONT, s, color, self.text_thick, cv2.LINE_AA)

    def tag(self, text: str, centre: tuple[float, float], color: tuple[int, int, int]) -> None:
        """Text on a box of `color` centred at `centre`, moved down past tags already placed."""
        (tw, th), base = cv2.getTextSize(text, FONT, self.scale, self.text_thick)
        bw, bh = tw + 8, th + base + 8
        x = min(max(0, round(centre[0] - bw / 2)), self.w - bw)
        y = min(max(0, round(centre[1] - bh / 2)), self.h - bh)
        while any(x < x2 and x + bw > x1 and y < y2 and y + bh > y1 for x1, y1, x2, y2 in self.tags):
            y += bh + 2
        self.tags.append((x, y, x + bw, y + bh))
        cv2.rectangle(self.img, (x, y), (x + bw, y + bh), color, -1)
        ink = (0, 0, 0) if 0.114 * color[0] + 0.587 * color[1] + 0.299 * color[2] > 140 else (255, 255, 255)
        cv2.putText(self.img, text, (x + 4, y + 4 + th), FONT, self.scale, ink, self.text_thick, cv2.LINE_AA)

    def text_size(self, text: str, scale: float | None = None) -> tuple[int, int]:
        (tw, th), _ = cv2.getTextSize(text, FONT, scale or self.scale, self.text_thick)
        return tw, th

    def arrow(self, tail: np.ndarray, tip: np.ndarray, color: tuple[int, int, int], thick: int) -> None:
        p, q = _px(tail), _px(tip)
        tip_length = min(0.4, 14.0 * thick / max(float(np.linalg.norm(tip - tail)), 1.0))
        cv2.arrowedLine(self.img, p, q, OUTLINE, thick + 2, cv2.LINE_AA, tipLength=tip_length)
        cv2.arrowedLine(self.img, p, q, color, thick, cv2.LINE_AA, tipLength=tip_length)


def _px(p: np.ndarray) -> tuple[int, int]:
    return round(float(p[0])), round(float(p[1]))


def draw_scene(frame: np.ndarray, camera: CameraConfig, *, grid: bool = True) -> np.ndarray:
    """A copy of `frame` (BGR) with `camera`'s scene drawn on it (see the module's docstring)."""
    img = np.ascontiguousarray(frame.copy())
    h, w = img.shape[:2]
    scene = camera.scene
    ref = scene.reference_size

    def to_frame(points: Sequence[Point]) -> np.ndarray:
        return scale_points(np.asarray(points, np.float32).reshape(-1, 2), ref, (w, h))

    paint = _Painter(img)
    if grid:
        _draw_grid(paint, ref)

    # Zones: each filled translucent in turn (where zones overlap, both colours show), then outlines
    # and names on top; names never cover each other (two zones may share a polygon).
    for zone in scene.zones:
        layer = img.copy()
        cv2.fillPoly(layer, [np.round(to_frame(zone.polygon)).astype(np.int32)], ZONE_COLORS[zone.kind])
        cv2.addWeighted(layer, ZONE_ALPHA, img, 1 - ZONE_ALPHA, 0, dst=img)
    for zone in scene.zones:
        pts = np.round(to_frame(zone.polygon)).astype(np.int32)
        cv2.polylines(img, [pts], True, ZONE_COLORS[zone.kind], paint.thick, cv2.LINE_AA)
    for zone in scene.zones:
        c = to_frame(zone.polygon).mean(axis=0)
        paint.tag(f"{zone.id} ({zone.kind})", (c[0], c[1]), ZONE_COLORS[zone.kind])

    for lane in scene.lanes:
        pts = np.round(to_frame(lane.polygon)).astype(np.int32)
        cv2.polylines(img, [pts], True, LANE_COLOR, max(1, paint.thick // 2), cv2.LINE_AA)
        tail, tip = to_frame(lane.direction)
        paint.arrow(tail, tip, LANE_COLOR, paint.thick + 1)
        paint.text(f"lane {lane.id}", (tail[0] + 6, tail[1] - 6), LANE_COLOR)

    for line in scene.lines:
        a, b = to_frame(line.points)
        paint.arrow(a, b, LINE_COLOR, paint.thick + 1)  # its direction, a -> b
        cv2.circle(img, _px(a), paint.thick + 3, LINE_COLOR, -1, cv2.LINE_AA)  # a: where it starts
        tail, tip = forward_arrow(a, b, (w, h))
        paint.arrow(tail, tip, FORWARD_COLOR, paint.thick)
        n = (tip - tail) / max(float(np.linalg.norm(tip - tail)), 1e-6)
        tw, th = paint.text_size("forward")
        label = tip + n * (float(np.hypot(tw, th)) / 2 + 4)  # wholly beyond the tip: on the forward side
        paint.text("forward", (label[0], label[1]), FORWARD_COLOR, centre=True)
        paint.text(line.id, (a[0] + 8, a[1] - 8), LINE_COLOR)

    for head in scene.signals:
        boxes = [(lamp.color, to_frame([lamp.box[:2], lamp.box[2:]])) for lamp in head.lamps]
        for color, (p, q) in boxes:
            cv2.rectangle(img, _px(p), _px(q), LAMP_COLORS[color], 1, cv2.LINE_8)
        if boxes:
            x1 = min(float(p[0]) for _, (p, _q) in boxes)
            y1 = min(float(p[1]) for _, (p, _q) in boxes)
            paint.text(head.id, (x1, y1 - 6), TEXT_COLOR, paint.scale * 0.9)

    if scene.calibration is not None:
        image_points = to_frame(scene.calibration.image_points)
        for k, (p, ground) in enumerate(zip(image_points, scene.calibration.ground_points_m, strict=True), start=1):
            cv2.circle(img, _px(p), paint.thick + 4, OUTLINE, -1, cv2.LINE_AA)
            cv2.circle(img, _px(p), paint.thick + 2, CALIBRATION_COLOR, -1, cv2.LINE_AA)
            paint.text(f"{k} ({ground[0]:g}, {ground[1]:g} m)", (p[0] + 10, p[1] - 8), CALIBRATION_COLOR)

    note = f"grid: reference px of {ref[0]}x{ref[1]}"
    if (w, h) != tuple(ref):
        note += f", drawn scaled on {w}x{h}"
    paint.text(note, (6, h - 8), TEXT_COLOR, paint.scale * 0.8)
    return img


def _draw_grid(paint: _Painter, ref: tuple[int, int]) -> None:
    """Lines every `grid_step` reference pixels, blended in; their coordinates along the edges."""
    img, w, h = paint.img, paint.w, paint.h
    step = grid_step(ref)
    sx, sy = w / ref[0], h / ref[1]
    layer = img.copy()
    xs = range(step, ref[0], step)
    ys = range(step, ref[1], step)
    for x in xs:
        cv2.line(layer, (round(x * sx), 0), (round(x * sx), h - 1), GRID_COLOR, 1, cv2.LINE_8)
    for y in ys:
        cv2.line(layer, (0, round(y * sy)), (w - 1, round(y * sy)), GRID_COLOR, 1, cv2.LINE_8)
    cv2.addWeighted(layer, GRID_ALPHA, img, 1 - GRID_ALPHA, 0, dst=img)
    small = paint.scale * 0.75
    for x in xs:
        paint.text(str(x), (x * sx + 3, 0), GRID_COLOR, small)
    for y in ys:
        paint.text(str(y), (3, y * sy - 3), GRID_COLOR, small)
