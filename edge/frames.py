"""Frames as the rest of the edge sees them, whatever the source."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, slots=True)
class Frame:
    image: np.ndarray  # BGR, uint8, H x W x 3
    pts: float  # seconds on the source's own clock (the file's timestamps; RTSP running time)
    wall_time: float  # UTC epoch seconds when the frame was captured (decoded) here
    index: int  # position among the frames the source handed out, from 0
