"""Plate text (edge/plate_text.py): the Vietnamese layouts, confusions fixed only where the layout
decides, the vote across frames, the pool's workers, the CLI on full scenes, and the contract's
plate fields. The floors on real plates: tests/scenarios/test_plates_real.py."""

from __future__ import annotations

import json
import subprocess
import sys

import cv2
import pytest
from pydantic import ValidationError

from contract.events import ObjectRef
from edge.config import PlateConfig
from edge.data import data_dir, weights_path
from edge.plate_text import (
    UNREADABLE,
    PlateRead,
    PlateVote,
    default_model,
    local_reader,
    object_plate,
    parse,
)

pytestmark = pytest.mark.skipif(default_model() is None, reason="rapidocr (plate text) not installed")


@pytest.mark.parametrize(
    ("lines", "want"),
    [
        (["51F-446.14"], ("51F-446.14", 0)),
        (["51F44614"], ("51F-446.14", 0)),  # no punctuation read
        (["30Z-0751"], ("30Z-0751", 0)),  # old series, 4 digits
        (["93LD-001.03"], ("93LD-001.03", 0)),  # two-letter series
        (["S1F-446.I4"], ("51F-446.14", 2)),  # S and I at digit positions
        (["518-446.14"], ("51B-446.14", 1)),  # 8 at the letter position
        (["59-X1", "695.92"], ("59-X1 695.92", 0)),  # two-line motorbike plate
        (["59-XB", "695.92"], ("59-XB 695.92", 0)),  # the 4th place may be a letter or a digit: left as read
        (["68E", "000.07"], ("68E 000.07", 0)),  # square car plate
        (["6B-X1", "695.92"], ("68-X1 695.92", 1)),
    ],
)
def test_layouts_and_position_decided_fixes(lines, want):
    assert parse(lines) == want


@pytest.mark.parametrize(
    "lines",
    [
        ["51F-446.1"],  # 3 digits after the dot: no layout
        ["5AF-446.14"],  # A at a digit position is no known confusion
        ["51I-446.14"],  # I at a letter position: the layout cannot say (no series uses I)
        ["59-XO", "695.92"],  # O where a letter or a digit may stand: not guessed
        ["51", "F", "446.14"],  # three lines
        ["HELLO WORLD"],
        [""],
    ],
)
def test_no_layout_no_plate(lines):
    assert parse(lines) is None


def test_equally_good_layouts_are_not_guessed():
    # 51A-812.34 needs the B read as 8; 51AB-1234 needs nothing: the read as it stands wins.
    assert parse(["51AB1234"]) == ("51AB-1234", 0)
    # A dash read after the first letter decides the series length.
    assert parse(["51A-B1234"]) == ("51A-812.34", 1)


def test_vote_agrees_or_stays_unreadable():
    a = PlateRead("59-X1 695.92", 0.95, 2)
    b = PlateRead("59-X1 696.92", 0.93, 2)
    v = PlateVote()
    for r in (a, a, PlateRead(UNREADABLE, 0.4, 2)):
        v.add(r)
    assert v.result().text == "59-X1 695.92"
    v.add(b)
    v.add(b)  # two frames say another plate: the vote splits
    assert v.result().text == UNREADABLE and "disagree" in v.result().reason
    assert PlateVote().result().text == UNREADABLE


