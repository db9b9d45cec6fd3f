"""One frame of a camera or a file, exactly as the edge analyses it: for drawing a camera's scene.

The frame comes from the sources the analysis uses (`edge.sources.open_source`: GStreamer for
rtsp(s):// URLs, PyAV for files, with a file's display rotation applied), so the pixel coordinates
read on it are the ones the scene is drawn in (`scene.reference_size` = its width and height).

    snap = grab_frame("rtsp://cam.example/stream", at=2.0)
    write_image(Path("ref.jpg"), snap.image)
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from edge.sources import SourceError, open_source, redact_url

JPEG_QUALITY = 95  # a reference picture: worth more bytes than evidence snapshots


class SnapshotError(RuntimeError):
    """No frame could be had (the message says why: the stream, the file, the time asked for)."""


@dataclass(frozen=True)
class Snapshot:
    image: np.ndarray  # BGR, upright
    pts: float  # the frame's time on the source's clock (a file's own timestamps), seconds
    source: str  # the file read, or the URL without its password

    @property
    def width(self) -> int:
        return int(self.image.shape[1])

    @property
    def height(self) -> int:
        return int(self.image.shape[0])


def grab_frame(source: str, at: float = 0.0, *, platform: str = "cpu", timeout_s: float = 20.0) -> Snapshot:
    """The first frame `at` seconds or more after the source's first frame.

    An rtsp(s):// URL is read through the node's GStreamer pipeline for `platform`; a camera that
    sends no such frame within `timeout_s` raises SnapshotError (with the source's last error). Any
    other source is a file (a name is looked up under EDGE_DATA_DIR/videos), read to the frame asked for.
    """
    if at < 0:
        raise SnapshotError(f"--at must be 0 or more seconds, got {at:g}")
    live = source.lower().startswith(("rtsp://", "rtsps://"))
    try:
        src = open_source(source, None, platform=platform) if live else open_source(source, None)
    except SourceError as e:  # a missing or unreadable file
        raise SnapshotError(str(e)) from None
    name = redact_url(source) if live else str(getattr(src, "path", source))
    timer = threading.Timer(timeout_s, src.stop) if live else None
    if timer is not None:
        timer.daemon = True
        timer.start()
    first: float | None = None
    last = 0.0
    try:
        for frame in src.frames():
            first = frame.pts if first is None else first
            last = frame.pts
            if frame.pts - first >= at - 1e-6:
                return Snapshot(frame.image, frame.pts, name)
    except SourceError as e:
        raise SnapshotError(str(e)) from None
    finally:
        src.stop()
        if timer is not None:
            timer.cancel()
    if live:
        why = src.health.last_error
        raise SnapshotError(f"{name}: no frame {at:g} s into the stream within {timeout_s:g} s" + (f" ({why})" if why else ""))
    if first is None:
        raise SnapshotError(f"{name}: no frames")
    raise SnapshotError(f"{name}: the video ends at {last - first:.3f} s, before --at {at:g} s")


def check_picture_name(path: Path) -> None:
    """Refuse, before any work, a file name whose type cannot be written."""
    if not path.suffix or not cv2.haveImageWriter(str(path)):
        raise SnapshotError(f"{path}: cannot write a picture of this type (use .jpg or .png)")


def write_image(path: Path, image: np.ndarray) -> Path:
    """Write a picture in the format its name says (.jpg at quality 95, .png lossless, ...), atomically."""
    check_picture_name(path)
    ext = path.suffix.lower()
    params = [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY] if ext in (".jpg", ".jpeg") else []
    try:
        ok, buf = cv2.imencode(ext, image, params)
    except cv2.error:
        ok = False
    if not ok:
        raise SnapshotError(f"{path}: cannot write a picture of this type (use .jpg or .png)")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    tmp.write_bytes(buf.tobytes())
    tmp.replace(path)
    return path
