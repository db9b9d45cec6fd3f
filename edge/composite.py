"""The composite evidence of a crossing act (red light, stop line, wrong way, lane, forbidden
turn): one JPEG with three moments.

Layout (COMPOSITE_WIDTH wide, every size a share of it, so a copy scaled down keeps its stamps in
proportion and legible at half size):

    +----------------------------------------------------------------+
    | header: camera name (id) . place (ward, address)               |
    +-------------------------------+--------------------------------+
    | before the line (signal)      | at the line                    |
    | caption: moment, local time,  | caption ...                    |
    |          signal + red seconds |                                |
    +-------------------------------+--------------------------------+
    | past the line                 | the plate, zoomed, its text    |
    |                               | (or "unreadable"), the act     |
    +-------------------------------+--------------------------------+
    | footer: local date time (UTC+7) . violation (vi / en)          |
    +----------------------------------------------------------------+

The offender is boxed red in each moment, the line drawn, the signal head boxed in the colour it
showed then. A moment the rule did not see (the track began past the line, was lost before it was
past) is a grey panel saying so: never a frame standing in for another. The clean copy is the
three frames side by side as kept (their own pixels), nothing drawn.

Text is drawn with Pillow and a TTF font with Vietnamese letters (DejaVu Sans, as the PDF export):
OpenCV's Hershey fonts have no diacritics.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, tzinfo
from functools import lru_cache
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from edge.evidence import LOCAL_TZ, encode_jpeg
from edge.rules.base import Moment, Violation

COMPOSITE_WIDTH = 1600
FONT_SHARE = 0.016  # text height as a share of the width: 26 px at 1600, 13 px at half size
FONTS = (
    Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"),
    Path("/usr/share/fonts/truetype/noto/NotoSans-Regular.ttf"),
    Path("/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf"),
)
BOLD_FONTS = (
    Path("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"),
    Path("/usr/share/fonts/truetype/noto/NotoSans-Bold.ttf"),
    Path("/usr/share/fonts/truetype/liberation/LiberationSans-Bold.ttf"),
)

CAPTIONS = {
    "before": ("Trước vạch", "before the line"),
    "at": ("Tại vạch", "at the line"),
    "past": ("Qua vạch", "past the line"),
}
MISSING = {
    "before": ("xe xuất hiện khi đã qua vạch", "first seen past the line"),
    "at": ("không ghi nhận lúc qua vạch", "the crossing itself was not seen"),
    "past": ("xe khuất trước khi qua hẳn vạch", "lost from view before it was past"),
}
# Acts judged over a lane or a turn rather than one line: their moments in their own words.
ACT_CAPTIONS = {
    "wrong_way": {
        "before": ("Bắt đầu đi ngược chiều", "riding against the lane"),
        "at": ("Xác định vi phạm", "act established"),
        "past": ("Tiếp tục ngược chiều", "further against the lane"),
    },
    "lane": {
        "before": ("Vào làn", "entering the lane"),
        "at": ("Xác định vi phạm", "act established"),
        "past": ("Sau đó", "after"),
    },
    "forbidden_turn": {
        "before": ("Tại vạch vào", "at the entry line"),
        "at": ("Qua vạch ra (rẽ cấm)", "across the exit line"),
        "past": ("Sau khi rẽ", "after the turn"),
    },
}
ACT_MISSING = {
    "wrong_way": {
        "before": ("không có khung hình trước đó", "no earlier frame of the ride"),
        "past": ("xe khuất ngay sau đó", "lost from view right after"),
    },
    "lane": {
        "before": ("không có khung hình lúc vào làn", "no frame of it entering"),
        "past": ("xe khuất ngay sau đó", "lost from view right after"),
    },
    "forbidden_turn": {
        "before": ("không có khung hình tại vạch vào", "no frame at the entry line"),
        "past": ("xe khuất trước khi qua hẳn vạch ra", "lost from view before it was past the exit line"),
    },
}
SIGNAL_VI = {"red": "đỏ", "yellow": "vàng", "green": "xanh", "unknown": "không rõ"}
UNREADABLE_VI = "không đọc được"

_BAND = (32, 32, 32)  # stamp bands: white on near-black, legible at any scale
_RED = (40, 40, 230)  # BGR, as edge.evidence
_LINE = (255, 0, 255)
_LAMP = {"red": (40, 40, 230), "yellow": (0, 200, 255), "green": (60, 200, 60), "unknown": (160, 160, 160)}
_MISSING_BG = (90, 90, 90)


@dataclass(frozen=True)
class CompositeLayout:
    """Where everything went (pixels of the composite): for tests and callers that crop."""

    width: int
    height: int
    header: tuple[int, int, int, int]
    footer: tuple[int, int, int, int]
    panels: dict[str, tuple[int, int, int, int]]  # label -> the moment's picture (without caption)
    boxes: dict[str, tuple[int, int, int, int]]  # label -> the offender's box drawn in that picture
    plate: tuple[int, int, int, int]
    font_px: int


@lru_cache(maxsize=8)
def _font(size: int, bold: bool = False) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    for path in BOLD_FONTS if bold else FONTS:
        if path.is_file():
            return ImageFont.truetype(str(path), size)
    for path in FONTS:  # no bold face installed: the regular one
        if path.is_file():
            return ImageFont.truetype(str(path), size)
    return ImageFont.load_default(size)  # no TTF at all: Latin only, still sized


def _seconds_vi(s: float) -> str:
    return f"{s:.1f}".replace(".", ",")


def signal_text(m: Moment) -> str:
    """'Đèn đỏ (đã đỏ 12,3 s) / red for 12.3 s', or '' without a signal rule."""
    if m.signal_state is None:
        return ""
    vi = f"Đèn {SIGNAL_VI.get(m.signal_state, m.signal_state)}"
    en = m.signal_state
    if m.signal_state == "red" and m.red_seconds is not None:
        vi += f" (đã đỏ {_seconds_vi(m.red_seconds)} s)"
        en = f"red for {m.red_seconds:.1f} s"
    return f"{vi} / {en}"


def _local(utc: datetime | None, tz: tzinfo) -> datetime | None:
    return utc.astimezone(tz) if utc is not None else None


def _utc_offset(local: datetime) -> str:
    off = local.strftime("%z")
    if not off:
        return "UTC"
    hours, minutes = int(off[1:3]), off[3:]
    return f"UTC{off[0]}{hours}" + (f":{minutes}" if minutes != "00" else "")


def _fit_text(draw: ImageDraw.ImageDraw, text: str, size: int, width: int, bold: bool = False) -> Any:
    """The font (at most `size` px) at which `text` fits in `width` pixels."""
    while size > 8:
        font = _font(size, bold)
        if draw.textlength(text, font=font) <= width:
            return font
        size -= 1
    return _font(size, bold)


def _panel(m: Moment | None, label: str, pw: int, ph: int, v: Violation, annotate: bool) -> tuple[np.ndarray, tuple | None]:
    """The moment's frame fitted to pw x ph, with the offender, line and signal drawn; or a grey
    panel when the moment is missing. Returns the picture and the offender's box in it."""
    if m is None or m.image is None:
        return np.full((ph, pw, 3), _MISSING_BG if annotate else (0, 0, 0), np.uint8), None
    img = m.image
    h, w = img.shape[:2]
    k = min(pw / w, ph / h)
    nw, nh = max(1, round(w * k)), max(1, round(h * k))
    interp = cv2.INTER_AREA if k < 1 else cv2.INTER_CUBIC
    canvas = np.zeros((ph, pw, 3), np.uint8)
    ox, oy = (pw - nw) // 2, (ph - nh) // 2
    canvas[oy:oy + nh, ox:ox + nw] = cv2.resize(img, (nw, nh), interpolation=interp)
    f = m.scale * k  # frame pixels -> panel pixels

    def p(x: float, y: float) -> tuple[int, int]:
        return round(ox + x * f), round(oy + y * f)

    x1, y1 = p(m.box[0], m.box[1])
    x2, y2 = p(m.box[2], m.box[3])
    box = (x1, y1, x2, y2)
    if annotate:
        thick = max(2, round(pw / 300))
        for _, a, b in v.overlay.lines:
            cv2.line(canvas, p(*a), p(*b), _LINE, thick, cv2.LINE_AA)
        if not v.overlay.lines and v.zone is not None:  # a lane act: the lane it is judged in
            poly = np.array([p(float(x), float(y)) for x, y in v.zone.polygon], np.int32)
            cv2.polylines(canvas, [poly], True, _LINE, max(1, thick - 1), cv2.LINE_AA)
        lamps = v.overlay.signal_boxes
        if lamps and m.signal_state is not None:
            bx1 = min(b[1][0] for b in lamps)
            by1 = min(b[1][1] for b in lamps)
            bx2 = max(b[1][2] for b in lamps)
            by2 = max(b[1][3] for b in lamps)
            pad = max(3, thick * 2)
            c1, c2 = p(bx1, by1), p(bx2, by2)
            cv2.rectangle(canvas, (c1[0] - pad, c1[1] - pad), (c2[0] + pad, c2[1] + pad),
                          _LAMP.get(m.signal_state, _LAMP["unknown"]), thick)
        cv2.rectangle(canvas, (x1, y1), (x2, y2), _RED, thick + 1)
    return canvas, box


