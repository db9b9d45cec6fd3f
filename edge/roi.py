"""Detection on the scene's region of interest (issue 20, item 3): the detector sees only the
bounding box of the zones, lines and lamps plus a margin, when that box is clearly smaller than the
frame. The crop is letterboxed to the same model input, so the same cost buys more pixels per object
(rather than a smaller input); boxes come back in frame coordinates.

Different from edge.regions (a SECOND pass in tiles for small objects): this replaces the full-frame
pass. Off by default (`detection_roi.enabled`): not yet measured on every sample camera for lost
events. Motion gating then looks at the same crop only (movement outside the ROI cannot matter).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np

from edge.detections import Detections
from edge.scene import SceneConfig

Box = tuple[int, int, int, int]  # x1, y1, x2, y2 in frame pixels, x2/y2 exclusive


def scene_extent(scene: SceneConfig) -> tuple[float, float, float, float] | None:
    """Bounding box of the zones, lines, lanes and lamps on the reference snapshot; None without geometry."""
    points = [p for z in scene.zones for p in z.polygon]
    points += [p for line in scene.lines for p in line.points]
    points += [p for lane in scene.lanes for p in lane.polygon]
    for head in scene.signals:
        for lamp in head.lamps:
            points += [(lamp.box[0], lamp.box[1]), (lamp.box[2], lamp.box[3])]
    if not points:
        return None
    xy = np.asarray(points, np.float64)
    return float(xy[:, 0].min()), float(xy[:, 1].min()), float(xy[:, 0].max()), float(xy[:, 1].max())


def detection_roi(
    scene: SceneConfig, frame_wh: tuple[int, int], *, margin: float = 0.10, max_area_fraction: float = 0.7
) -> Box | None:
    """The crop to detect on in a frame of `frame_wh` (the scene scaled from its reference size, so a
    sub-stream gets the same region), or None for the full frame: no geometry, or a box (with its
    margin, a share of the frame's width/height on each side, room for tracks entering) that is not
    clearly smaller than the frame."""
    extent = scene_extent(scene)
    if extent is None:
        return None
    fw, fh = frame_wh
    rw, rh = scene.reference_size
    sx, sy = fw / rw, fh / rh
    x1, y1, x2, y2 = extent[0] * sx, extent[1] * sy, extent[2] * sx, extent[3] * sy
    mx, my = margin * fw, margin * fh
    box = (
        max(0, int(np.floor(x1 - mx))),
        max(0, int(np.floor(y1 - my))),
        min(fw, int(np.ceil(x2 + mx))),
        min(fh, int(np.ceil(y2 + my))),
    )
    if box[2] <= box[0] or box[3] <= box[1]:
        return None
    if (box[2] - box[0]) * (box[3] - box[1]) > max_area_fraction * fw * fh:
        return None
    return box


def to_frame(detections: Detections, roi: Box) -> Detections:
    """Detections found on the crop `roi`, in frame coordinates."""
    if len(detections) == 0:
        return detections
    offset = np.array([roi[0], roi[1], roi[0], roi[1]], np.float32)
    return replace(detections, xyxy=(detections.xyxy + offset).astype(np.float32))


class RoiDetector:
    """Wraps a detector callable (image -> Detections) to run on the scene's ROI of each frame."""

    def __init__(
        self, detect: Callable[[np.ndarray], Detections], scene: SceneConfig, *, margin: float, max_area_fraction: float
    ) -> None:
        self._detect = detect
        self.scene = scene
        self.margin = margin
        self.max_area_fraction = max_area_fraction
        self._rois: dict[tuple[int, int], Box | None] = {}

    def roi_for(self, image: np.ndarray) -> Box | None:
        h, w = image.shape[:2]
        if (w, h) not in self._rois:
            self._rois[(w, h)] = detection_roi(
                self.scene, (w, h), margin=self.margin, max_area_fraction=self.max_area_fraction
            )
        return self._rois[(w, h)]

    def crop(self, image: np.ndarray) -> np.ndarray:
        """The part of `image` that matters (the whole image when there is no ROI)."""
        roi = self.roi_for(image)
        return image if roi is None else image[roi[1] : roi[3], roi[0] : roi[2]]

    def __call__(self, image: np.ndarray) -> Detections:
        roi = self.roi_for(image)
        if roi is None:
            return self._detect(image)
        crop = np.ascontiguousarray(image[roi[1] : roi[3], roi[0] : roi[2]])
        return to_frame(self._detect(crop), roi)
