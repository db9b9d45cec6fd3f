"""The regions-of-interest pass: the scene's zones and lines once more, in tiles at native resolution.

Why: the full-frame pass sees the frame resized to the detector's input (`detector.long_side`), so
a 1280-wide camera loses half its pixels and a 10-px pillion head or a distant rider is gone. The
rules only look inside the zones and at the lines, so only there is it worth looking closer:
SAHI's slicing (overlapping tiles, boxes mapped back, merged with the full-frame pass), restricted
to the padded bounding boxes of the zones and lines.

- A tile is the detector's input size in frame pixels divided by `scale` (1: native pixels, 2:
  upscaled twice), so the detector runs it without shrinking it; tiles of one frame share one
  shape, so a node's inference pool can batch them (`InferencePool.detect_many`).
- When the regions need more than `max_tiles` tiles, tiles grow (less detail, the regions still
  covered); a tile that would be no sharper than the full-frame pass is not run at all.
- A box cut by a tile's inner border is dropped: an object smaller than the overlap is whole in
  the neighbouring tile, and a larger one is what the full-frame pass sees well. The pass thus
  only adds whole objects. Duplicates (tile seams, tile vs full frame) are matched one to one across passes, by class
  and overlap of the smaller box.

supervision's InferenceSlicer tiles the whole frame on a fixed grid and returns its own
`sv.Detections`; here the tiles follow the scene and the result is `edge.detections.Detections`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from edge.config import CameraConfig, RegionsPassConfig
from edge.detections import Detections
from edge.geometry import PolygonZone, scale_points
from edge.scene import SceneConfig

log = logging.getLogger(__name__)

Detect = Callable[[np.ndarray], Detections]
Box = tuple[int, int, int, int]  # x1, y1, x2, y2 in frame pixels (x2, y2 exclusive)

MERGE_IOS = 0.5  # same class, this share of the smaller box covered: one object (SAHI's default)
CUT_SHARE = 0.01  # a box edge this close to an inner tile border (share of the tile side) is cut
MIN_GAIN = 1.1  # a tile must be at least this much sharper than the full-frame pass to be worth it


@dataclass
class RegionsStats:
    passes: int = 0  # frames the pass ran on
    tiles: int = 0  # tile detector runs
    added: int = 0  # detections the pass added to the full-frame ones
    seconds: float = 0.0  # in the pass: tiles, mapping and merging (not the full-frame run)


def region_boxes(
    scene: SceneConfig,
    frame_wh: tuple[int, int],
    pad: float,
    only: Sequence[str] | None = None,
    zones: Sequence[PolygonZone] | None = None,
) -> list[Box]:
    """The padded bounding boxes of the scene's zones and lines in frame pixels, clipped to the
    frame. `zones`: the zones as the frame sees them now (moved with the camera); default: the
    scene's, scaled from its reference size. `only`: the ids to cover (None: all)."""
    w, h = frame_wh
    ref = scene.reference_size
    polys: list[tuple[str, np.ndarray]]
    if zones is not None:
        polys = [(z.id, np.asarray(z.polygon, np.float32)) for z in zones]
    else:
        polys = [(z.id, scale_points(np.asarray(z.polygon, np.float32), ref, frame_wh)) for z in scene.zones]
    polys += [(ln.id, scale_points(np.asarray(ln.points, np.float32), ref, frame_wh)) for ln in scene.lines]
    m = pad * h
    out: list[Box] = []
    for rid, pts in polys:
        if only is not None and rid not in only:
            continue
        x1, y1 = np.floor(pts.min(axis=0) - m)
        x2, y2 = np.ceil(pts.max(axis=0) + m)
        box = (max(0, int(x1)), max(0, int(y1)), min(w, int(x2)), min(h, int(y2)))
        if box[2] > box[0] and box[3] > box[1]:
            out.append(box)
    return out


def merge_boxes(boxes: Sequence[Box]) -> list[Box]:
    """Overlapping boxes joined into their union, until none overlap (one tiling per cluster)."""
    out = [tuple(b) for b in boxes]
    merged = True
    while merged:
        merged = False
        for i in range(len(out)):
            for j in range(i + 1, len(out)):
                a, b = out[i], out[j]
                if a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]:
                    out[i] = (min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]))
                    del out[j]
                    merged = True
                    break
            if merged:
                break
    return [(int(b[0]), int(b[1]), int(b[2]), int(b[3])) for b in out]