def _offender_zoom(v: Violation) -> np.ndarray | None:
    """The offender cut from the moment where it is largest (for a cell without a plate crop)."""
    best = max((m for m in v.moments if m.image is not None), key=lambda m: (m.box[3] - m.box[1]) * (m.box[2] - m.box[0]),
               default=None)
    if best is None or best.image is None:
        return None
    x1, y1, x2, y2 = (c * best.scale for c in best.box)
    mx, my = 0.25 * (x2 - x1), 0.15 * (y2 - y1)
    h, w = best.image.shape[:2]
    a, b = max(0, int(x1 - mx)), max(0, int(y1 - my))
    c, d = min(w, int(x2 + mx) + 1), min(h, int(y2 + my) + 1)
    return best.image[b:d, a:c] if c > a and d > b else None


def _plate_cell(v: Violation, pw: int, ph: int) -> tuple[np.ndarray, tuple[int, int, int, int], bool]:
    """The plate crop enlarged into the top of the cell, else the offender zoomed (blank when
    neither), where it is, and whether it is the plate."""
    cell = np.full((ph, pw, 3), 245, np.uint8)
    plate = next((p.image for p in v.images if p.kind == "plate"), None)
    is_plate = plate is not None and plate.size > 0
    if not is_plate:
        plate = _offender_zoom(v)
    if plate is None or plate.size == 0:
        return cell, (0, 0, 0, 0), False
    h, w = plate.shape[:2]
    k = min(0.8 * pw / w, 0.5 * ph / h)
    nw, nh = max(1, round(w * k)), max(1, round(h * k))
    big = cv2.resize(plate, (nw, nh), interpolation=cv2.INTER_CUBIC if k > 1 else cv2.INTER_AREA)
    x, y = (pw - nw) // 2, round(0.06 * ph)
    cell[y:y + nh, x:x + nw] = big
    cv2.rectangle(cell, (x - 2, y - 2), (x + nw + 1, y + nh + 1), (40, 40, 40) if is_plate else _RED, 2)
    return cell, (x, y, x + nw, y + nh), is_plate


