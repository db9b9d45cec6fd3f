"""Plate reading accuracy: exact plates, wrong plates (a readable text that differs: it would
accuse someone else) and unreadable, per set and condition, and ms per plate on this CPU.

    EDGE_DATA_DIR=/work/shared/data .venv/bin/python benchmarks/plates_accuracy.py [--model REC.onnx]
        [--min-confidence C] [--views as_cut,padded,contrast] [--conditions ...] [--json]

Sets: the real crops of plates/labels.csv, split once by file-name hash into a tuning half (what
the reader's choices were made on) and a held-out half (`split`), each per line count and size;
the real crops degraded (blur, low resolution, tilt, night: benchmarks/synth_plates.py);
synthetic plates in the three Vietnamese layouts, clean and degraded; plate crops from our footage
labelled by eye (`FOOTAGE`); the hand-held two-line plate video read across frames (truth
61-B2 267.15). Unreadable is not wrong.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import random
import sys
import time
from collections.abc import Iterable
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.synth_plates import degrade, synthetic_plates  # noqa: E402
from edge.data import data_dir  # noqa: E402
from edge.plate_text import (  # noqa: E402
    DEFAULT_VIEWS,
    MIN_CONFIDENCE,
    UNREADABLE,
    PlateRead,
    PlateReader,
    PlateVote,
    TextLineFinder,
    TextLineModel,
    default_line_model,
    default_model,
    plate_chars,
)

VIDEO = "vn_motorbike_plate_handheld_61-B2_267.15.mp4"
VIDEO_TRUTH = "61-B2 267.15"
SMALL = 80  # px: a crop lower than this is "small" (the real set's ndata crops are 32-58 px high)

# Plates in our footage, labelled by eye on the frame enlarged (clip, frame, plate box x1 y1 x2 y2
# about where license_plate_yolov8n finds it at 640 px, text). Only plates a person reads with
# certainty; "" is a plate that is not Vietnamese (Indonesian): any text read from it is wrong.
# The other plates the detector finds in our clips are 10-15 px glyphs no one can read.
_HAIPHONG = "vn_haiphong_intersection_cctv_signals_stopline.mp4"  # the square car plate 30E-558.78
_CILACAP = "id_cilacap_etle_ptz_stopline_helmet.mp4"  # a PTZ close-up of an Indonesian plate
FOOTAGE: list[tuple[str, int, tuple[int, int, int, int], str]] = [
    *((_HAIPHONG, f, (519, 513, 563, 539), "30E 558.78") for f in range(0, 140, 10)),
    *((_CILACAP, f, (7, 306, 137, 363), "") for f in range(415, 505, 10)),
]


def split(name: str) -> str:
    """The fixed half a real plate belongs to: 'tuning' or 'held_out', by its file name's hash."""
    return "tuning" if int(hashlib.sha1(Path(name).name.encode()).hexdigest(), 16) % 2 == 0 else "held_out"


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


def judge(read: PlateRead, truth: str) -> str:
    if not read.readable:
        return "unreadable"
    return "exact" if plate_chars(read.text) == plate_chars(truth) else "wrong"


def score(reader: PlateReader, items: Iterable[tuple[str, np.ndarray, str, int]], groups=None) -> dict:
    """Exact / wrong / unreadable for the items, overall and per group (`groups(name, img, lines)`
    -> list of group names)."""
    rows = []
    t0 = time.perf_counter()
    for name, img, truth, lines in items:
        t = time.perf_counter()
        r = reader.read(img)
        rows.append((name, img, truth, lines, r, judge(r, truth), time.perf_counter() - t))
    total_s = time.perf_counter() - t0

    def summary(sel: list) -> dict:
        n = len(sel)
        if not n:
            return {"n": 0}
        count = {k: sum(1 for x in sel if x[5] == k) for k in ("exact", "wrong", "unreadable")}
        return {
            "n": n,
            **{f"{k}_pct": round(100 * v / n, 1) for k, v in count.items()},
            "exact": count["exact"],
            "wrong": count["wrong"],
            "ms_per_plate": round(1000 * sum(x[6] for x in sel) / n, 1),
        }

    out = summary(rows)
    out["ms_per_plate"] = round(1000 * total_s / max(1, len(rows)), 1)
    out["wrong_reads"] = [(x[0], x[2], x[4].text, x[4].confidence) for x in rows if x[5] == "wrong"][:10]
    out["lines_right"] = sum(1 for x in rows if x[5] == "exact" and x[4].lines == x[3])
    if groups is not None:
        names: dict[str, list] = {}
        for x in rows:
            for g in groups(x[0], x[1], x[3]):
                names.setdefault(g, []).append(x)
        out["groups"] = {g: summary(sel) for g, sel in sorted(names.items())}
    return out


def real_groups(name: str, img: np.ndarray, lines: int) -> list[str]:
    size = "small" if img.shape[0] < SMALL else "large"
    half = split(name)
    return [half, f"{half}/{'one_line' if lines == 1 else 'two_line'}", f"{half}/{size}"]