def _spans(lo: int, hi: int, size: int, overlap: float, limit: int) -> list[int]:
    """Starts of tiles of `size` covering [lo, hi), neighbours sharing at least `overlap` of a
    tile, each inside [0, limit)."""
    length = hi - lo
    if length <= size:
        start = lo + (length - size) // 2  # centred on the region, then moved inside the frame
        return [min(max(0, start), limit - size)]
    stride = size * (1 - overlap)
    n = int(np.ceil((length - size) / stride)) + 1
    step = (length - size) / (n - 1)
    return [min(max(0, round(lo + i * step)), limit - size) for i in range(n)]


def tile_layout(
    regions: Sequence[Box], frame_wh: tuple[int, int], tile_wh: tuple[int, int], overlap: float
) -> list[Box]:
    """Tiles of `tile_wh` (clipped to the frame) covering every region, neighbours overlapping."""
    w, h = frame_wh
    tw, th = min(tile_wh[0], w), min(tile_wh[1], h)
    tiles: list[Box] = []
    for x1, y1, x2, y2 in merge_boxes(regions):
        for ty in _spans(y1, y2, th, overlap, h):
            for tx in _spans(x1, x2, tw, overlap, w):
                tile = (tx, ty, tx + tw, ty + th)
                if tile not in tiles:
                    tiles.append(tile)
    return tiles


def plan_tiles(
    regions: Sequence[Box],
    frame_wh: tuple[int, int],
    input_for: Callable[[tuple[int, int]], tuple[int, int]],
    config: RegionsPassConfig,
) -> tuple[list[Box], float]:
    """The tiles of one frame and the scale they run at (detector pixels per frame pixel): tiles of
    the detector's input at `config.scale`, grown until at most `max_tiles` cover the regions; none
    when they would be no sharper than the full-frame pass. `input_for`: the detector's input
    (h, w) for an image of (h, w)."""
    if not regions:
        return [], 0.0
    w, h = frame_wh
    full_scale = _scale((h, w), input_for)
    # The detector's input for a square: square itself with a long-side input, else the model's fixed shape.
    ih, iw = input_for((1024, 1024))
    scale = config.scale
    while scale >= full_scale * MIN_GAIN:
        tiles = tile_layout(regions, frame_wh, (round(iw / scale), round(ih / scale)), config.overlap)
        if len(tiles) <= config.max_tiles:
            # A tile clipped to the frame runs at the detector's input for its own shape.
            actual = _scale((tiles[0][3] - tiles[0][1], tiles[0][2] - tiles[0][0]), input_for)
            return (tiles, actual) if actual >= full_scale * MIN_GAIN else ([], 0.0)
        scale /= 1.25
    return [], 0.0


def _scale(image_hw: tuple[int, int], input_for: Callable[[tuple[int, int]], tuple[int, int]]) -> float:
    """Detector input pixels per image pixel (the letterbox's scale)."""
    ih, iw = input_for(image_hw)
    return min(ih / image_hw[0], iw / image_hw[1])


def cut_by_tile(xyxy: np.ndarray, tile: Box, frame_wh: tuple[int, int]) -> np.ndarray:
    """Which boxes (tile pixels) touch a border of the tile that is inside the frame: cut there."""
    x1, y1, x2, y2 = tile
    w, h = frame_wh
    tol_x, tol_y = max(1.0, CUT_SHARE * (x2 - x1)), max(1.0, CUT_SHARE * (y2 - y1))
    cut = np.zeros(len(xyxy), dtype=bool)
    if x1 > 0:
        cut |= xyxy[:, 0] <= tol_x
    if y1 > 0:
        cut |= xyxy[:, 1] <= tol_y
    if x2 < w:
        cut |= xyxy[:, 2] >= (x2 - x1) - tol_x
    if y2 < h:
        cut |= xyxy[:, 3] >= (y2 - y1) - tol_y
    return cut


def merge_detections(
    full: Detections, tiles: Sequence[Box], parts: Sequence[Detections], frame_wh: tuple[int, int]
) -> Detections:
    """The full-frame detections with each tile's whole boxes (mapped to frame pixels) added;
    one box per object (`match_across_sources`), the most confident kept."""
    xyxy, conf, cls = [full.xyxy], [full.confidence], [full.class_id]
    source = [np.zeros(len(full), np.int32)]
    for k, (tile, det) in enumerate(zip(tiles, parts, strict=True), start=1):
        if not len(det):
            continue
        keep = ~cut_by_tile(det.xyxy, tile, frame_wh)
        xyxy.append(det.xyxy[keep] + np.array([tile[0], tile[1], tile[0], tile[1]], np.float32))
        conf.append(det.confidence[keep])
        cls.append(det.class_id[keep])
        source.append(np.full(int(keep.sum()), k, np.int32))
    all_xyxy = np.concatenate(xyxy).astype(np.float32)
    if len(all_xyxy) == len(full):
        return full
    all_conf, all_cls = np.concatenate(conf).astype(np.float32), np.concatenate(cls).astype(np.int32)
    idx = match_across_sources(all_xyxy, all_conf, all_cls, np.concatenate(source), MERGE_IOS)
    return Detections(all_xyxy[idx], all_conf[idx], all_cls[idx], full.names)