def plate_text(v: Violation) -> tuple[str, str]:
    """The plate line of the composite (vi, en): the text read, 'unreadable', or no crop."""
    text = v.details.get("plate_text")
    if text is None:
        if any(p.kind == "plate" for p in v.images):
            return "Biển số: chưa đọc", "plate: not read"
        return "Biển số: không có ảnh", "plate: no crop"
    if text == "unreadable":
        return f"Biển số: {UNREADABLE_VI}", "plate: unreadable"
    conf = v.details.get("plate_text_confidence")
    suffix = f" ({float(conf):.2f})" if isinstance(conf, int | float) else ""
    return f"Biển số: {text}{suffix}", f"plate: {text}"


def _title(v: Violation) -> tuple[str, str]:
    from edge.rules.registry import violation_kinds

    kind = violation_kinds().get(v.type.value)
    return (kind.title.vi, kind.title.en) if kind is not None else (v.type.value, v.type.value)


def composite_layout(v: Violation, width: int = COMPOSITE_WIDTH) -> tuple[int, int, int, int, int, int]:
    """(panel width, picture height, caption height, header height, footer height, font px)."""
    pw = width // 2
    first = next((m for m in v.moments if m.image is not None), None)
    aspect = first.image.shape[0] / first.image.shape[1] if first is not None and first.image is not None else 9 / 16
    ph = round(pw * aspect)
    fs = max(10, round(width * FONT_SHARE))
    return pw, ph, round(fs * 2.9), round(fs * 3.2), round(fs * 1.9), fs


