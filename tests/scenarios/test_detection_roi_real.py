"""Detection ROI on a real clip: the events with `detection_roi` on equal those with it off
(the Haiphong sidewalk vendor with a dwell shorter than the clip: the zone box plus margin is
0.23 of the frame, so the detector sees a crop)."""

from __future__ import annotations

import pytest

from edge.analyze import make_detector
from edge.config import DetectorConfig, load_camera_config
from tests.scenarios import urban_real

pytestmark = pytest.mark.timeout(300)


def _events(label: dict, detector, monkeypatch, roi: bool) -> list[tuple]:
    def load(path):
        cam = load_camera_config(path)
        return cam.model_copy(update={"detection_roi": cam.detection_roi.model_copy(update={"enabled": roi})})

    monkeypatch.setattr(urban_real, "load_camera_config", load)
    rows = urban_real.evaluate(label, detector)
    return sorted((e.type.value, e.phase, e.started_at.isoformat()) for r in rows for e in r.events)


def test_events_with_roi_equal_events_without(monkeypatch):
    label = next(x for x in urban_real.labels() if x["file"] == "urban_vn_haiphong_truccat_vendor_short_dwell.yaml")
    detector = make_detector(DetectorConfig())
    off = _events(label, detector, monkeypatch, roi=False)
    on = _events(label, detector, monkeypatch, roi=True)
    assert off, "the clip must give events, or the comparison says nothing"
    assert on == off