def _real(limit: int | None = None):
    import csv

    root = data_dir() / "plates"
    with open(root / "labels.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if "_scenes/" not in r["file"]]
    return [(cv2.imread(str(root / r["file"])), r["plate_text"], int(r["lines"])) for r in rows[:limit]]


def test_plate_text_runs_on_the_pool_workers():
    from edge.detector import YoloDetector
    from edge.inference import InferencePool
    from edge.plates import PlateCropper

    img, truth, _ = _real(1)[0]
    pool = InferencePool(lambda: YoloDetector(weights_path("yolo11n.onnx")), workers=2)
    try:
        cropper = PlateCropper(PlateConfig(), pool.crop_models)
        assert any(k.startswith("plate-text@") for k in pool._models)
        assert any(k.startswith("plate-lines@") for k in pool._models)  # the line finder too
        requests = pool.stats.requests
        got = cropper.reader.read(img)
        assert pool.stats.requests > requests  # the lines went through the pool's queue
        assert got.text == local_reader().read(img).text == "51F-446.14" == truth
    finally:
        pool.close()


def test_cli_reads_the_full_scenes():
    scenes = sorted((data_dir() / "plates" / "kkhoa-dev_tri-tue-nhan-tao_scenes").glob("*.jpg"))
    out = subprocess.run(
        [sys.executable, "-m", "edge", "--log-level", "WARNING", "plates", *map(str, scenes), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout.splitlines()
    rows = [json.loads(x) for x in out]
    assert [r["image"] for r in rows] == [str(s) for s in scenes]
    truth = {"20.jpg": "51G-688.82", "9.2.jpg": "60A-556.55"}
    for r in rows:
        assert len(r["plates"]) == 1, r
        p = r["plates"][0]
        assert set(p) >= {"text", "confidence", "box", "lines"} and p["lines"] == 1
        assert p["text"] in (truth[r["image"].rsplit("/", 1)[1]], UNREADABLE)  # never another plate
    assert rows[0]["plates"][0]["text"] == "51G-688.82"  # 20.jpg: a large, sharp plate
    assert rows[1]["plates"][0]["text"] == "60A-556.55"  # 9.2.jpg: its lines found by the text detector


def test_cli_bad_image_is_a_clear_error(tmp_path):
    bad = tmp_path / "x.jpg"
    bad.write_text("not a picture")
    p = subprocess.run(
        [sys.executable, "-m", "edge", "plates", str(bad), "--json"], capture_output=True, text=True, timeout=60
    )
    assert p.returncode == 2 and json.loads(p.stdout)["error"].startswith("not an image")


def test_contract_plate_fields():
    details = {"plate_text": "59-X1 695.92", "plate_text_confidence": 0.93, "plate_lines": 2, "plate_track": 7}
    sha = "a" * 64
    fields = object_plate(details, 7, sha)
    o = ObjectRef(class_name="motorcycle", track_id=7, box=(1.0, 2.0, 3.0, 4.0), confidence=0.9, **fields)
    assert o.plate == "59-X1 695.92" and o.plate_read.lines == 2 and o.plate_read.crop_sha256 == sha
    assert object_plate(details, 8, sha) == {}  # another object of the event
    unread = object_plate({**details, "plate_text": UNREADABLE}, 7, sha)
    assert unread["plate"] is None and unread["plate_read"]["text"] == UNREADABLE
    with pytest.raises(ValidationError):
        ObjectRef(
            class_name="car",
            track_id=1,
            box=(0.0, 0.0, 1.0, 1.0),
            confidence=0.5,
            plate_read={"text": "30A-123.45", "confidence": 0.9, "lines": 3, "crop_sha256": sha},
        )
    with pytest.raises(ValidationError):
        ObjectRef(
            class_name="car",
            track_id=1,
            box=(0.0, 0.0, 1.0, 1.0),
            confidence=0.5,
            plate_read={"text": "30A-123.45", "confidence": 0.9, "lines": 1, "crop_sha256": "nothex"},
        )


def test_traffic_events_carry_the_plate_read():
    """A traffic rule with `plates` on real footage: each event's offender carries the read (text
    or unreadable) with the hash of the plate evidence file it names."""
    from datetime import UTC, datetime, timedelta
    from pathlib import Path

    from edge.config import load_camera_config
    from edge.data import video_path
    from edge.detector import YoloDetector
    from edge.pipeline import CameraAnalyzer
    from edge.sources import VideoFileSource

    config = Path(__file__).resolve().parents[2] / "configs" / "cameras" / "motorcyclist_without_helmet.yaml"
    camera = load_camera_config(config)
    assert camera.rules.plates is not None
    analyzer = CameraAnalyzer(
        "node", camera, YoloDetector(weights_path("yolo11n.onnx")), deterministic_ids=True, motion=None
    )
    start = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)
    events = []
    for frame in VideoFileSource(video_path(camera.camera.source), camera.camera.analysis_fps).frames():
        events += [rec.event for rec in analyzer.process(frame, start + timedelta(seconds=frame.pts))]
    assert events
    for e in events:
        o = e.objects[0]
        plate = next(x for x in e.evidence if x.kind == "plate")
        assert o.plate_read is not None and o.plate_read.crop_sha256 == plate.sha256
        assert o.plate_read.text == e.details["plate_text"] and e.details["plate_reads"] >= 1
        assert o.plate == (None if o.plate_read.text == UNREADABLE else o.plate_read.text)
