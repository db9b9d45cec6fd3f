"""Synthetic scenes with exact ground truth, built from real image material.

Real vehicles cut from the sample footage (the frame number and box of each cut-out are in
`SPRITES`, so anyone can check them) are moved along scripted paths over a real, empty background
(the per-pixel median of the same footage, which removes the traffic), scaled with the perspective
of the scene. A signal head can be drawn over the real one with a timed cycle. The detector, tracker
and rules then run on the rendered frames as on a camera, and the rules' events are scored against
the script.

API (reusable by other rules' tests):

- `background(video, frames=40) -> np.ndarray`: median frame of the video (BGR; over
  `BACKGROUND_SPANS[video]` if given), cached in memory.
- `sprite(name) -> Sprite`: a cut-out from `SPRITES` (image + soft alpha, ground point at bottom centre);
  `SPRITE_SCALE` shrinks cut-outs from closer cameras to the background's scale.
- `Actor(name, sprite, path, cls, acts=(), hidden=())`: `path` is [(t, x, y), ...] of the ground point
  in background pixels (linear in between; absent before the first and after the last key);
  `hidden` is [(t0, t1), ...] when it is not drawn (occlusion: the tracker loses it);
  `acts` is the ground truth: violation types this actor commits (each exactly once).
- `Scene(background, actors, duration, fps, signal=None, perspective=(y_far, s_far, y_near, s_near))`.
  `signal` is a `DrawnSignal(lamps={colour: box}, cycle=[(t_start, state), ...])`; state "off"
  blanks the lamps, "glare" paints them white (unreadable).
- `scene.frames()` yields `edge.frames.Frame`s (pts = t).
- `jittered(scene, seed, dx=12, dt=0.25, swaps=None)`: a variant (paths shifted, sprites swapped).
- `score(events, scene, types)` -> {type: Score(tp, fp, fn)}: an event matches an actor with that act
  when the offender box's ground point lies within the actor's rendered box (padded by a quarter of
  its height) at the event's end time, or the two boxes overlap with IoU >= 0.5.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache

import cv2
import numpy as np

from edge.data import video_path
from edge.frames import Frame

HANOI = "hanoi_lythuongkiet_hangbai_intersection_trafficlight.mp4"
HELMET = "motorcyclist_without_helmet.mp4"

# name -> (video, frame number, x1, y1, x2, y2 of the cut-out, class)
SPRITES: dict[str, tuple[str, int, int, int, int, int, str]] = {
    # Motorbikes seen from behind, leaving the camera (Hanoi, red phase queue and runners).
    "moto_rear_a": (HANOI, 127, 430, 304, 480, 392, "motorcycle"),
    "moto_rear_b": (HANOI, 189, 438, 298, 478, 385, "motorcycle"),
    # Motorbikes seen from the front, coming toward the camera (Hanoi, green phase).
    "moto_front_a": (HANOI, 0, 104, 248, 138, 318, "motorcycle"),
    "moto_front_b": (HANOI, 0, 164, 224, 192, 281, "motorcycle"),
    # Cars from behind (Hanoi, waiting at the stop line).
    "car_rear_a": (HANOI, 96, 190, 334, 314, 450, "car"),
    # A bare-headed rider on his motorbike, and a pedestrian (no helmet either) by the parked cars.
    "rider_bare_front": (HELMET, 45, 300, 10, 560, 520, "motorcycle"),
    "pedestrian_white": (HELMET, 45, 650, 120, 795, 470, "person"),
}
# Cut-outs from closer cameras are shrunk to the Hanoi scale first.
SPRITE_SCALE: dict[str, float] = {"rider_bare_front": 0.3, "pedestrian_white": 0.3}


@dataclass(frozen=True)
class Sprite:
    name: str
    image: np.ndarray  # BGR
    alpha: np.ndarray  # float32 0..1, soft edges
    cls: str


def _read_frame(video: str, index: int) -> np.ndarray:
    cap = cv2.VideoCapture(str(video_path(video)))
    try:
        cap.set(cv2.CAP_PROP_POS_FRAMES, index)
        ok, frame = cap.read()
    finally:
        cap.release()
    if not ok:
        raise RuntimeError(f"{video}: cannot read frame {index}")
    return frame


# Frames to take the median of: Hanoi's green phase (frames 262-383), when the queue that waited
# through the red (two cars on the stop line) has gone; a median over the whole clip keeps them.
BACKGROUND_SPANS: dict[str, tuple[int, int]] = {HANOI: (262, 383)}


@lru_cache(maxsize=8)
def background(video: str = HANOI, frames: int = 40) -> np.ndarray:
    cap = cv2.VideoCapture(str(video_path(video)))
    n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    first, last = BACKGROUND_SPANS.get(video, (0, n - 1))
    picks = set(np.linspace(first, min(last, n - 1), frames).astype(int).tolist())
    got = []
    i = 0
    while True:
        ok, f = cap.read()
        if not ok:
            break
        if i in picks:
            got.append(f)
        i += 1
    cap.release()
    return np.median(np.stack(got), axis=0).astype(np.uint8)


@lru_cache(maxsize=32)
def sprite(name: str) -> Sprite:
    video, index, x1, y1, x2, y2, cls = SPRITES[name]
    img = _read_frame(video, index)[y1:y2, x1:x2].copy()
    h, w = img.shape[:2]
    # Soft elliptical matte: the cut-out's corners (road) fade into the background road.
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    r = ((xx - w / 2) / (w / 2)) ** 2 + ((yy - h / 2) / (h / 2)) ** 2
    alpha = np.clip((1.25 - r) / 0.35, 0, 1).astype(np.float32)
    return Sprite(name, img, alpha, cls)


@dataclass
class Actor:
    name: str
    sprite: str
    path: list[tuple[float, float, float]]  # (t, x, y) of the ground point
    acts: tuple[str, ...] = ()
    hidden: tuple[tuple[float, float], ...] = ()
    camera: str = "default"  # which scene config a test runs the actor's scene under (free for tests' use)

    def position(self, t: float) -> tuple[float, float] | None:
        ts = [p[0] for p in self.path]
        if t < ts[0] or t > ts[-1]:
            return None
        for (t0, x0, y0), (t1, x1, y1) in zip(self.path, self.path[1:], strict=False):
            if t0 <= t <= t1:
                k = 0.0 if t1 == t0 else (t - t0) / (t1 - t0)
                return x0 + k * (x1 - x0), y0 + k * (y1 - y0)
        return self.path[-1][1], self.path[-1][2]

    def visible(self, t: float) -> bool:
        return not any(a <= t <= b for a, b in self.hidden)


@dataclass
class DrawnSignal:
    lamps: dict[str, tuple[int, int, int, int]]  # colour -> box
    cycle: list[tuple[float, str]]  # (start time, "red" | "yellow" | "green" | "off" | "glare")

    def state(self, t: float) -> str:
        current = "off"
        for start, state in self.cycle:
            if t >= start:
                current = state
        return current

    _BGR = {"red": (30, 30, 255), "yellow": (0, 170, 255), "green": (140, 255, 60)}

    def draw(self, img: np.ndarray, t: float) -> None:
        state = self.state(t)
        for colour, (x1, y1, x2, y2) in self.lamps.items():
            cv2.rectangle(img, (x1, y1), (x2, y2), (25, 25, 25), -1)
            centre = ((x1 + x2) // 2, (y1 + y2) // 2)
            radius = max(2, min(x2 - x1, y2 - y1) // 2 - 1)
            if state == colour:
                cv2.circle(img, centre, radius, self._BGR[colour], -1, cv2.LINE_AA)
            elif state == "glare":
                cv2.circle(img, centre, radius, (250, 250, 250), -1, cv2.LINE_AA)


@dataclass
class Scene:
    background: np.ndarray
    actors: list[Actor]
    duration: float
    fps: float = 6.0
    signal: DrawnSignal | None = None
    perspective: tuple[float, float, float, float] = (200.0, 0.55, 400.0, 1.0)
    _boxes: dict[float, dict[str, tuple[float, float, float, float]]] = field(default_factory=dict)

    def scale_at(self, y: float) -> float:
        y_far, s_far, y_near, s_near = self.perspective
        k = (y - y_far) / (y_near - y_far)
        return max(0.2, s_far + k * (s_near - s_far))

    def render(self, t: float) -> np.ndarray:
        img = self.background.copy()
        H, W = img.shape[:2]
        placed = []
        for actor in self.actors:
            pos = actor.position(t)
            if pos is None:
                continue
            placed.append((pos[1], actor, pos))
        boxes: dict[str, tuple[float, float, float, float]] = {}
        for _, actor, (x, y) in sorted(placed, key=lambda p: p[0]):  # far ones first
            sp = sprite(actor.sprite)
            s = self.scale_at(y) * SPRITE_SCALE.get(actor.sprite, 1.0)
            h0, w0 = sp.image.shape[:2]
            w, h = max(4, round(w0 * s)), max(4, round(h0 * s))
            x1, y1 = round(x - w / 2), round(y - h)
            boxes[actor.name] = (x1, y1, x1 + w, y1 + h)
            if not actor.visible(t):
                continue
            im = cv2.resize(sp.image, (w, h), interpolation=cv2.INTER_AREA)
            al = cv2.resize(sp.alpha, (w, h), interpolation=cv2.INTER_LINEAR)[..., None]
            ax1, ay1, ax2, ay2 = max(0, x1), max(0, y1), min(W, x1 + w), min(H, y1 + h)
            if ax2 <= ax1 or ay2 <= ay1:
                continue
            crop = (slice(ay1 - y1, ay2 - y1), slice(ax1 - x1, ax2 - x1))
            region = img[ay1:ay2, ax1:ax2].astype(np.float32)
            blended = al[crop] * im[crop].astype(np.float32) + (1 - al[crop]) * region
            img[ay1:ay2, ax1:ax2] = blended.astype(np.uint8)
        if self.signal is not None:
            self.signal.draw(img, t)
        self._boxes[round(t, 4)] = boxes
        return img

    def frames(self) -> Iterator[Frame]:
        n = int(round(self.duration * self.fps))
        for i in range(n):
            t = i / self.fps
            yield Frame(self.render(t), pts=t, index=i, wall_time=t)

    def box_of(self, actor: str, t: float) -> tuple[float, float, float, float] | None:
        key = min(self._boxes, key=lambda k: abs(k - t)) if self._boxes else None
        return None if key is None else self._boxes[key].get(actor)


def jittered(scene: Scene, seed: int, *, dx: float = 12.0, dt: float = 0.25,
             swaps: dict[str, str] | None = None) -> Scene:
    """A variant of a scene: each actor's path shifted sideways by up to `dx` pixels and in time by
    up to `dt` seconds (hidden spans with it), and sprites swapped by `swaps` with probability 1/2.
    Keep dx/dt below the margins the script's ground truth relies on."""
    import random

    rng = random.Random(seed)
    actors = []
    for a in scene.actors:
        ox, ot = rng.uniform(-dx, dx), rng.uniform(-dt, dt)
        sprite_name = a.sprite
        if swaps and a.sprite in swaps and rng.random() < 0.5:
            sprite_name = swaps[a.sprite]
        actors.append(Actor(
            a.name, sprite_name, [(t + ot, x + ox, y) for t, x, y in a.path], a.acts,
            tuple((h0 + ot, h1 + ot) for h0, h1 in a.hidden), a.camera,
        ))
    return Scene(scene.background, actors, scene.duration, scene.fps, scene.signal, scene.perspective)