def match_across_sources(
    xyxy: np.ndarray, confidence: np.ndarray, class_id: np.ndarray, source: np.ndarray, threshold: float
) -> np.ndarray:
    """One box per object where several passes saw it: most confident first, a box takes from each
    other source (the full frame, each tile) at most one box of its class covering `threshold` of
    the smaller of the two (SAHI's IOS), the one of highest IoU. Boxes of one source were already
    NMSed by the detector and are never merged here. The indices kept, in their original order.

    Over the smaller box, not the union: the full-frame pass often boxes rider and motorbike as one
    'motorcycle' where a sharper tile boxes the bike alone (by IoU two motorbikes: two tracks, two
    events for one act). At most one per source: a full-frame box over driver and pillion passenger
    takes the tile's driver and leaves its passenger."""
    area = (xyxy[:, 2] - xyxy[:, 0]) * (xyxy[:, 3] - xyxy[:, 1])
    alive = np.ones(len(xyxy), dtype=bool)
    done = np.zeros(len(xyxy), dtype=bool)
    for i in np.argsort(-confidence, kind="stable"):
        if not alive[i]:
            continue
        done[i] = True
        iw = np.clip(np.minimum(xyxy[:, 2], xyxy[i, 2]) - np.maximum(xyxy[:, 0], xyxy[i, 0]), 0, None)
        ih = np.clip(np.minimum(xyxy[:, 3], xyxy[i, 3]) - np.maximum(xyxy[:, 1], xyxy[i, 1]), 0, None)
        inter = iw * ih
        ios = inter / np.maximum(np.minimum(area, area[i]), 1e-6)
        iou = inter / np.maximum(area + area[i] - inter, 1e-6)
        same = alive & ~done & (class_id == class_id[i]) & (source != source[i]) & (ios >= threshold)
        for src in np.unique(source[same]):
            candidates = np.flatnonzero(same & (source == src))
            alive[candidates[np.argmax(iou[candidates])]] = False
    return np.flatnonzero(alive)


def _input_for(detector: Any) -> Callable[[tuple[int, int]], tuple[int, int]]:
    """The detector's input (h, w) for an image of (h, w): `YoloDetector.input_size_for`."""
    runner = detector.detectors[0] if hasattr(detector, "detectors") else detector  # an InferencePool
    return runner.input_size_for


class RegionsPass:
    """A detector (`YoloDetector` or a node's `InferencePool`) plus the regions pass: called like
    the detector, on the whole frame; returns the merged detections."""

    def __init__(
        self,
        detector: Any,
        config: RegionsPassConfig,
        scene: SceneConfig,
        zones: Callable[[], Sequence[PolygonZone]] | None = None,
        name: str = "",
    ) -> None:
        self.detector = detector
        self.config = config
        self.scene = scene
        self.zones = zones  # the zones as the frame sees them now (they move with the camera)
        self.name = name
        self.stats = RegionsStats()
        self.tiles: list[Box] = []  # the last frame's tiles (debug, tests)
        self._runs = 0
        self._warned = False

    def plan(self, frame_hw: tuple[int, int]) -> tuple[list[Box], float]:
        h, w = frame_hw
        zones = self.zones() if self.zones is not None else None
        regions = region_boxes(self.scene, (w, h), self.config.pad, self.config.regions, zones)
        tiles, scale = plan_tiles(regions, (w, h), _input_for(self.detector), self.config)
        if regions and not tiles and not self._warned:
            self._warned = True
            log.warning(
                "camera %s: regions pass runs no tile: at most %d tiles would be no sharper than the full frame "
                "(scale %.2f of %dx%d); raise regions_pass.scale or max_tiles",
                self.name, self.config.max_tiles, self.config.scale, w, h,
            )
        return tiles, scale

    def __call__(self, image: np.ndarray) -> Detections:
        self._runs += 1
        if (self._runs - 1) % self.config.every_n_frames:
            return self.detector(image)
        t0 = time.perf_counter()
        tiles, _ = self.plan(image.shape[:2])
        self.tiles = tiles
        crops = [np.ascontiguousarray(image[y1:y2, x1:x2]) for x1, y1, x2, y2 in tiles]
        many = getattr(self.detector, "detect_many", None)
        if many is not None:  # a node's pool: the frame and its tiles queued at once, run in parallel/batched
            full, *parts = many([image, *crops])
            t_full = 0.0
        else:
            t1 = time.perf_counter()
            full = self.detector(image)
            t_full = time.perf_counter() - t1
            parts = [self.detector(c) for c in crops]
        if not tiles:
            return full
        h, w = image.shape[:2]
        merged = merge_detections(full, tiles, parts, (w, h))
        s = self.stats
        s.passes += 1
        s.tiles += len(tiles)
        s.added += len(merged) - len(full)
        s.seconds += time.perf_counter() - t0 - t_full
        return merged


