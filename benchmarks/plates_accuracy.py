"""Plate reading accuracy: exact plates, wrong plates (a confident wrong text) and unreadable, per
condition, and ms per plate on this CPU.

    EDGE_DATA_DIR=/work/shared/data .venv/bin/python benchmarks/plates_accuracy.py [--model REC.onnx] [--json]

Conditions: the real crops of plates/labels.csv (tight crops, one- and two-line); the same crops
degraded (blur, low resolution, tilt, night noise: generated here, never saved); synthetic plates
rendered in the Vietnamese layouts (one- and two-line, white and yellow) over real crops' colours;
the hand-held two-line plate video read across frames (truth 61-B2 267.15).
Unreadable is not wrong: a wrong plate is a readable text that differs from the label.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import time
from pathlib import Path

import cv2
import numpy as np

from edge.data import data_dir
from edge.plate_text import UNREADABLE, PlateReader, PlateVote, TextLineModel, default_model, plate_chars

VIDEO = "vn_motorbike_plate_handheld_61-B2_267.15.mp4"
VIDEO_TRUTH = "61-B2 267.15"


def real_plates(limit: int | None = None) -> list[tuple[str, np.ndarray, str, int]]:
    root = data_dir() / "plates"
    out = []
    with open(root / "labels.csv", newline="") as f:
        for row in csv.DictReader(f):
            if "_scenes/" in row["file"]:
                continue  # full scenes: the CLI test reads them through the plate detector
            img = cv2.imread(str(root / row["file"]))
            if img is None:
                raise SystemExit(f"cannot read {root / row['file']}")
            out.append((row["file"], img, row["plate_text"], int(row["lines"])))
    return out[:limit] if limit else out


def degrade(img: np.ndarray, kind: str, rng: random.Random) -> np.ndarray:
    h, w = img.shape[:2]
    if kind == "blur":
        k = 2 * int(max(h, w) / 120) + 3
        return cv2.GaussianBlur(img, (k, k), 0)
    if kind == "lowres":  # a plate ~24 px high in the frame, enlarged back
        k = 24 / h
        small = cv2.resize(img, (max(8, int(w * k)), 24), interpolation=cv2.INTER_AREA)
        return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    if kind == "tilt":
        a = rng.choice([-1, 1]) * rng.uniform(6, 10)
        m = cv2.getRotationMatrix2D((w / 2, h / 2), a, 1.0)
        return cv2.warpAffine(img, m, (w, h), borderMode=cv2.BORDER_REPLICATE)
    if kind == "night":
        dark = img.astype(np.float32) * 0.3
        noise = np.random.default_rng(rng.randrange(1 << 30)).normal(0, 12, img.shape)
        return np.clip(dark + noise, 0, 255).astype(np.uint8)
    raise ValueError(kind)


def synthetic(n: int, rng: random.Random, backgrounds: list[np.ndarray]) -> list[tuple[str, np.ndarray, str, int]]:
    """Vietnamese layouts drawn with OpenCV's Hershey font on a real crop's colour: one-line
    (520x110 mm) and two-line (motorbike 190x140), white and yellow (commercial)."""
    out = []
    letters = "ABCDEFGHKLMNPSTUVXYZ"
    for i in range(n):
        bg = backgrounds[i % len(backgrounds)]
        two = i % 2 == 1
        yellow = i % 4 >= 2
        prov = f"{rng.randint(11, 99)}"
        num = "".join(rng.choice("0123456789") for _ in range(5 if rng.random() < 0.7 else 4))
        shown = f"{num[:3]}.{num[3:]}" if len(num) == 5 else num
        if two:
            series = rng.choice(letters) + str(rng.randint(1, 9))
            text, lines = f"{prov}-{series} {shown}", [f"{prov}-{series}", shown]
            w, h = 380, 280
        else:
            series = rng.choice(letters)
            text, lines = f"{prov}{series}-{shown}", [text_one := f"{prov}{series}-{shown}"]
            del text_one
            w, h = 780, 165
        colour = np.array([40, 200, 230] if yellow else [235, 235, 235], np.float32)
        # The real crop's colour and light, its glyphs blurred away (a ghost of them would be read).
        tint = cv2.GaussianBlur(cv2.resize(bg, (w, h)), (0, 0), w / 8).astype(np.float32)
        img = np.clip(0.35 * tint + 0.65 * colour, 0, 255).astype(np.uint8)
        cv2.rectangle(img, (4, 4), (w - 5, h - 5), (20, 20, 20), 4)
        font, scale, thick = cv2.FONT_HERSHEY_SIMPLEX, (3.2 if two else 3.6), 9
        for j, line in enumerate(lines):
            (tw, th), _ = cv2.getTextSize(line, font, scale, thick)
            y = int(h * (0.42 if two and j == 0 else 0.88 if two else 0.72))
            cv2.putText(img, line, ((w - tw) // 2, y), font, scale, (20, 20, 20), thick, cv2.LINE_AA)
        out.append((f"synthetic-{i}{'-yellow' if yellow else ''}", img, text, 2 if two else 1))
    return out


def score(reader: PlateReader, items) -> dict:
    exact = wrong = unread = 0
    t0 = time.perf_counter()
    wrongs = []
    for name, img, truth, _lines in items:
        r = reader.read(img)
        if not r.readable:
            unread += 1
        elif plate_chars(r.text) == plate_chars(truth):
            exact += 1
        else:
            wrong += 1
            wrongs.append((name, truth, r.text, r.confidence))
    n = len(items)
    return {
        "n": n,
        "exact_pct": round(100 * exact / n, 1),
        "wrong_pct": round(100 * wrong / n, 1),
        "unreadable_pct": round(100 * unread / n, 1),
        "ms_per_plate": round(1000 * (time.perf_counter() - t0) / n, 1),
        "wrong": wrongs[:10],
    }


def video(reader: PlateReader, every: int = 10) -> dict:
    """The hand-held video: the plate detector on every `every`-th frame, each plate read, then voted."""
    from edge.crops import cut
    from edge.secondary import CropDetector

    det = CropDetector("license_plate_yolov8n.onnx", 320, 0.3)
    cap = cv2.VideoCapture(str(data_dir() / "videos" / VIDEO))
    vote = PlateVote()
    frames = exact = wrong = 0
    i = 0
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        i += 1
        if i % every:
            continue
        h, w = frame.shape[:2]
        found = det(frame, (0, 0, w, h))
        if not found:
            continue
        best = max(found, key=lambda d: d.confidence)
        r = reader.read(cut(frame, best.box, margin=0.15, min_height=64))
        frames += 1
        vote.add(r)
        if r.readable:
            exact += plate_chars(r.text) == plate_chars(VIDEO_TRUTH)
            wrong += plate_chars(r.text) != plate_chars(VIDEO_TRUTH)
    v = vote.result()
    return {
        "frames_with_plate": frames,
        "per_frame_exact": exact,
        "per_frame_wrong": wrong,
        "voted": v.text,
        "voted_confidence": v.confidence,
        "voted_correct": v.text != UNREADABLE and plate_chars(v.text) == plate_chars(VIDEO_TRUTH),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", help="a PP-OCR text-line recogniser .onnx (default: rapidocr's PP-OCRv6 small)")
    ap.add_argument("--min-confidence", type=float)
    ap.add_argument("--limit", type=int, help="only the first N real plates")
    ap.add_argument("--conditions", default="real,blur,lowres,tilt,night,synthetic,synthetic_degraded,video")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    path = args.model or default_model()
    if path is None:
        raise SystemExit("no recogniser: pip install rapidocr (requirements.txt)")
    reader = (
        PlateReader(TextLineModel(path))
        if args.min_confidence is None
        else PlateReader(TextLineModel(path), args.min_confidence)
    )
    rng = random.Random(16)
    real = real_plates(args.limit)
    conds = args.conditions.split(",")
    results: dict[str, dict] = {"model": Path(path).name, "min_confidence": reader.min_confidence}
    for c in conds:
        if c == "real":
            results[c] = score(reader, real)
        elif c in ("blur", "lowres", "tilt", "night"):
            results[c] = score(reader, [(n, degrade(img, c, rng), t, li) for n, img, t, li in real])
        elif c == "synthetic":
            results[c] = score(reader, synthetic(80, rng, [img for _, img, _, _ in real]))
        elif c == "synthetic_degraded":  # each synthetic plate blurred, low-res, tilted or at night
            kinds = ("blur", "lowres", "tilt", "night")
            items = synthetic(80, rng, [img for _, img, _, _ in real])
            results[c] = score(
                reader, [(n, degrade(img, kinds[i % 4], rng), t, li) for i, (n, img, t, li) in enumerate(items)]
            )
        elif c == "video":
            results[c] = video(reader)
        if not args.json:
            print(c, json.dumps(results[c]), flush=True)
    if args.json:
        print(json.dumps(results))


if __name__ == "__main__":
    main()