@dataclass
class Score:
    tp: int = 0
    fp: int = 0
    fn: int = 0

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0

    def add(self, other: Score) -> None:
        self.tp += other.tp
        self.fp += other.fp
        self.fn += other.fn


def _iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - ix * iy
    return ix * iy / union if union > 0 else 0.0


def score(events: list[tuple[str, float, tuple[float, float, float, float]]], scene: Scene, types: list[str]) -> dict:
    """events: (type, end time in scene seconds, offender box). One event per act: a second event
    matching the same actor and act is a false positive."""
    out = {ty: Score() for ty in types}
    matched: set[tuple[str, str]] = set()
    for ty, t, box in events:
        if ty not in out:
            continue
        gx, gy = (box[0] + box[2]) / 2, box[3]
        hit = None
        for actor in scene.actors:
            if ty not in actor.acts or (actor.name, ty) in matched:
                continue
            b = scene.box_of(actor.name, t)
            if b is None:
                continue
            pad = 0.25 * (b[3] - b[1])
            inside = b[0] - pad <= gx <= b[2] + pad and b[1] <= gy <= b[3] + pad
            if inside or _iou(b, box) >= 0.5:  # a box merged with a neighbour still overlaps its own
                hit = actor
                break
        if hit is None:
            out[ty].fp += 1
        else:
            matched.add((hit.name, ty))
            out[ty].tp += 1
    for actor in scene.actors:
        for ty in actor.acts:
            if ty in out and (actor.name, ty) not in matched:
                out[ty].fn += 1
    return out
