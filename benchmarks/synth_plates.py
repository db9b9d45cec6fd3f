"""Synthetic Vietnamese plates for measuring plate text (benchmarks/plates_accuracy.py, the plate
floor tests): the three layouts drawn in DejaVu Sans Condensed Bold over a real plate crop's light
and colour, then degraded as cameras degrade them (blur, low resolution, tilt, night noise).
Generated in memory, never saved; the same seed gives the same plates.

Layouts (Thông tư 24/2023/TT-BCA sizes, mm): one-line car 520x110 (`30A-123.45`), two-line
motorbike 190x140 (`29-B1 123.45`, old series 4 digits `29-B1 1234`), square car 330x165 (`30A`
over `123.45`). White plates and yellow (commercial transport) ones.

    EDGE_DATA_DIR=/work/shared/data .venv/bin/python benchmarks/synth_plates.py OUT.png  # a contact sheet
"""

from __future__ import annotations

import random
import sys
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

FONT_FILE = "DejaVuSansCondensed-Bold.ttf"
FONT_DIRS = ("/usr/share/fonts/truetype/dejavu", "/usr/share/fonts/dejavu", "/usr/local/share/fonts")
SERIES = "ABCDEFGHKLMNPSTUVXYZ"  # letters Vietnamese series use
LAYOUTS = ("one_line", "motorbike", "square")
# Plate size in pixels at 2 px/mm (one-line 520x110 mm, motorbike 190x140, square 330x165).
SIZE = {"one_line": (1040, 220), "motorbike": (380, 280), "square": (660, 330)}
DEGRADATIONS = ("clean", "blur", "lowres", "tilt", "night")


@dataclass(frozen=True)
class SynthPlate:
    name: str
    image: np.ndarray
    text: str  # canonical: "30A-123.45", "29-B1 123.45", "30A 123.45"
    lines: int
    layout: str
    degradation: str


def font_path() -> Path | None:
    for d in FONT_DIRS:
        p = Path(d) / FONT_FILE
        if p.is_file():
            return p
    return None


def plate_text(layout: str, rng: random.Random) -> tuple[str, list[str]]:
    """A random plate of `layout`: (canonical text, the lines as printed)."""
    prov = f"{rng.randint(11, 99)}"
    digits = "".join(rng.choice("0123456789") for _ in range(5 if rng.random() < 0.75 else 4))
    number = f"{digits[:3]}.{digits[3:]}" if len(digits) == 5 else digits
    if layout == "one_line":
        series = rng.choice(SERIES) + (rng.choice(SERIES) if rng.random() < 0.1 else "")
        return f"{prov}{series}-{number}", [f"{prov}{series}-{number}"]
    if layout == "motorbike":
        series = rng.choice(SERIES) + (str(rng.randint(1, 9)) if rng.random() < 0.85 else rng.choice(SERIES))
        return f"{prov}-{series} {number}", [f"{prov}-{series}", number]
    series = rng.choice(SERIES)
    return f"{prov}{series} {number}", [f"{prov}{series}", number]