def render_composite(
    v: Violation, camera: Any, when: datetime, tz: tzinfo | None = None, width: int = COMPOSITE_WIDTH,
) -> tuple[np.ndarray, np.ndarray, CompositeLayout] | None:
    """The annotated composite, the clean copy (BGR) and the layout; None when the violation kept
    no moments (not a crossing act). `camera`: the camera config's `camera` section (id, name,
    location); `when`: the decision's UTC time (the footer's date time)."""
    if not v.moments:
        return None
    tz = tz or LOCAL_TZ
    moments: dict[str, Moment] = {m.label: m for m in v.moments}
    pw, ph, cap, head_h, foot_h, fs = composite_layout(v, width)
    cell_h = ph + cap
    height = head_h + 2 * cell_h + foot_h
    canvas = np.full((height, width, 3), 255, np.uint8)
    panels: dict[str, tuple[int, int, int, int]] = {}
    boxes: dict[str, tuple[int, int, int, int]] = {}
    places = {"before": (0, 0), "at": (1, 0), "past": (0, 1)}
    for label, (col, row) in places.items():
        picture, box = _panel(moments.get(label), label, pw, ph, v, annotate=True)
        x, y = col * pw, head_h + row * cell_h
        canvas[y:y + ph, x:x + pw] = picture
        panels[label] = (x, y, x + pw, y + ph)
        if box is not None:
            boxes[label] = (box[0] + x, box[1] + y, box[2] + x, box[3] + y)
    plate_cell, pbox, is_plate = _plate_cell(v, pw, cell_h)
    px, py = pw, head_h + cell_h
    canvas[py:py + cell_h, px:px + pw] = plate_cell
    plate_box = (pbox[0] + px, pbox[1] + py, pbox[2] + px, pbox[3] + py) if pbox[2] else (0, 0, 0, 0)

    # The bands and the text (Pillow, RGB).
    rgb = Image.fromarray(cv2.cvtColor(canvas, cv2.COLOR_BGR2RGB))
    draw = ImageDraw.Draw(rgb)
    band = _BAND[::-1]
    draw.rectangle((0, 0, width, head_h - 1), fill=band)
    draw.rectangle((0, height - foot_h, width, height), fill=band)
    margin = round(fs * 0.5)
    name = camera.name or camera.id
    loc = camera.location
    area = ", ".join(x for x in (loc.ward, loc.district) if x)
    place = (f"{loc.address} ({area})" if area else loc.address) if loc.address else (area or "—")
    line1 = f"Camera: {name} ({camera.id})" if camera.name else f"Camera: {camera.id}"
    line2 = f"Địa điểm / place: {place}"
    draw.text((margin, round(fs * 0.25)), line1, font=_fit_text(draw, line1, fs, width - 2 * margin, True), fill="white")
    draw.text((margin, round(fs * 1.65)), line2, font=_fit_text(draw, line2, fs, width - 2 * margin), fill="white")
    act = moments.get("at")
    local = (act.utc if act is not None and act.utc is not None else when).astimezone(tz)  # the crossing's time
    title_vi, title_en = _title(v)
    footer = f"{local:%d/%m/%Y %H:%M:%S} ({_utc_offset(local)})  ·  {title_vi} / {title_en}"
    draw.text((margin, height - foot_h + round(fs * 0.4)), footer,
              font=_fit_text(draw, footer, fs, width - 2 * margin, True), fill="white")
    for label, (col, row) in places.items():
        x, y = col * pw, head_h + row * cell_h + ph
        draw.rectangle((x, y, x + pw - 1, y + cap - 1), fill=(235, 235, 235))
        m = moments.get(label)
        vi, en = ACT_CAPTIONS.get(v.type.value, CAPTIONS)[label]
        when_m = _local(m.utc, tz) if m is not None else None
        head = f"{vi} / {en}" + (f"  ·  {when_m:%H:%M:%S}.{when_m.microsecond // 100000}" if when_m else "")
        draw.text((x + margin, y + round(fs * 0.2)), head, font=_fit_text(draw, head, fs, pw - 2 * margin, True),
                  fill=(20, 20, 20))
        sub = signal_text(m) if m is not None else ""
        if sub:
            color = (200, 0, 0) if m is not None and m.signal_state == "red" else (20, 20, 20)
            draw.text((x + margin, y + round(fs * 1.5)), sub, font=_fit_text(draw, sub, fs, pw - 2 * margin), fill=color)
        if m is None or m.image is None:
            mvi, men = ACT_MISSING.get(v.type.value, MISSING).get(label, MISSING[label])
            for k, text in enumerate(("Không có hình ảnh thời điểm này", "no frame of this moment", f"({mvi} / {men})")):
                font = _fit_text(draw, text, fs, pw - 2 * margin)
                tw = draw.textlength(text, font=font)
                draw.text((x + (pw - tw) / 2, head_h + row * cell_h + ph / 2 + (k - 1.5) * fs * 1.4), text,
                          font=font, fill="white")
    # The plate cell's text and the act.
    pvi, pen = plate_text(v)
    # In order of weight: what does not fit the cell is left off from the end.
    lines = [(f"{pvi} / {pen}", True), (f"Vi phạm / violation: {title_vi} / {title_en}", False)]
    at = moments.get("at")
    if at is not None and signal_text(at):
        lines.append((f"Lúc qua vạch / crossing: {signal_text(at)}", False))
    offender = v.offenders[0] if v.offenders else None
    if offender is not None:
        lines.append((f"Phương tiện / vehicle: {offender.class_name} #{offender.track_id}", False))
    line_id = v.details.get("line")
    if line_id:
        lines.append((f"Vạch / line: {line_id}", False))
    if v.details.get("lane"):
        lines.append((f"Làn / lane: {v.details['lane']}", False))
    if v.details.get("entry") and v.details.get("exit"):
        lines.append((f"Vạch vào → ra / entry → exit: {v.details['entry']} → {v.details['exit']}", False))
    if plate_box[2] and not is_plate:
        lines.append(("(ảnh trên: phương tiện phóng to / above: the vehicle, zoomed)", False))
    y = py + (plate_box[3] - py + round(fs * 0.6) if plate_box[2] else round(fs * 1.0))
    for text, bold in lines:
        if y + fs > py + cell_h:
            break
        draw.text((px + margin, y), text, font=_fit_text(draw, text, fs, pw - 2 * margin, bold), fill=(20, 20, 20))
        y += round(fs * 1.45)
    # Cell borders: panels stay apart when the composite is scaled.
    for x0 in (pw,):
        draw.line((x0, head_h, x0, height - foot_h), fill=(255, 255, 255), width=max(2, fs // 8))
    draw.line((0, head_h + cell_h, width, head_h + cell_h), fill=(255, 255, 255), width=max(2, fs // 8))
    annotated = cv2.cvtColor(np.asarray(rgb), cv2.COLOR_RGB2BGR)

    # The clean copy: the kept frames side by side, their pixels untouched (no resampling); a
    # moment not seen is black.
    kept = [m.image for m in v.moments if m.image is not None]
    shape = kept[0].shape if kept else (ph, pw, 3)
    clean = np.hstack([
        m.image if m is not None and m.image is not None and m.image.shape == shape
        else _panel(m, label, shape[1], shape[0], v, annotate=False)[0]
        for label in ("before", "at", "past") for m in (moments.get(label),)
    ])
    layout = CompositeLayout(
        width, height, (0, 0, width, head_h), (0, height - foot_h, width, height), panels, boxes, plate_box, fs
    )
    return annotated, clean, layout


def composite_jpegs(v: Violation, camera: Any, when: datetime, tz: tzinfo | None = None) -> tuple[bytes, bytes] | None:
    """The composite and its clean copy as JPEGs (None: no moments kept)."""
    made = render_composite(v, camera, when, tz)
    if made is None:
        return None
    annotated, clean, _ = made
    return encode_jpeg(annotated), encode_jpeg(clean)
