"""Evidence made at the edge: the annotated and the clean snapshot of the moment a violation is
established, rule-cut crops, and the event clip (a file on disk, see `pipelines.clips`)."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
from dataclasses import dataclass
from datetime import datetime, tzinfo
from pathlib import Path
from zoneinfo import ZoneInfo

import cv2
import numpy as np

from contract.events import EvidenceRef
from edge.detections import TrackedObjects
from edge.rules import Violation
from edge.rules.base import EvidenceImage

LOCAL_TZ = ZoneInfo("Asia/Ho_Chi_Minh")
JPEG_QUALITY = 90

_RED = (40, 40, 230)
_ZONE = (0, 200, 255)
_OTHER = (200, 200, 200)


@dataclass(frozen=True)
class EvidenceFile:
    kind: str
    media_type: str
    data: bytes
    sha256: str
    name: str | None = None  # file stem when one event has several files of a kind
    # Large evidence (clips) stays a file: `data` is empty and `path` holds the bytes.
    path: Path | None = None
    file_size: int = 0

    @classmethod
    def of(cls, kind: str, media_type: str, data: bytes, name: str | None = None) -> EvidenceFile:
        return cls(kind, media_type, data, hashlib.sha256(data).hexdigest(), name)

    @classmethod
    def from_file(cls, kind: str, media_type: str, path: Path, sha256: str, size: int) -> EvidenceFile:
        return cls(kind, media_type, b"", sha256, None, path, size)

    @property
    def size(self) -> int:
        return self.file_size if self.path is not None else len(self.data)

    def ref(self) -> EvidenceRef:
        return EvidenceRef(kind=self.kind, media_type=self.media_type, sha256=self.sha256, size=self.size)

    @property
    def filename(self) -> str:
        ext = ".jpg" if self.media_type == "image/jpeg" else ".mp4"
        return f"{self.name or self.kind}{ext}"

    def write(self, folder: Path) -> Path:
        """Write atomically (temp + rename): a crash never leaves a half-written evidence file."""
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / self.filename
        tmp = path.with_suffix(path.suffix + ".part")
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        if self.path is not None:
            # A hard link: events sharing a clip share its bytes on disk too.
            try:
                os.link(self.path, tmp)
            except OSError:
                shutil.copyfile(self.path, tmp)
        else:
            tmp.write_bytes(self.data)
        tmp.replace(path)
        return path


def _label(img: np.ndarray, text: str, org: tuple[int, int], color: tuple[int, int, int], scale: float) -> None:
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    x, y = org
    x = max(0, min(x, img.shape[1] - tw - 3))  # a label near the right edge stays whole
    y = max(th + base, y)
    cv2.rectangle(img, (x, y - th - base), (x + tw + 2, y + 1), color, -1)
    cv2.putText(img, text, (x + 1, y - base // 2), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA)


def annotated_snapshot(
    image: np.ndarray, violation: Violation, tracks: TrackedObjects, camera: str, when: datetime,
    tz: tzinfo | None = None,
) -> bytes:
    """The frame with the zone, every tracked object (offenders in red, with ids) and a stamp."""
    img = image.copy()
    h, w = img.shape[:2]
    scale = max(0.4, min(w, h) / 900)
    thick = max(1, round(min(w, h) / 400))
    if violation.zone is not None:
        pts = violation.zone.polygon.astype(np.int32).reshape(-1, 1, 2)
        overlay = img.copy()
        cv2.fillPoly(overlay, [pts], _ZONE)
        cv2.addWeighted(overlay, 0.18, img, 0.82, 0, dst=img)
        cv2.polylines(img, [pts], True, _ZONE, thick, cv2.LINE_AA)
    _draw_traffic(img, violation, thick, scale)
    offender_ids = {o.track_id for o in violation.offenders}
    for i in range(len(tracks)):
        if int(tracks.track_id[i]) in offender_ids:
            continue
        x1, y1, x2, y2 = (int(v) for v in tracks.xyxy[i])
        cv2.rectangle(img, (x1, y1), (x2, y2), _OTHER, 1)
    for o in violation.offenders:
        x1, y1, x2, y2 = (int(v) for v in o.box)
        cv2.rectangle(img, (x1, y1), (x2, y2), _RED, thick + 1)
        _label(img, f"#{o.track_id} {o.class_name} {o.confidence:.2f}", (x1, y1 - 2), _RED, scale)
    local = when.astimezone(tz or LOCAL_TZ)  # the camera's time zone
    offset = local.strftime("%z")
    utc = f"UTC{offset[0]}{int(offset[1:3])}" + (f":{offset[3:]}" if offset[3:] != "00" else "") if offset else "UTC"
    stamp = f"{camera}  {local:%Y-%m-%d %H:%M:%S} ({utc})  {violation.type.value}"
    if violation.zone is not None:
        stamp += f"  zone={violation.zone.id}"
    return encode_jpeg(stamp_band(img, stamp))


STAMP_SHARE = 0.035  # stamp text height as a share of the picture's height


def stamp_band(img: np.ndarray, text: str) -> np.ndarray:
    """The picture with `text` in a dark band added below it (no pixel of the scene covered).
    The text is STAMP_SHARE of the picture's height (at least 11 px, white on near-black), so a
    copy scaled to half size still shows it 6 px or more high; parts separated by two spaces wrap
    onto further lines when the width is short."""
    h, w = img.shape[:2]
    font = cv2.FONT_HERSHEY_SIMPLEX
    text_h = max(11, round(STAMP_SHARE * h))
    thick = max(1, round(text_h / 12))
    scale = cv2.getFontScaleFromHeight(font, text_h, thick)
    pad = max(3, text_h // 3)
    room = w - 2 * pad
    lines: list[str] = []
    for part in text.split("  "):
        joined = f"{lines[-1]}  {part}" if lines else part
        if lines and cv2.getTextSize(joined, font, scale, thick)[0][0] <= room:
            lines[-1] = joined
        else:
            lines.append(part)
    widest = max(cv2.getTextSize(line, font, scale, thick)[0][0] for line in lines)
    if widest > room:  # one part wider than the picture: smaller text rather than cut
        scale *= room / widest
        text_h = max(1, round(text_h * room / widest))
    band = np.full((len(lines) * (text_h + pad) + pad, w, 3), 30, np.uint8)
    for k, line in enumerate(lines):
        y = pad + k * (text_h + pad) + text_h
        cv2.putText(band, line, (pad, y), font, scale, (255, 255, 255), thick, cv2.LINE_AA)
    return np.vstack([img, band])


_LAMP = {"red": (40, 40, 230), "yellow": (0, 200, 255), "green": (60, 200, 60), "unknown": (160, 160, 160)}


def _draw_traffic(img: np.ndarray, violation: Violation, thick: int, scale: float) -> None:
    """The line crossed and the signal head read, with its state (traffic rules' violations)."""
    overlay = violation.overlay
    for line_id, a, b in overlay.lines:
        pa, pb = (int(a[0]), int(a[1])), (int(b[0]), int(b[1]))
        cv2.line(img, pa, pb, (255, 0, 255), thick + 1, cv2.LINE_AA)
        _label(img, line_id, (min(pa[0], pb[0]), min(pa[1], pb[1]) - 3), (160, 0, 160), scale)
    boxes = overlay.signal_boxes
    if boxes:
        state = overlay.signal_state or "unknown"
        color = _LAMP.get(state, _LAMP["unknown"])
        for _, (x1, y1, x2, y2) in boxes:
            cv2.rectangle(img, (x1, y1), (x2, y2), color, 1)
        x1 = min(b[1][0] for b in boxes)
        y1 = min(b[1][1] for b in boxes)
        x2 = max(b[1][2] for b in boxes)
        y2 = max(b[1][3] for b in boxes)
        cv2.rectangle(img, (x1 - 2, y1 - 2), (x2 + 2, y2 + 2), color, thick)
        red_s = violation.details.get("red_seconds")
        text = f"{state}" + (f" {red_s}s" if state == "red" and red_s is not None else "")
        _label(img, text, (max(0, x1 - 40), max(0, y1 - 4)), color, scale)


_MARK = {"offender": _RED, "object": (0, 220, 255)}


def evidence_image_jpeg(picture: EvidenceImage) -> bytes:
    """A rule's evidence picture with its marks drawn (the offender red, the object yellow),
    enlarged (cubic) to its `min_height`."""
    img = picture.image
    if picture.min_height and 0 < img.shape[0] < picture.min_height:
        k = picture.min_height / img.shape[0]
        img = cv2.resize(img, None, fx=k, fy=k, interpolation=cv2.INTER_CUBIC)
    if not picture.marks:
        return encode_jpeg(img)
    img = img.copy()
    thick = max(1, round(min(img.shape[:2]) / 400))
    scale = max(0.4, min(img.shape[:2]) / 900)
    for mark in picture.marks:
        color = _MARK.get(mark.role, _RED)
        x1, y1, x2, y2 = (int(v) for v in mark.box)
        cv2.rectangle(img, (x1, y1), (x2, y2), color, thick + 1)
        if mark.label:
            _label(img, mark.label, (x1, y1 - 2), color, scale)
    return encode_jpeg(img)


def encode_jpeg(image: np.ndarray, quality: int = JPEG_QUALITY) -> bytes:
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return buf.tobytes()