def render(layout: str, lines: list[str], background: np.ndarray, yellow: bool = False) -> np.ndarray:
    """The plate drawn over `background` (a real plate crop: its light and colour, its glyphs
    blurred away so no ghost of them is read)."""
    from PIL import Image, ImageDraw, ImageFont

    w, h = SIZE[layout]
    colour = np.array([40, 200, 230] if yellow else [235, 235, 235], np.float32)  # BGR
    tint = cv2.GaussianBlur(cv2.resize(background, (w, h)), (0, 0), w / 8).astype(np.float32)
    # The crop's light (brighter or darker across the plate) kept, its own colour mostly replaced.
    light = tint.mean(axis=2, keepdims=True) / max(float(tint.mean()), 1.0)
    base = np.clip(colour * (0.6 + 0.4 * light) * 0.8 + 0.2 * tint, 0, 255).astype(np.uint8)
    img = Image.fromarray(cv2.cvtColor(base, cv2.COLOR_BGR2RGB))
    draw = ImageDraw.Draw(img)
    ink = (25, 25, 25)
    border = max(3, h // 40)
    draw.rounded_rectangle((border, border, w - border, h - border), radius=3 * border, outline=ink, width=border)
    fp = font_path()
    rows = len(lines)
    size = int(h * (0.78 if rows == 1 else 0.40))
    font = ImageFont.truetype(str(fp), size) if fp else ImageFont.load_default(size)
    for j, line in enumerate(lines):
        left, top, right, bottom = draw.textbbox((0, 0), line, font=font)
        tw, th = right - left, bottom - top
        # Squeeze a line wider than the plate (the printed font is narrower than DejaVu).
        limit = 0.9 * w
        if tw > limit:
            glyphs = Image.new("L", (tw + 4, th + 4), 0)
            ImageDraw.Draw(glyphs).text((2 - left, 2 - top), line, font=font, fill=255)
            glyphs = glyphs.resize((int(limit), th + 4))
            cy = (h - th) // 2 if rows == 1 else int(h * (0.27 if j == 0 else 0.72)) - th // 2
            img.paste(Image.new("RGB", glyphs.size, ink), ((w - glyphs.size[0]) // 2, cy), glyphs)
            continue
        cy = (h - th) // 2 if rows == 1 else int(h * (0.27 if j == 0 else 0.72)) - th // 2
        draw.text(((w - tw) // 2 - left, cy - top), line, font=font, fill=ink)
    return cv2.cvtColor(np.asarray(img), cv2.COLOR_RGB2BGR)


def degrade(img: np.ndarray, kind: str, rng: random.Random) -> np.ndarray:
    """A camera's degradations, sized to the plate: Gaussian blur (kernel ~1/60 of the plate's
    longer side), low resolution (the plate 20-26 px high in the frame, enlarged back), tilt (a
    perspective turn of 8-15 degrees and a 4-8 degree roll), night (25-35% light, sensor noise
    sigma 10-16, a little blur)."""
    h, w = img.shape[:2]
    if kind == "clean":
        return img
    if kind == "blur":
        k = 2 * int(max(h, w) / 120) + 3
        return cv2.GaussianBlur(img, (k, k), 0)
    if kind == "lowres":
        ph = rng.randint(20, 26)
        k = ph / h
        small = cv2.resize(img, (max(8, int(w * k)), ph), interpolation=cv2.INTER_AREA)
        return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    if kind == "tilt":
        yaw = np.radians(rng.uniform(8, 15)) * rng.choice([-1, 1])
        shrink = 0.5 * h * np.sin(abs(yaw))  # the far side of the plate is shorter
        src = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
        if yaw > 0:
            dst = np.float32([[0, 0], [w, shrink], [w, h - shrink], [0, h]])
        else:
            dst = np.float32([[0, shrink], [w, 0], [w, h], [0, h - shrink]])
        m = cv2.getPerspectiveTransform(src, dst)
        out = cv2.warpPerspective(img, m, (w, h), borderMode=cv2.BORDER_REPLICATE)
        roll = rng.uniform(4, 8) * rng.choice([-1, 1])
        r = cv2.getRotationMatrix2D((w / 2, h / 2), roll, 1.0)
        return cv2.warpAffine(out, r, (w, h), borderMode=cv2.BORDER_REPLICATE)
    if kind == "night":
        dark = cv2.GaussianBlur(img, (3, 3), 0).astype(np.float32) * rng.uniform(0.25, 0.35)
        noise = np.random.default_rng(rng.randrange(1 << 30)).normal(0, rng.uniform(10, 16), img.shape)
        return np.clip(dark + noise, 0, 255).astype(np.uint8)
    raise ValueError(kind)


def synthetic_plates(
    n_per_cell: int,
    backgrounds: list[np.ndarray],
    seed: int = 16,
    layouts: tuple[str, ...] = LAYOUTS,
    degradations: tuple[str, ...] = DEGRADATIONS,
) -> list[SynthPlate]:
    """`n_per_cell` plates for each layout x degradation, every third one yellow, each over one
    of `backgrounds` (real plate crops) in turn."""
    rng = random.Random(seed)
    out = []
    i = 0
    for layout in layouts:
        for kind in degradations:
            for _ in range(n_per_cell):
                text, lines = plate_text(layout, rng)
                yellow = i % 3 == 2
                img = render(layout, lines, backgrounds[i % len(backgrounds)], yellow)
                name = f"synth-{layout}-{kind}-{i}{'-yellow' if yellow else ''}"
                out.append(SynthPlate(name, degrade(img, kind, rng), text, len(lines), layout, kind))
                i += 1
    return out


def main() -> None:
    import csv

    from edge.data import data_dir

    root = data_dir() / "plates"
    with open(root / "labels.csv", newline="") as f:
        files = [r["file"] for r in csv.DictReader(f) if "_scenes/" not in r["file"]]
    backgrounds = [cv2.imread(str(root / p)) for p in files[:20]]
    plates = synthetic_plates(2, backgrounds)
    tiles = [cv2.resize(p.image, (360, 180)) for p in plates]
    cols = 2 * len(DEGRADATIONS)
    rows = [np.hstack(tiles[i : i + cols]) for i in range(0, len(tiles), cols)]
    out = sys.argv[1] if len(sys.argv) > 1 else "synth_plates.png"
    cv2.imwrite(out, np.vstack(rows))
    print(out, [p.text for p in plates])


if __name__ == "__main__":
    main()