def footage(reader: PlateReader) -> dict:
    """The labelled plates of `FOOTAGE`: the plate detector on the frame, the plate overlapping
    the labelled box most cut as the node cuts it, read."""
    from edge.crops import cut
    from edge.secondary import CropDetector

    if not FOOTAGE:
        return {"n": 0}
    det = CropDetector("license_plate_yolov8n.onnx", 640, 0.3)
    items = []
    frames: dict[str, dict[int, np.ndarray]] = {}
    for clip, frame, _, _ in FOOTAGE:
        frames.setdefault(clip, {})[frame] = np.empty(0)
    for clip, want in frames.items():
        cap = cv2.VideoCapture(str(data_dir() / "videos" / clip))
        i = -1
        while want and i < max(want):
            ok, img = cap.read()
            if not ok:
                break
            i += 1
            if i in want:
                want[i] = img
    for clip, frame, box, truth in FOOTAGE:
        img = frames[clip][frame]
        h, w = img.shape[:2]
        found = det(img, (0, 0, w, h))

        def overlap(b, box=box) -> float:
            ix = max(0.0, min(b[2], box[2]) - max(b[0], box[0]))
            iy = max(0.0, min(b[3], box[3]) - max(b[1], box[1]))
            return ix * iy / max(1.0, (box[2] - box[0]) * (box[3] - box[1]))

        best = max(found, key=lambda d: overlap(d.box), default=None)
        crop = (
            cut(img, best.box, margin=0.15, min_height=64)
            if best and overlap(best.box) > 0.3
            else np.zeros((4, 4, 3), np.uint8)
        )
        items.append((f"{clip}@{frame}", crop, truth, 2 if " " in truth else 1))
    out = score(reader, items, lambda n, _i, _l: [n.split("@")[0]])
    vote = PlateVote()
    for _, crop, truth, _ in items:
        if truth:
            vote.add(reader.read(crop))
    out["voted_30E-558.78"] = vote.result().text
    return out


def video(reader: PlateReader, every: int = 10) -> dict:
    """The hand-held video: the plate detector on every `every`-th frame, each plate read, then voted."""
    from edge.crops import cut
    from edge.secondary import CropDetector

    det = CropDetector("license_plate_yolov8n.onnx", 320, 0.3)
    cap = cv2.VideoCapture(str(data_dir() / "videos" / VIDEO))
    vote = PlateVote()
    frames = exact = wrong = 0
    i = 0
    t_read = 0.0
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
        t = time.perf_counter()
        r = reader.read(cut(frame, best.box, margin=0.15, min_height=64))
        t_read += time.perf_counter() - t
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
        "ms_per_plate": round(1000 * t_read / max(1, frames), 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", help="a PP-OCR text-line recogniser .onnx (default: rapidocr's PP-OCRv6 small)")
    ap.add_argument("--min-confidence", type=float, default=MIN_CONFIDENCE)
    ap.add_argument(
        "--views", default=",".join(DEFAULT_VIEWS), help="the views that must agree (edge.plate_text.VIEWS)"
    )
    ap.add_argument("--rows-only", action="store_true", help="no text detector: lines cut at the faintest row")
    ap.add_argument("--limit", type=int, help="only the first N real plates")
    ap.add_argument("--synthetic-per-cell", type=int, default=10, help="synthetic plates per layout x degradation")
    ap.add_argument("--conditions", default="real,blur,lowres,tilt,night,synthetic,footage,video")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    path = args.model or default_model()
    if path is None:
        raise SystemExit("no recogniser: pip install rapidocr (requirements.txt)")
    lines = None if args.rows_only else default_line_model()
    reader = PlateReader(
        TextLineModel(path),
        args.min_confidence,
        views=tuple(args.views.split(",")),
        line_finder=TextLineFinder(lines) if lines else None,
    )
    rng = random.Random(16)
    real = real_plates(args.limit)
    conds = args.conditions.split(",")
    results: dict[str, object] = {
        "model": Path(path).name,
        "min_confidence": reader.min_confidence,
        "views": list(reader.views),
        "line_finder": Path(lines).name if lines else None,
    }
    for c in conds:
        if c == "real":
            results[c] = score(reader, real, real_groups)
        elif c in ("blur", "lowres", "tilt", "night"):
            degraded = [(n, degrade(img, c, rng), t, li) for n, img, t, li in real]
            results[c] = score(reader, degraded, lambda n, _i, _l: [split(n)])
        elif c == "synthetic":
            plates = synthetic_plates(args.synthetic_per_cell, [img for _, img, _, _ in real])
            by = {p.name: p for p in plates}
            results[c] = score(
                reader,
                [(p.name, p.image, p.text, p.lines) for p in plates],
                lambda n, _i, _l, by=by: [by[n].degradation, f"{by[n].layout}/{by[n].degradation}", by[n].layout],
            )
        elif c == "footage":
            results[c] = footage(reader)
        elif c == "video":
            results[c] = video(reader)
        if not args.json:
            print(c, json.dumps(results[c]), flush=True)
    if args.json:
        print(json.dumps(results))


if __name__ == "__main__":
    main()
