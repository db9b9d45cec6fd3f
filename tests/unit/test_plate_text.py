"""Plate text mechanisms (edge/plate_text.py, edge/plates.py): a character's confidence is what
the layout makes of the model's alternatives, the views must agree, the plate crop comes from the
sharpest large frame, and synthetic plates in the three Vietnamese layouts read right or not at
all (benchmarks/synth_plates.py)."""

from __future__ import annotations

import csv

import cv2
import numpy as np
import pytest

from edge.data import data_dir
from edge.plate_text import (
    UNREADABLE,
    LineRead,
    PlateReader,
    TextLineModel,
    char_confidences,
    default_model,
    layout,
    plate_chars,
)
from edge.plates import sharpest_large, sharpness


def test_layout_decides_which_alternatives_are_the_same_character():
    # "5DZ-1630": the D at a digit position is a 0; the model also gave the 0 0.41.
    read = LineRead(
        "5DZ-1630",
        (0.99, 0.58, 0.97, 0.9, 0.99, 0.99, 0.99, 0.99),
        (
            (("5", 0.99),),
            (("D", 0.58), ("0", 0.41)),
            (("Z", 0.97), ("2", 0.02)),
            (("-", 0.5), (".", 0.4)),  # punctuation: the layout's, never counted
            (("1", 0.99),),
            (("6", 0.99),),
            (("3", 0.99),),
            (("0", 0.99),),
        ),
    )
    text, fixes, pattern = layout([read.text])
    assert (text, fixes, pattern) == ("50Z-1630", 1, "DDLDDDD")
    conf = char_confidences([read], pattern, text)
    assert len(conf) == 7 and conf[1] == pytest.approx(0.99)  # D + 0 at a digit position
    assert conf[2] == pytest.approx(0.99)  # Z and 2 at the series letter
    # A 6 that might be a G is not helped where either may stand (a two-line plate's 4th place).
    top = LineRead(
        "59-B6",
        (0.99, 0.99, 0.9, 0.99, 0.6),
        ((("5", 0.99),), (("9", 0.99),), (("-", 0.9),), (("B", 0.99),), (("6", 0.6), ("G", 0.39))),
    )
    bottom = LineRead("2345", (0.99,) * 4, ())
    text, _, pattern = layout([top.text, bottom.text])
    assert pattern == "DDLXDDDD"
    assert min(char_confidences([top, bottom], pattern, text)) == pytest.approx(0.6)


def test_sharpest_large_frame_is_chosen():
    root = data_dir() / "plates"
    img = cv2.imread(str(root / "vitocolerole_label_plate_number/11CarLongPlate587.jpg"))
    blurred = cv2.GaussianBlur(img, (0, 0), 4)
    small = cv2.resize(img, None, fx=0.5, fy=0.5)
    area = float(img.shape[0] * img.shape[1])
    assert sharpness(img) > 2 * sharpness(blurred)
    kept = [
        (area, sharpness(blurred), blurred),
        (0.9 * area, sharpness(img), img),
        (0.25 * area, sharpness(small), small),
    ]
    chosen = sharpest_large(kept, n=2)
    assert chosen[0] is img and chosen[1] is blurred  # the small one is not large enough
    assert sharpest_large([]) == []


needs_model = pytest.mark.skipif(default_model() is None, reason="rapidocr (plate text) not installed")


@needs_model
def test_views_must_agree_and_gate_on_their_mean():
    class Scripted:
        """A recogniser that reads one text per call, as scripted."""

        def __init__(self, texts):
            self.texts = list(texts)

        def __call__(self, _line):
            t, p = self.texts.pop(0)
            return LineRead(t, (p,) * len(t))

    crop = np.full((110, 520, 3), 200, np.uint8)
    ok = PlateReader(Scripted([("51F44614", 0.95)] * 3)).read(crop)
    assert ok.text == "51F-446.14" and ok.confidence == pytest.approx(0.95)
    split = PlateReader(Scripted([("51F44614", 0.95), ("51F44674", 0.95)])).read(crop)
    assert split.text == UNREADABLE and "disagree" in split.reason
    # One view sure, two less so: the mean (0.73) is under the gate though the first is 0.95.
    low = PlateReader(Scripted([("51F44614", 0.95), ("51F44614", 0.62), ("51F44614", 0.62)])).read(crop)
    assert low.text == UNREADABLE and low.confidence < 0.8


@needs_model
def test_synthetic_layouts_read_right_or_not_at_all():
    from benchmarks.synth_plates import synthetic_plates

    root = data_dir() / "plates"
    with open(root / "labels.csv", newline="") as f:
        files = [r["file"] for r in csv.DictReader(f) if "_scenes/" not in r["file"]][:6]
    backgrounds = [cv2.imread(str(root / p)) for p in files]
    plates = synthetic_plates(1, backgrounds, seed=7, degradations=("clean", "blur"))
    reader = PlateReader(TextLineModel(default_model()))
    exact = 0
    for p in plates:
        r = reader.read(p.image)
        assert r.text in (UNREADABLE, p.text) or plate_chars(r.text) == plate_chars(p.text), (p.name, r)
        if r.readable:
            exact += 1
            assert r.lines == p.lines, (p.name, r)
    # Measured 6 of 6 (150 of 150 in benchmarks/plates_accuracy.py): every layout is read.
    assert len(plates) == 6 and exact >= 5, exact
