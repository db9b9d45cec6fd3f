"""Camera motion compensation: where each analysed frame lies in the camera's reference view.

Poles sway, PTZ cameras return to a preset slightly off, hand-held and vehicle footage drifts. A
frame is registered to the reference (the first frame the analysis saw) by ORB features on a
downscaled grey image, matched to the reference's and fitted with a RANSAC similarity
(translation, rotation, uniform scale): enough for sway and drift, far more stable than a full
homography on few points. The features are picked on a grid over the whole frame and RANSAC
keeps the transform most of them agree on, so people and vehicles moving through (a minority of
the features, each moving its own way) do not pull it.

A registration is trusted when enough features agree (`min_inliers`, `min_inlier_share`). A frame
that cannot be registered, or whose transform is beyond tolerance (a shift over `max_shift`
of the frame width, a rotation over `max_rotation_deg`, a zoom), means the camera is no longer
looking at its scene: after `moved_seconds` of that the state is `camera_moved` (a health state
and one operator notice, not a stream of events), and it clears once frames register to the
reference again for `back_seconds`. A reference with too little texture to register against
(a blank wall, a dark frame) leaves the registration "unavailable": identity, never moved.

The reference view is the snapshot the scene was drawn on (`scene.reference_image`) when the
camera config names one, else the first frame analysed. Frames are registered to the first frame
(the same light, the same hour), and that first frame is placed once on the drawn snapshot: the
two transforms compose. So a camera that comes back from a restart or a PTZ tour a little off its
preset is mapped back onto the zones drawn for it (without a snapshot it would take the shifted
view as its reference and judge every crossing against lines that are no longer on the road),
and one that looks elsewhere is `camera_moved` from the start. A night frame may not match a
daytime snapshot: until the first frame can be placed the registration is to the first frame
alone, and placing is tried again every `anchor_retry_seconds`. A view lit like the snapshot
(mean brightness within `anchor_light_tolerance`) that still does not match it is looking
elsewhere: that counts as a frame beyond tolerance, so it becomes `camera_moved`, rather than the
rules judging another scene with this one's zones.

Pure numpy/OpenCV (cv2 imported lazily, as the rest of the analysis does).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np

log = logging.getLogger("edge.registration")

IDENTITY = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], np.float64)


@dataclass(frozen=True)
class RegistrationParams:
    work_width: int = 320  # features are found at this width (cost: docs/benchmarks.md)
    features: int = 300
    grid: tuple[int, int] = (4, 3)  # features are picked per tile so they spread over the frame
    min_reference_features: int = 40  # fewer in the reference: nothing to register against
    min_inliers: int = 20
    min_inlier_share: float = 0.25  # of the matches
    ransac_px: float = 2.0  # at work_width
    max_shift: float = 0.08  # of the frame width: beyond it the camera looks elsewhere
    max_rotation_deg: float = 4.0
    max_scale: float = 0.06  # |scale - 1|: a zoom
    moved_seconds: float = 2.0  # lost this long (at every frame analysed) = camera_moved
    back_seconds: float = 2.0  # registered again this long = back
    anchor_retry_seconds: float = 30.0  # a first frame the drawn snapshot did not place: try again
    anchor_light_tolerance: float = 0.35  # of the snapshot's mean brightness: "lit alike" (not night vs day)


@dataclass(frozen=True)
class Registration:
    """One frame against the reference. `matrix` maps frame pixels to reference pixels (2x3)."""

    matrix: np.ndarray
    ok: bool  # a trusted transform within tolerance (or identity while unavailable)
    inliers: int
    matches: int
    shift_px: float  # translation, frame pixels
    rotation_deg: float
    scale: float
    moved: bool  # the camera_moved state after this frame
    available: bool = True  # False: the reference has too little texture; identity is assumed

    def to_reference(self, points: np.ndarray) -> np.ndarray:
        return apply(self.matrix, points)

    def to_frame(self, points: np.ndarray) -> np.ndarray:
        return apply(invert(self.matrix), points)

    def boxes_to_reference(self, boxes: np.ndarray) -> np.ndarray:
        return warp_boxes(self.matrix, boxes)

    def boxes_to_frame(self, boxes: np.ndarray) -> np.ndarray:
        return warp_boxes(invert(self.matrix), boxes)

    @property
    def identity(self) -> bool:
        return bool(np.allclose(self.matrix, IDENTITY, atol=1e-9))


def apply(m: np.ndarray, points: np.ndarray) -> np.ndarray:
    p = np.asarray(points, np.float64).reshape(-1, 2)
    return (p @ m[:, :2].T + m[:, 2]).astype(np.float32)


def _mean_grey(image: np.ndarray) -> float:
    return float(image.mean())  # over the colour channels too: a brightness, not a luma


def _h(m: np.ndarray) -> np.ndarray:
    """A 2x3 affine as 3x3, to compose."""
    return np.vstack([np.asarray(m, np.float64), [0.0, 0.0, 1.0]])


def invert(m: np.ndarray) -> np.ndarray:
    a = np.vstack([m, [0.0, 0.0, 1.0]])
    return np.linalg.inv(a)[:2]


def warp_boxes(m: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """(N, 4) x1, y1, x2, y2 -> the bounding boxes of their warped corners."""
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    if len(b) == 0:
        return b.astype(np.float32)
    corners = np.stack([b[:, [0, 1]], b[:, [2, 1]], b[:, [0, 3]], b[:, [2, 3]]], axis=1)  # (N, 4, 2)
    w = apply(m, corners.reshape(-1, 2)).reshape(-1, 4, 2)
    return np.concatenate([w.min(axis=1), w.max(axis=1)], axis=1).astype(np.float32)


class FrameRegistrar:
    """Registers frames to the reference view and keeps the camera_moved state (with hysteresis)."""

    def __init__(
        self, params: RegistrationParams | None = None, *, name: str = "", anchor: np.ndarray | None = None
    ) -> None:
        """`anchor`: the snapshot the scene was drawn on (BGR or grey), or None: the first frame."""
        self.p = params or RegistrationParams()
        self.name = name
        self._ref: tuple | None = None  # (keypoints xy, descriptors) of the first frame, frame pixels
        self._anchor_image = anchor
        self._anchor: tuple | None = None  # the snapshot's features, at the frame's size
        self._anchor_m: np.ndarray | None = None  # 3x3, first-frame pixels -> snapshot pixels, once placed
        self._anchor_next_try = -math.inf
        self._anchor_light = 0.0  # the snapshot's mean grey level
        self._elsewhere = False  # lit like the snapshot, yet not matching it
        self._scale = 1.0
        self._shape: tuple[int, int] | None = None
        self.available = True
        self.moved = False
        self._bad_since: float | None = None
        self._good_since: float | None = None
        self.last: Registration | None = None
        self.transitions = 0
        self._orb = None

    def _features(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        import cv2

        p = self.p
        h, w = image.shape[:2]
        scale = w / p.work_width
        grey = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        small = cv2.resize(grey, (p.work_width, max(16, round(h / scale))), interpolation=cv2.INTER_AREA)
        if self._orb is None:
            self._orb = cv2.ORB_create(nfeatures=p.features * 2, fastThreshold=10, edgeThreshold=15, patchSize=15)
        kps = self._orb.detect(small, None)
        # Keep the strongest per grid tile: spread over the frame, so no one busy corner decides.
        gx, gy = p.grid
        sh, sw = small.shape[:2]
        per_tile = max(4, p.features // (gx * gy))
        tiles: dict[tuple[int, int], list] = {}
        for k in kps:
            key = (min(gx - 1, int(k.pt[0] * gx / sw)), min(gy - 1, int(k.pt[1] * gy / sh)))
            tiles.setdefault(key, []).append(k)
        chosen = [k for ks in tiles.values() for k in sorted(ks, key=lambda k: -k.response)[:per_tile]]
        kps, desc = self._orb.compute(small, chosen)
        xy = np.array([k.pt for k in kps], np.float32).reshape(-1, 2) * scale
        return xy, desc

    @property
    def anchored(self) -> bool:
        """The first frame is placed on the drawn snapshot: registrations are to the snapshot."""
        return self._anchor_m is not None

    def reset(self) -> None:
        """Forget the reference: the next frame becomes it (and is placed on the snapshot again)."""
        self._ref = None
        self._anchor_m = None
        self._anchor_next_try = -math.inf
        self._elsewhere = False

    def set_anchor(self, anchor: np.ndarray | None) -> None:
        """A new snapshot the scene was drawn on (a new scene version, `scene.reference_image`), or
        None: the next frame becomes the reference again and is placed on it. The camera_moved
        state carries on, with its hysteresis."""
        self._anchor_image = anchor
        self._anchor = None
        self.reset()

    def _match(self, xy: np.ndarray, desc: np.ndarray | None, ref: tuple, w: int) -> tuple[np.ndarray | None, int, int]:
        """The similarity taking `xy` onto `ref`'s points (2x3) when enough of them agree, else None;
        with the inlier and match counts."""
        import cv2

        p = self.p
        ref_xy, ref_desc = ref
        if desc is None or ref_desc is None or len(xy) < p.min_inliers:
            return None, 0, 0
        pairs = cv2.BFMatcher(cv2.NORM_HAMMING, crossCheck=True).match(desc, ref_desc)
        matches = len(pairs)
        if matches < p.min_inliers:
            return None, 0, matches
        src = xy[[q.queryIdx for q in pairs]]
        dst = ref_xy[[q.trainIdx for q in pairs]]
        m, mask = cv2.estimateAffinePartial2D(
            src, dst, method=cv2.RANSAC, ransacReprojThreshold=p.ransac_px * w / p.work_width, maxIters=2000,
            confidence=0.995,
        )
        inliers = int(mask.sum()) if mask is not None else 0
        trusted = m is not None and inliers >= p.min_inliers and inliers >= p.min_inlier_share * matches
        return (np.asarray(m, np.float64) if trusted else None), inliers, matches

    def _anchor_features(self, w: int, h: int) -> None:
        import cv2

        img = self._anchor_image
        if img is None:
            return
        if img.shape[:2] != (h, w):  # drawn at another resolution of the same view (main vs sub-stream)
            img = cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA)
        xy, desc = self._features(img)
        if desc is None or len(xy) < self.p.min_reference_features:
            log.warning(
                "scene.reference_image has too little texture to register against (%d features): "
                "the first frame is the reference", len(xy),
                extra={"fields": {"camera": self.name, "features": len(xy)}},
            )
            self._anchor = None
            return
        self._anchor = (xy, desc)
        self._anchor_light = _mean_grey(img)

    def _try_anchor(
        self, image: np.ndarray, xy: np.ndarray, desc: np.ndarray | None, to_first: np.ndarray, w: int, t: float
    ) -> None:
        """Place the first frame on the drawn snapshot through this frame (registered to the first
        frame by `to_first`); on failure, try again after `anchor_retry_seconds`."""
        if self._anchor is None or t < self._anchor_next_try:
            return
        to_anchor, inliers, matches = self._match(xy, desc, self._anchor, w)
        if to_anchor is None:
            light = _mean_grey(image)
            self._elsewhere = abs(light - self._anchor_light) <= self.p.anchor_light_tolerance * self._anchor_light
            if self._anchor_next_try == -math.inf:
                log.info(
                    "the view does not match scene.reference_image (%d of %d matches agree, %s): "
                    "registering to the first frame meanwhile",
                    inliers, matches, "lit alike: looking elsewhere" if self._elsewhere else "lit otherwise",
                    extra={"fields": {"camera": self.name, "inliers": inliers, "matches": matches}},
                )
            # Looking elsewhere: try often, to leave camera_moved as soon as the view is back (a
            # truck filling the first frame); lit otherwise (night): the light changes slowly.
            wait = self.p.moved_seconds / 2 if self._elsewhere else self.p.anchor_retry_seconds
            self._anchor_next_try = t + wait
            return
        self._anchor_m = _h(to_anchor) @ np.linalg.inv(_h(to_first))
        self._elsewhere = False
        log.info(
            "first frame placed on scene.reference_image",
            extra={"fields": {"camera": self.name, "inliers": inliers, "matches": matches,
                              "shift_px": round(float(np.hypot(*self._anchor_m[:2, 2])), 1)}},
        )

    def update(self, image: np.ndarray, t: float) -> Registration:
        p = self.p
        h, w = image.shape[:2]
        if self._ref is None or self._shape != (h, w):
            self._shape = (h, w)
            xy, desc = self._features(image)
            self._ref = (xy, desc)
            self._anchor_m = None
            self._anchor_next_try = -math.inf
            self._elsewhere = False
            self.available = desc is not None and len(xy) >= p.min_reference_features
            if not self.available:
                log.info(
                    "camera registration unavailable: %d features in the reference view",
                    len(xy),
                    extra={"fields": {"camera": self.name, "features": len(xy)}},
                )
                self.last = Registration(IDENTITY.copy(), True, len(xy), len(xy), 0.0, 0.0, 1.0, False, False)
                return self.last
            self._anchor_features(w, h)
            self._try_anchor(image, xy, desc, IDENTITY, w, t)
            if self._anchor_m is None:
                self.last = Registration(IDENTITY.copy(), True, len(xy), len(xy), 0.0, 0.0, 1.0, False, True)
                return self.last
            m, inliers, matches = IDENTITY.copy(), len(xy), len(xy)
        elif not self.available:
            self.last = Registration(IDENTITY.copy(), True, 0, 0, 0.0, 0.0, 1.0, False, False)
            return self.last
        else:
            xy, desc = self._features(image)
            m, inliers, matches = self._match(xy, desc, self._ref, w)
            if self._anchor_m is None:
                if m is not None:
                    self._try_anchor(image, xy, desc, m, w, t)
                else:
                    # Not the first frame's view (that one looked elsewhere): if this one is the
                    # snapshot's, it becomes the first frame.
                    self._try_anchor(image, xy, desc, IDENTITY, w, t)
                    if self._anchor_m is not None:
                        self._ref = (xy, desc)
                        m = IDENTITY.copy()
        if m is not None:
            if self._anchor_m is not None:
                m = (self._anchor_m @ _h(m))[:2]
            scale = float(math.hypot(m[0, 0], m[1, 0]))
            rot = float(math.degrees(math.atan2(m[1, 0], m[0, 0])))
            # The shift of the frame centre, so a rotation about the corner is not read as a shift.
            c = np.array([[w / 2, h / 2]], np.float32)
            shift = float(np.linalg.norm(apply(m, c) - c))
            within = shift <= p.max_shift * w and abs(rot) <= p.max_rotation_deg and abs(scale - 1) <= p.max_scale
            within = within and not self._elsewhere
        else:
            m, scale, rot, shift, within = IDENTITY.copy(), 1.0, 0.0, float("nan"), False
        self._track_state(within, t, inliers, shift)
        self.last = Registration(np.asarray(m, np.float64), within, inliers, matches, shift, rot, scale, self.moved)
        return self.last

    def _track_state(self, good: bool, t: float, inliers: int, shift: float) -> None:
        p = self.p
        if good:
            self._bad_since = None
            self._good_since = t if self._good_since is None else self._good_since
            if self.moved and t - self._good_since >= p.back_seconds:
                self.moved = False
                self.transitions += 1
                log.warning(
                    "camera view back on its reference", extra={"fields": {"camera": self.name, "t": round(t, 2)}}
                )
            return
        self._good_since = None
        self._bad_since = t if self._bad_since is None else self._bad_since
        if not self.moved and t - self._bad_since >= p.moved_seconds:
            self.moved = True
            self.transitions += 1
            log.warning(
                "camera moved: the view no longer matches its reference",
                extra={
                    "fields": {
                        "camera": self.name,
                        "t": round(t, 2),
                        "inliers": inliers,
                        "shift_px": None if math.isnan(shift) else round(shift, 1),
                    }
                },
            )
