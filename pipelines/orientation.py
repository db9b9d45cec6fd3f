"""A file's display rotation applied to its pixels (used by the file source and the RTSP test server)."""

from __future__ import annotations

import cv2
import numpy as np

_ROTATIONS = {90: cv2.ROTATE_90_COUNTERCLOCKWISE, 180: cv2.ROTATE_180, 270: cv2.ROTATE_90_CLOCKWISE}


def upright(image: np.ndarray, rotation: int | float | None) -> np.ndarray:
    """Apply a file's display rotation (phone footage is often stored sideways with a display
    matrix), as players and ffmpeg do, so scenes are drawn on what a person sees."""
    code = _ROTATIONS.get(round(rotation or 0) % 360)
    return image if code is None else cv2.rotate(image, code)