def regions_pass_for(
    camera: CameraConfig, detector: Any, zones: Callable[[], Sequence[PolygonZone]] | None = None
) -> Detect:
    """What the camera's analysis calls per frame: the detector itself, or with the regions pass
    when the camera enables it (`regions_pass.enabled`)."""
    if not camera.regions_pass.enabled:
        return detector
    return RegionsPass(detector, camera.regions_pass, camera.scene, zones, name=camera.camera.id)


# Commissioning advice (docs/commissioning.md, "Small objects"): a camera needs the pass when the
# road users its rules judge are small in the full-frame pass. Measured (docs/benchmarks.md,
# "Regions-of-interest pass"): Hanoi 640x480, 26% of the person/two-wheeler boxes in its zones under
# 6% of the frame height, red light 9 -> 11 of 12 with the pass at scale 2.
SMALL_HEIGHT = 0.06  # a box under this share of the frame height is small
SMALL_SHARE_ON = 0.2  # advise the pass when at least this share of the road users there is small
MIN_SEEN = 30  # fewer boxes than this: no advice (look over a busier stretch)
ROAD_USERS = ("person", "motorcycle", "bicycle")


@dataclass
class RegionsAdvice:
    boxes: int  # person / two-wheeler boxes whose ground point is in the regions, summed over frames
    small: int  # of which under SMALL_HEIGHT of the frame height
    scale: float | None  # the regions_pass.scale to turn on, None: leave the pass off
    reason: str

    @property
    def small_share(self) -> float:
        return self.small / self.boxes if self.boxes else 0.0


def regions_advice(
    scene: SceneConfig, frame_wh: tuple[int, int], detections: Sequence[Detections], long_side: int
) -> RegionsAdvice:
    """Whether a camera should run the regions pass, from the full-frame pass's boxes on a stretch
    of its footage: on when at least SMALL_SHARE_ON of the road users in its zones and at its
    lines (the pass's own regions, padded as by default) are under SMALL_HEIGHT of the frame
    height; at scale 1 when the frame is wider than 1.5x the detector's long side (its native pixels
    are already sharper than the full frame's), else 2."""
    w, h = frame_wh
    regions = region_boxes(scene, frame_wh, RegionsPassConfig().pad)
    boxes = small = 0
    for det in detections:
        if not len(det) or not regions:
            continue
        g = det.ground_points()
        inside = np.zeros(len(det), dtype=bool)
        for x1, y1, x2, y2 in regions:
            inside |= (g[:, 0] >= x1) & (g[:, 0] < x2) & (g[:, 1] >= y1) & (g[:, 1] < y2)
        sel = inside & np.isin(det.class_names(), ROAD_USERS)
        boxes += int(sel.sum())
        small += int((sel & ((det.xyxy[:, 3] - det.xyxy[:, 1]) < SMALL_HEIGHT * h)).sum())
    share = small / boxes if boxes else 0.0
    if not regions:
        return RegionsAdvice(0, 0, None, "the scene has no zones or lines: the pass would have nothing to tile")
    if boxes < MIN_SEEN:
        return RegionsAdvice(boxes, small, None, f"only {boxes} road users seen in the zones and at the lines: "
                             "look again over a busier stretch")
    if share < SMALL_SHARE_ON:
        return RegionsAdvice(boxes, small, None, f"{share:.0%} of the road users there are under "
                             f"{SMALL_HEIGHT:.0%} of the frame height (< {SMALL_SHARE_ON:.0%}): leave the pass off")
    scale = 1.0 if w > 1.5 * long_side else 2.0
    return RegionsAdvice(boxes, small, scale, f"{share:.0%} of the road users there are under {SMALL_HEIGHT:.0%} "
                         f"of the frame height (>= {SMALL_SHARE_ON:.0%}): regions_pass: {{enabled: true, "
                         f"scale: {scale:g}}}")
