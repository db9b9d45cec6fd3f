"""Class-agnostic "new static object" detection by background modelling. Pure numpy/OpenCV.

Stalls, rubbish bags and cartons have no detector class; what they share is that a patch of the
scene changes and then stays changed while nothing there moves. The frame is cut into cells; each
cell is compared with a slowly learnt background by its texture (zero-mean normalised correlation,
blind to gain and offset, so to lighting changes and soft shadows) and, where both are flat, by
its chromaticity (a shadow darkens a floor but keeps its colour). A cell that differs from the
background and has not changed between samples for `static_seconds` is static-new; neighbouring
static-new cells form one object. A change over most of the frame is a scene cut: the background
is learnt again rather than reporting everything.

Camera motion: with a registration (edge/registration.py) each frame is warped into the reference
view before it is compared, so drift and sway neither reset the background nor leave blobs along
edges; cells the warped frame does not cover are left alone. While the registration says the
camera moved (or a frame cannot be registered) the model neither learns nor reports: it waits
for the view to come back. Without one (a reference with no texture) a whole-image shift between
samples still means a move and the background is learnt again.

Crowds of small movers are not objects: a queue of distant riders too small to box leaves
cells that differ from the background and, here and there, hold still for a moment. An object
is compact, its surroundings settle once whoever left it has gone, and movers do not cover it for
most of its life; a blob whose region keeps changing inside, or that people and vehicles kept
covering, is not reported (in doubt, nothing).

`FrameHistory` keeps a thinned window of recent frames so that a rule can show the moment an
object appeared, which in a static scene is long before the rule is sure of it.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, slots=True)
class StaticObject:
    box: tuple[float, float, float, float]  # x1, y1, x2, y2 in frame pixels
    area: float  # frame pixels covered by its cells
    first_seen: float  # camera-clock seconds when its cells started to differ from the background


@dataclass(frozen=True)
class StaticChangeParams:
    work_width: int = 400  # analysis width; cells are counted at this scale
    cell: int = 8  # cell side in working pixels
    static_seconds: float = 2.0  # unchanged between samples this long to count as static
    texture_min_std: float = 6.0  # grey-level std below which a cell is "flat"
    texture_ncc: float = 0.5  # correlation below this = different texture
    chroma_delta: float = 0.045  # rg-chromaticity distance for flat cells
    motion_delta: float = 10.0  # mean abs grey change between samples = moving
    learn_rate: float = 0.05  # background update of unchanged cells per sample
    absorb_seconds: float | None = 1800.0  # a static change older than this becomes background
    scene_cut_share: float = 0.5  # more than this share of cells changed at once: re-learn
    camera_shift_px: float = 0.75  # whole-image shift between samples (working px) = camera moved
    min_cells: int = 2
    max_elongation: float = 5.0  # longer/shorter side of an object, in cells
    activity_seconds: float = 4.0  # time constant of each cell's recent-motion share
    max_activity: float = 0.2  # recent-motion share in and around a blob above this: a crowd, not an object
    min_fill: float = 0.3  # cells of a blob over its bounding box, below this: scattered, not one object
    max_covered_share: float = 0.5  # share of its life under mover boxes above this: not an object


def _cells(a: np.ndarray, c: int) -> np.ndarray:
    """(H, W[, C]) -> (H/c, W/c, c*c[, C]) blocks."""
    h, w = a.shape[0] // c, a.shape[1] // c
    a = a[: h * c, : w * c]
    if a.ndim == 2:
        return a.reshape(h, c, w, c).swapaxes(1, 2).reshape(h, w, c * c)
    return a.reshape(h, c, w, c, a.shape[2]).swapaxes(1, 2).reshape(h, w, c * c, a.shape[2])


class StaticChangeDetector:
    def __init__(self, params: StaticChangeParams | None = None) -> None:
        self.p = params or StaticChangeParams()
        self._t: float | None = None
        self._scale = 1.0
        self._frame_shape: tuple[int, int] | None = None
        self._bg: np.ndarray | None = None  # (H, W, 3) float32 working-scale background
        self._small: np.ndarray | None = None  # the last frame at working scale
        self._prev: np.ndarray | None = None  # previous sample's grey cells
        self._prev_grey: np.ndarray | None = None  # previous sample, whole grey image
        self._changed_since: np.ndarray | None = None  # per cell; nan = matches background
        self._still_since: np.ndarray | None = None
        self.static_mask: np.ndarray | None = None  # per cell, last update
        self._win: np.ndarray | None = None
        self._unknown = np.zeros((0, 0), bool)  # cells not learnt yet (hidden behind someone)
        self._activity: np.ndarray | None = None  # per cell, recent share of samples with motion
        self._life = np.zeros((0, 0), np.float32)  # per cell, samples since it started to differ
        self._covered = np.zeros((0, 0), np.float32)  # ... of which under a mover box
        self._valid = np.zeros((0, 0), bool)  # per cell, covered by the (warped) frame
        self._under = np.zeros((0, 0), bool)  # per cell, under a mover box in the last update
        self._to_frame: np.ndarray | None = None  # reference -> frame (2x3), last registered update
        self.paused = False  # the camera moved: nothing learnt, nothing reported
        self.scene_cuts = 0
        self.camera_moves = 0
        self.shadows = 0
        self.crowds = 0  # blobs rejected as crowds of movers

    def reset(self) -> None:
        self._bg = None

    def update(self, image: np.ndarray, t: float, movers: np.ndarray | None = None, registration=None) -> None:
        """Feed one frame (BGR) with the (N, 4) boxes of people and vehicles in it: what is under
        them when the background is (re)learnt stays unknown until they have gone, so a person
        standing there at start-up does not leave a "new object" behind. `registration`
        (edge.registration.Registration) places the frame in the reference view. Calling again
        with the same t does nothing (rules share one detector)."""
        import cv2

        if self._t is not None and t == self._t:
            return
        dt = 0.0 if self._t is None else t - self._t
        self._t = t
        p = self.p
        registered = registration is not None and registration.available
        self.paused = registered and (registration.moved or not registration.ok)
        if self.paused:
            self.static_mask = None  # nothing to report while the view is elsewhere
            return
        h, w = image.shape[:2]
        self._frame_shape = (h, w)
        self._scale = w / p.work_width
        small = cv2.resize(image, (p.work_width, max(p.cell, round(h / self._scale))), interpolation=cv2.INTER_AREA)
        small = small.astype(np.float32)
        valid_px = None
        self._to_frame = None
        if registered and not registration.identity:
            m = np.asarray(registration.matrix, np.float64).copy()
            m[:, 2] /= self._scale  # frame -> reference, at working scale
            size = (small.shape[1], small.shape[0])
            small = cv2.warpAffine(small, m, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
            valid_px = cv2.warpAffine(np.ones(small.shape[:2], np.uint8), m, size, flags=cv2.INTER_NEAREST) > 0
            inv = np.vstack([registration.matrix, [0.0, 0.0, 1.0]])
            self._to_frame = np.linalg.inv(inv)[:2]
            if movers is not None:
                movers = registration.boxes_to_reference(movers)
        self._small = small
        cells_shape = (small.shape[0] // p.cell, small.shape[1] // p.cell)
        self._valid = (
            _cells(valid_px.astype(np.float32), p.cell).min(axis=2) > 0
            if valid_px is not None
            else np.ones(cells_shape, bool)
        )
        if self._bg is None or self._bg.shape != small.shape:
            self._learn(small, movers)
            return
        whole = small.mean(axis=2)
        # Registered: the registration has judged the camera's motion; an unregistered camera
        # falls back to the whole-image shift between samples.
        moved = False if registered else self._camera_moved(whole)
        self._prev_grey = whole
        if moved:
            # A hand-held or PTZ camera: everything shifts; start again once it holds still.
            self.camera_moves += 1
            self._learn(small, movers)
            return
        self._fill_unknown(small, movers)
        grey = _cells(whole, p.cell)
        bg_grey = _cells(self._bg.mean(axis=2), p.cell)
        changed = self._differs(grey, bg_grey, _cells(small, p.cell), _cells(self._bg, p.cell))
        changed &= self._valid  # outside the warped frame there is nothing to compare
        if changed.mean() > p.scene_cut_share:
            self.scene_cuts += 1
            self._learn(small, movers)
            return
        moving = np.abs(grey.mean(axis=2) - self._prev.mean(axis=2)) > p.motion_delta
        moving |= self._differs(grey, self._prev, None, None)
        self._prev = grey
        cs, ss = self._changed_since, self._still_since
        cs[~changed] = np.nan
        cs[changed & np.isnan(cs)] = t
        # Still over the whole dwell, not only between samples: movers creeping a few pixels a
        # sample (a queue of distant riders) change a cell slowly, but it is not what it was
        # `static_seconds` ago although it already differed from the background then.
        lagged = self._lagged(t, grey)
        if lagged is not None:
            lag_t, lag = lagged
            drift = np.abs(grey.mean(axis=2) - lag.mean(axis=2)) > p.motion_delta
            drift |= self._differs(grey, lag, None, None)
            moving |= drift & (cs <= lag_t)  # nan (matches the background) compares False
        moving &= self._valid
        ss[moving] = t
        keep = float(np.exp(-dt / p.activity_seconds)) if dt > 0 else 1.0
        self._activity = self._activity * keep + moving * (1.0 - keep)
        under = self._box_cells(movers) if movers is not None else np.zeros_like(changed)
        self._life = np.where(changed, self._life + 1, 0).astype(np.float32)
        self._covered = np.where(changed, self._covered + under, 0).astype(np.float32)
        static = changed & ~moving & (t - ss >= p.static_seconds) & ~self._unknown
        # Never under someone: a person standing still in a dark coat is not a shadow to learn.
        self._under = under
        self._absorb_shadows(static & ~under, small)
        static &= ~np.isnan(cs)  # what was absorbed as shadow is background now
        self.static_mask = static
        # Follow slow light drift where the scene matches the background; absorb very old changes.
        # Not next to a change (a cell an object only grazes) and not under anyone: learning
        # those would soak part of an object into the background and leave a ghost when it goes.
        busy = changed | under | ~self._valid
        learn = ~cv2.dilate(busy.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
        if p.absorb_seconds is not None:
            old = static & (t - cs >= p.absorb_seconds)
            learn_now = self._cell_mask_to_pixels(old)
            self._bg[learn_now] = small[learn_now]
            cs[old] = np.nan
        px = self._cell_mask_to_pixels(learn)
        self._bg[px] += p.learn_rate * (small[px] - self._bg[px])

    def objects(self, exclude: np.ndarray | None = None) -> list[StaticObject]:
        """Static-new objects of the last update, minus cells under the (N, 4) `exclude` boxes
        (people and vehicles the detector already knows about). Boxes in frame pixels (of the
        frame last fed: registered, they are mapped back from the reference view)."""
        import cv2

        if self.static_mask is None or self._t is None or self.paused:
            return []
        mask = self.static_mask.copy()
        c, s = self.p.cell, self._scale
        if exclude is not None and self._to_frame is not None:
            from edge.registration import invert, warp_boxes

            exclude = warp_boxes(invert(self._to_frame), exclude)
        if exclude is not None:
            for x1, y1, x2, y2 in np.asarray(exclude, np.float32).reshape(-1, 4):
                mask[
                    max(0, int(y1 / s / c)) : int(np.ceil(y2 / s / c)), max(0, int(x1 / s / c)) : int(np.ceil(x2 / s / c))
                ] = False
        if not mask.any():
            return []
        # Cells of one object touch, or nearly: an object on a flat floor shows mostly at its outline.
        joined = cv2.morphologyEx(mask.astype(np.uint8), cv2.MORPH_CLOSE, np.ones((3, 3), np.uint8))
        n, labels, stats, _ = cv2.connectedComponentsWithStats(joined, connectivity=8)
        out: list[StaticObject] = []
        h, w = self._frame_shape or (0, 0)
        for k in range(1, n):
            members = (labels == k) & mask
            count = int(members.sum())
            if count < self.p.min_cells:
                continue
            x, y, bw, bh = (int(v) for v in stats[k, :4])
            if max(bw, bh) > self.p.max_elongation * min(bw, bh):
                continue  # a line: the edge of a shadow or of a lit patch, not a thing
            if self._crowd_like(members, x, y, bw, bh, count):
                self.crowds += 1
                continue
            first = float(np.nanmin(self._changed_since[members]))
            box = np.array([[x * c * s, y * c * s, (x + bw) * c * s, (y + bh) * c * s]], np.float32)
            if self._to_frame is not None:
                from edge.registration import warp_boxes

                box = warp_boxes(self._to_frame, box)
            bx1, by1, bx2, by2 = (float(v) for v in box[0])
            box_t = (round(max(0.0, bx1), 1), round(max(0.0, by1), 1), round(min(w, bx2), 1), round(min(h, by2), 1))
            out.append(StaticObject(box_t, count * (c * s) ** 2, first))
        return out

    def _crowd_like(self, members: np.ndarray, x: int, y: int, bw: int, bh: int, count: int) -> bool:
        """Not one still object: scattered cells, a region that keeps changing in and around it
        (movers too small to box), or one movers covered for most of its life."""
        p = self.p
        if count < p.min_fill * bw * bh:
            return True
        if self._activity is not None:
            hh, ww = self._activity.shape
            ring = self._activity[max(0, y - 1) : min(hh, y + bh + 1), max(0, x - 1) : min(ww, x + bw + 1)]
            if float(ring.mean()) > p.max_activity:
                return True
        covered = self._covered[members] / np.maximum(self._life[members], 1.0)
        return bool(covered.size and float(covered.mean()) > p.max_covered_share)

    def _lagged(self, t: float, grey: np.ndarray) -> tuple[float, np.ndarray] | None:
        """The cells as they were `static_seconds` ago (None until the history reaches back so far);
        keeps this sample for later."""
        past = self._past
        past.append((t, grey))
        while len(past) > 1 and past[1][0] <= t - self.p.static_seconds + 1e-6:
            past.popleft()
        first_t, first = past[0]
        ok = first_t <= t - self.p.static_seconds + 1e-6 and first.shape == grey.shape
        return (first_t, first) if ok else None

    def _camera_moved(self, grey: np.ndarray) -> bool:
        import cv2

        if self._prev_grey is None or self._prev_grey.shape != grey.shape:
            return False
        win = self._window(grey.shape)
        # phaseCorrelate windows its inputs in place: hand it copies.
        (dx, dy), _ = cv2.phaseCorrelate(self._prev_grey.copy(), grey.copy(), win)
        return bool(np.hypot(dx, dy) > self.p.camera_shift_px)

    def _window(self, shape: tuple[int, int]) -> np.ndarray:
        import cv2

        if self._win is None or self._win.shape != shape:
            self._win = cv2.createHanningWindow((shape[1], shape[0]), cv2.CV_32F)
        return self._win

    def _absorb_shadows(self, static: np.ndarray, small: np.ndarray) -> None:
        """Static regions that are only the background in shadow become background (in place)."""
        import cv2

        if not static.any():
            return
        c = self.p.cell
        joined = cv2.morphologyEx(static.astype(np.uint8), cv2.MORPH_CLOSE, np.ones((3, 3), np.uint8))
        n, labels, stats, _ = cv2.connectedComponentsWithStats(joined, connectivity=8)
        for k in range(1, n):
            x, y, bw, bh = (int(v) for v in stats[k, :4])
            x1, y1, x2, y2 = x * c, y * c, (x + bw) * c, (y + bh) * c
            if not (self._shadow_like(x1, y1, x2, y2) or self._ghost_like(x1, y1, x2, y2)):
                continue
            cells = np.zeros_like(static)
            cells[y : y + bh, x : x + bw] = True
            px = self._cell_mask_to_pixels(cells)
            self._bg[px] = small[px]
            self._changed_since[cells] = np.nan
            static[cells] = False
            self.shadows += 1

    def _ghost_like(self, x1: int, y1: int, x2: int, y2: int) -> bool:
        """Something textured that was in the background has gone (a car drove off): the scene
        now has clearly less texture than the background there. A left object adds texture."""
        import cv2

        f = cv2.cvtColor(self._small[y1:y2, x1:x2].astype(np.uint8), cv2.COLOR_BGR2GRAY).astype(np.float32)
        b = cv2.cvtColor(self._bg[y1:y2, x1:x2].astype(np.uint8), cv2.COLOR_BGR2GRAY).astype(np.float32)

        def energy(g: np.ndarray) -> float:
            import cv2

            return float(np.abs(cv2.Sobel(g, cv2.CV_32F, 1, 0)).mean() + np.abs(cv2.Sobel(g, cv2.CV_32F, 0, 1)).mean())

        if energy(f) >= 0.6 * energy(b):
            return False
        # Where the thing stood the ground now shows, as light as the ground around it; a dark
        # flat object left on patterned ground (a black bag on tiles) is not.
        # The ground around it: a cell's ring, not under anyone (the person who took it away).
        c = self.p.cell
        cy1, cx1, cy2, cx2 = y1 // c, x1 // c, y2 // c, x2 // c
        hc, wc = self._under.shape
        ring = np.zeros((hc, wc), bool)
        ring[max(0, cy1 - 1) : min(hc, cy2 + 1), max(0, cx1 - 1) : min(wc, cx2 + 1)] = True
        ring[cy1:cy2, cx1:cx2] = False
        ring &= ~self._under & self._valid
        if not ring.any():
            return True  # nothing to compare with: the texture test alone, as before
        grey = self._small.mean(axis=2)
        around = float(grey[self._cell_mask_to_pixels(ring)].mean())
        # Not far darker than its surroundings: exposed ground (light or dark) matches them; a
        # dark object does not (a bright one may pass as ground: missed, never a false event).
        return float(f.mean()) >= 0.8 * around

    def _fill_unknown(self, small: np.ndarray, movers: np.ndarray | None) -> None:
        """Learn the cells that were hidden at (re)learning as soon as nobody covers them."""
        if not self._unknown.any():
            return
        covered = self._box_cells(movers) if movers is not None else np.zeros_like(self._unknown)
        clear = self._unknown & ~covered & self._valid
        if clear.any():
            px = self._cell_mask_to_pixels(clear)
            self._bg[px] = small[px]
            self._unknown &= ~clear

    def _box_cells(self, boxes: np.ndarray) -> np.ndarray:
        c, s = self.p.cell, self._scale
        out = np.zeros(self._prev.shape[:2], bool)
        for x1, y1, x2, y2 in np.asarray(boxes, np.float32).reshape(-1, 4):
            out[max(0, int(y1 / s / c)) : int(np.ceil(y2 / s / c)), max(0, int(x1 / s / c)) : int(np.ceil(x2 / s / c))] = True
        return out

    def _shadow_like(self, x1: int, y1: int, x2: int, y2: int) -> bool:
        """A region that is the background dimmed: darker by an even factor, same colour. A
        shadow's outline looks like new texture cell by cell, but over the whole region it is just
        the old scene, darker (a black bag is far darker than a shadow, and not even)."""
        import cv2

        if self._small is None or self._bg is None:
            return False
        f = cv2.GaussianBlur(self._small[y1:y2, x1:x2], (3, 3), 0) + 1.0
        b = cv2.GaussianBlur(self._bg[y1:y2, x1:x2], (3, 3), 0) + 1.0
        q = f.sum(axis=2) / b.sum(axis=2)
        dark = q < 0.97  # a penumbra is only a little darker
        if dark.mean() < 0.02 or (q > 1.12).mean() > 0.05:
            return False  # not darker, or parts got brighter: something is there
        qd = q[dark]
        if not (0.3 <= float(np.median(qd)) <= 0.97) or float(qd.std()) > 0.15:
            return False
        chroma = np.abs(f / f.sum(axis=2, keepdims=True) - b / b.sum(axis=2, keepdims=True)).max(axis=2)
        if float(np.median(chroma[dark])) >= 0.03:
            return False
        # A shadow keeps the ground's pattern (tiles, cracks), only darker; a dark bag on a
        # patterned floor hides it. Where the ground has a pattern, the pattern must still be there.
        fg, bgg = f.mean(axis=2), b.mean(axis=2)
        fz, bz = fg - fg.mean(), bgg - bgg.mean()
        if float(bz.std()) > self.p.texture_min_std:
            ncc = float((fz * bz).mean() / max(float(fz.std() * bz.std()), 1e-6))
            return ncc >= 0.5
        return True

    def _learn(self, small: np.ndarray, movers: np.ndarray | None = None) -> None:
        p = self.p
        self._prev_grey = small.mean(axis=2)
        self._bg = small.copy()
        self._prev = _cells(small.mean(axis=2), p.cell)
        shape = self._prev.shape[:2]
        self._unknown = self._box_cells(movers) if movers is not None else np.zeros(shape, bool)
        if self._valid.shape == shape:
            self._unknown |= ~self._valid  # learnt where the warped frame reached, the rest later
        self._changed_since = np.full(shape, np.nan)
        self._still_since = np.full(shape, self._t if self._t is not None else 0.0)
        self.static_mask = np.zeros(shape, bool)
        self._activity = np.zeros(shape, np.float32)
        self._past: deque[tuple[float, np.ndarray]] = deque()
        self._life = np.zeros(shape, np.float32)
        self._covered = np.zeros(shape, np.float32)

    def _differs(
        self, a: np.ndarray, b: np.ndarray, a_rgb: np.ndarray | None, b_rgb: np.ndarray | None
    ) -> np.ndarray:
        p = self.p
        da = a - a.mean(axis=2, keepdims=True)
        db = b - b.mean(axis=2, keepdims=True)
        sa, sb = np.sqrt((da * da).mean(axis=2)), np.sqrt((db * db).mean(axis=2))
        ncc = (da * db).mean(axis=2) / np.maximum(sa * sb, 1e-6)
        textured_a, textured_b = sa > p.texture_min_std, sb > p.texture_min_std
        both = textured_a & textured_b
        out = both & (ncc < p.texture_ncc)
        # Texture appeared on, or vanished from, a flat surface; strong contrast only, so a soft
        # shadow edge crossing a cell does not count.
        one = textured_a ^ textured_b
        out |= one & (np.maximum(sa, sb) > 2.5 * np.maximum(np.minimum(sa, sb), 1.0))
        if a_rgb is not None and b_rgb is not None:
            flat = ~textured_a & ~textured_b
            ca, cb = a_rgb.mean(axis=2), b_rgb.mean(axis=2)  # (h, w, 3) cell mean colour
            # Chromaticity is noise where any channel is near black.
            bright = (ca.min(axis=2) > 15) & (cb.min(axis=2) > 15)
            # Grey-world: a global colour cast (dusk, a cloud, white balance) is not an object.
            ca = ca / np.maximum(np.median(ca.reshape(-1, 3), axis=0), 1.0)
            cb = cb / np.maximum(np.median(cb.reshape(-1, 3), axis=0), 1.0)
            ra = ca / np.maximum(ca.sum(axis=2, keepdims=True), 1e-3)
            rb = cb / np.maximum(cb.sum(axis=2, keepdims=True), 1e-3)
            chroma = np.abs(ra - rb)[..., :3].max(axis=2) > p.chroma_delta
            out |= flat & bright & chroma
        return out

    def _cell_mask_to_pixels(self, cells: np.ndarray) -> np.ndarray:
        c = self.p.cell
        px = np.repeat(np.repeat(cells, c, axis=0), c, axis=1)
        h, w = self._bg.shape[:2]
        full = np.zeros((h, w), bool)
        full[: px.shape[0], : px.shape[1]] = px
        return full


@dataclass(frozen=True, slots=True)
class Snapshot:
    t: float
    image: np.ndarray
    boxes: np.ndarray  # (N, 4) owner-class boxes at that moment
    track_ids: np.ndarray  # (N,)
    classes: tuple[str, ...]


class FrameHistory:
    """Recent frames, at most `rate` per second over `seconds`: what the scene looked like when an
    object appeared. Holds references, so callers must not modify frames in place."""

    def __init__(self, seconds: float, rate: float = 2.0) -> None:
        self.seconds, self.step = seconds, 1.0 / rate
        self._items: deque[Snapshot] = deque()

    def add(self, snap: Snapshot) -> None:
        if self._items and snap.t - self._items[-1].t < self.step:
            return
        self._items.append(snap)
        while self._items and snap.t - self._items[0].t > self.seconds:
            self._items.popleft()

    def between(self, t0: float, t1: float) -> list[Snapshot]:
        return [s for s in self._items if t0 - 1e-6 <= s.t <= t1 + 1e-6]

    def at(self, t: float) -> Snapshot | None:
        """The last snapshot at or before t (else the oldest)."""
        best = None
        for s in self._items:
            if s.t <= t + 1e-6:
                best = s
            else:
                break
        return best or (self._items[0] if self._items else None)


class RecentBoxes:
    """Boxes of people and vehicles over the last few seconds: a person the detector misses for
    a frame or two still masks their own pixels from the static-change detector."""

    def __init__(self, seconds: float = 2.0) -> None:
        self.seconds = seconds
        self._items: deque[tuple[float, np.ndarray]] = deque()

    def add(self, t: float, boxes: np.ndarray) -> np.ndarray:
        """Add this frame's boxes; return every box of the window (N, 4)."""
        self._items.append((t, np.asarray(boxes, np.float32).reshape(-1, 4)))
        while self._items and t - self._items[0][0] > self.seconds:
            self._items.popleft()
        return np.concatenate([b for _, b in self._items])
