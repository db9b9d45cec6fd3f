"""The urban rules on real footage against labels made by looking at its frames
(tests/scenarios/labels/urban_*.yaml)."""

from __future__ import annotations

import pytest

from edge.analyze import make_detector
from edge.config import DetectorConfig
from tests.scenarios import urban_real

pytestmark = pytest.mark.timeout(300)

LABELS = urban_real.labels()


@pytest.fixture(scope="module")
def detector():
    return make_detector(DetectorConfig())


def test_labels_cover_the_sample_footage():
    videos = {label["video"] for label in LABELS}
    assert {"indoor_bottle_drop_littering_demo.mp4", "opencv_vtest_pedestrians.avi",
            "vn_paved_parking_area_motorbike.mp4"} <= videos


@pytest.mark.parametrize("label", LABELS, ids=[label["file"] for label in LABELS])
def test_events_match_the_labels(label, detector):
    rows = urban_real.evaluate(label, detector)
    assert {r.rule for r in rows} == set(label["rules"])
    for r in rows:
        got = [(e.type.value, e.phase, e.started_at.isoformat()) for e in r.events]
        assert r.fp == 0 and r.fn == 0, (r.rule, got)
