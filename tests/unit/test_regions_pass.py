"""The regions-of-interest pass (edge/regions.py): tiles over the zones and lines, boxes mapped back
to the frame, duplicates at tile seams and with the full-frame pass merged, off by default.

The detector here is a stand-in that, like a real one, loses what is too small at its input: it
boxes bright blobs of at least MIN_PX pixels at the input it resizes the image to (long side 640).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from contract.configfile import ConfigError
from edge.config import CameraConfig, RegionsPassConfig, load_camera_config
from edge.detect.yolo import auto_input_size
from edge.detections import Detections
from edge.frames import Frame
from edge.pipeline import CameraAnalyzer
from edge.regions import (
    RegionsPass,
    cut_by_tile,
    match_across_sources,
    merge_detections,
    plan_tiles,
    region_boxes,
    regions_pass_for,
    tile_layout,
)
from tests.support import REPO_ROOT

MIN_PX = 8  # blob height at the detector's input below which it is lost


class BlobDetector:
    """Boxes bright (B > 128) blobs as 'person', green-dominant ones as 'motorcycle'."""

    names = ("person", "motorcycle")
    model_name, model_version = "blobs", "0"

    def __init__(self) -> None:
        self.calls: list[tuple[int, int]] = []

    def input_size_for(self, frame_hw: tuple[int, int]) -> tuple[int, int]:
        return auto_input_size(frame_hw, 640, 32)

    def __call__(self, image: np.ndarray) -> Detections:
        h, w = image.shape[:2]
        self.calls.append((h, w))
        ih, iw = self.input_size_for((h, w))
        s = min(ih / h, iw / w)
        small = cv2.resize(image, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA)
        boxes, classes = [], []
        for cls, mask in ((0, small[:, :, 0] > 128), (1, (small[:, :, 1] > 128) & (small[:, :, 0] < 64))):
            n, _, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8))
            for x, y, bw, bh, _area in stats[1:n]:
                if bh >= MIN_PX:
                    boxes.append((x / s, y / s, (x + bw) / s, (y + bh) / s))
                    classes.append(cls)
        if not boxes:
            return Detections.empty(self.names)
        k = len(boxes)
        return Detections(np.array(boxes, np.float32), np.full(k, 0.8, np.float32), np.array(classes, np.int32), self.names)


def camera(regions_pass: dict | None = None, zones=None, lines=None) -> CameraConfig:
    data = {
        "camera": {"id": "cam-1"},
        "scene": {
            "reference_size": [1280, 720],
            "zones": zones if zones is not None else [
                {"id": "box", "kind": "no_stopping", "polygon": [[100, 300], [1200, 300], [1200, 500], [100, 500]]}
            ],
            "lines": lines or [],
        },
    }
    if regions_pass is not None:
        data["regions_pass"] = regions_pass
    return CameraConfig.model_validate(data)


def frame_with(*rects: tuple[int, int, int, int], color=(255, 255, 255), wh=(1280, 720)) -> np.ndarray:
    img = np.zeros((wh[1], wh[0], 3), np.uint8)
    for x1, y1, x2, y2 in rects:
        cv2.rectangle(img, (x1, y1), (x2 - 1, y2 - 1), color, -1)
    return img


def on(cam: CameraConfig, detector, **over) -> RegionsPass:
    cfg = cam.regions_pass.model_copy(update={"enabled": True, **over})
    return RegionsPass(detector, cfg, cam.scene)


# -- layout


def test_regions_are_the_padded_zone_and_line_boxes_clipped_to_the_frame() -> None:
    cam = camera(lines=[{"id": "stop", "points": [[200, 650], [900, 700]]}])
    # Drawn on 1280x720, analysed at 640x360: scaled, padded by 5% of 360 = 18 px, clipped.
    boxes = region_boxes(cam.scene, (640, 360), pad=0.05)
    assert boxes == [(32, 132, 618, 268), (82, 307, 468, 360)]
    assert region_boxes(cam.scene, (640, 360), pad=0.05, only=["stop"]) == [(82, 307, 468, 360)]


def test_tiles_cover_every_region_inside_the_frame_with_overlap() -> None:
    regions = [(100, 282, 1200, 518), (1000, 600, 1280, 720)]
    tiles = tile_layout(regions, (1280, 720), (640, 640), overlap=0.2)
    assert {(t[2] - t[0], t[3] - t[1]) for t in tiles} == {(640, 640)}  # one shape: batchable
    assert all(min(t[0], t[1]) >= 0 and t[2] <= 1280 and t[3] <= 720 for t in tiles)
    covered = np.zeros((720, 1280), bool)
    for x1, y1, x2, y2 in tiles:
        covered[y1:y2, x1:x2] = True
    for x1, y1, x2, y2 in regions:
        assert covered[y1:y2, x1:x2].all()
    # The wide region: two tiles sharing at least the overlap; the corner one: one tile.
    assert tiles == [(100, 80, 740, 720), (560, 80, 1200, 720), (640, 80, 1280, 720)]
    assert 740 - 560 >= 0.2 * 640
    # Overlapping regions are tiled as one.
    assert tile_layout([(100, 300, 500, 400), (400, 350, 700, 450)], (1280, 720), (640, 640), 0.2) == [
        (80, 55, 720, 695)
    ]


def test_tiles_grow_to_fit_max_tiles_and_none_run_when_no_sharper_than_the_full_frame() -> None:
    size_for = BlobDetector().input_size_for
    regions = [(0, 0, 1280, 720)]
    tiles, scale = plan_tiles(regions, (1280, 720), size_for, RegionsPassConfig(scale=1.0, max_tiles=6))
    assert len(tiles) == 6 and scale == 1.0  # 3 x 2 native tiles
    tiles, scale = plan_tiles(regions, (1280, 720), size_for, RegionsPassConfig(scale=1.0, max_tiles=2))
    assert len(tiles) <= 2 and 0.55 < scale < 1.0  # larger tiles, still sharper than the full frame's 0.5
    # 640x480 at long side 640 is already native in the full-frame pass: scale 1 tiles add nothing.
    assert plan_tiles([(0, 0, 640, 480)], (640, 480), size_for, RegionsPassConfig(scale=1.0)) == ([], 0.0)
    tiles, scale = plan_tiles([(0, 200, 640, 480)], (640, 480), size_for, RegionsPassConfig(scale=2.0))
    assert scale == 2.0 and {(t[2] - t[0], t[3] - t[1]) for t in tiles} == {(320, 320)}


# -- detections mapped back and merged


def test_a_small_object_in_a_zone_is_found_and_mapped_back_to_frame_pixels() -> None:
    img = frame_with((700, 400, 710, 412))  # 12 px tall: 6 px at the full frame's input
    det = BlobDetector()
    assert len(det(img)) == 0
    merged = on(camera(), det)(img)
    assert len(merged) == 1 and merged.class_name(0) == "person"
    assert np.allclose(merged.xyxy[0], [700, 400, 710, 412], atol=1.5)


def test_an_object_outside_every_region_is_not_looked_for() -> None:
    img = frame_with((700, 20, 710, 32))  # small, above the zone and above every tile
    rp = on(camera(), BlobDetector())
    assert len(rp(img)) == 0 and all(t[1] > 32 for t in rp.tiles)


def test_an_object_in_the_overlap_of_two_tiles_is_one_box() -> None:
    rp = on(camera(), BlobDetector())
    tiles, _ = rp.plan((720, 1280))
    assert len(tiles) == 3
    seam = (tiles[1][0] + tiles[0][2]) // 2  # in the first two tiles, whole in each
    img = frame_with((seam - 5, 400, seam + 5, 412))
    merged = rp(img)
    assert len(merged) == 1 and rp.stats.added == 1


def test_boxes_cut_by_a_tile_border_give_way_to_the_whole_object() -> None:
    # Wider than a tile: each tile sees only part of it, the full-frame pass sees it whole.
    img = frame_with((300, 380, 1100, 480))
    det = BlobDetector()
    full = det(img)
    merged = on(camera(), det)(img)
    assert len(full) == 1 and len(merged) == 1
    assert np.allclose(merged.xyxy[0], full.xyxy[0])


def test_cut_by_tile_ignores_tile_borders_on_the_frame_edge() -> None:
    boxes = np.array([[0, 10, 20, 30], [300, 10, 320, 30], [100, 100, 120, 320]], np.float32)
    # A tile at the frame's left edge: x = 0 is the frame's border, not a cut; x = 320 and y = 320 are.
    assert cut_by_tile(boxes, (0, 0, 320, 320), (1280, 720)).tolist() == [False, True, True]
    # At the bottom-right corner: only its left and top borders cut.
    assert cut_by_tile(boxes, (960, 400, 1280, 720), (1280, 720)).tolist() == [True, False, False]


def test_merge_keeps_the_pillion_passenger_a_full_frame_box_over_both_riders_covers() -> None:
    names = ("person", "motorcycle")
    # Full frame: one person box over driver and passenger, one motorcycle box over riders and bike.
    full = Detections(np.array([[100, 100, 140, 160], [95, 100, 145, 200]], np.float32),
                      np.array([0.7, 0.8], np.float32), np.array([0, 1], np.int32), names)
    # The tile (at 0, 0): driver, passenger, the bike alone.
    tile = Detections(np.array([[100, 100, 125, 160], [118, 104, 140, 150], [98, 140, 142, 200]], np.float32),
                      np.array([0.6, 0.5, 0.9], np.float32), np.array([0, 0, 1], np.int32), names)
    merged = merge_detections(full, [(0, 0, 640, 640)], [tile], (1280, 720))
    names_out = sorted(merged.class_name(i) for i in range(len(merged)))
    assert names_out == ["motorcycle", "person", "person"]  # one bike, two people
    assert [pytest.approx(0.9)] == [float(c) for c, k in zip(merged.confidence, merged.class_id, strict=True) if k == 1]


def test_match_across_sources_never_merges_boxes_of_one_pass() -> None:
    xyxy = np.array([[0, 0, 10, 10], [1, 1, 10, 10], [0, 0, 10, 10]], np.float32)
    conf = np.array([0.9, 0.8, 0.7], np.float32)
    cls = np.zeros(3, np.int32)
    assert match_across_sources(xyxy, conf, cls, np.array([0, 0, 1]), 0.5).tolist() == [0, 1]
    assert match_across_sources(xyxy, conf, cls, np.array([0, 0, 0]), 0.5).tolist() == [0, 1, 2]
    assert match_across_sources(xyxy, conf, np.array([0, 0, 1], np.int32), np.array([0, 1, 2]), 0.5).tolist() == [0, 2]


def test_every_n_frames_runs_the_tiles_on_every_nth_detector_run_only() -> None:
    img = frame_with((700, 400, 710, 412))
    det = BlobDetector()
    rp = on(camera(), det, every_n_frames=3)
    found = [len(rp(img)) for _ in range(6)]
    assert found == [1, 0, 0, 1, 0, 0]
    assert rp.stats.passes == 2


def test_detect_many_is_used_when_the_detector_has_it() -> None:
    class Pool(BlobDetector):
        def __init__(self) -> None:
            super().__init__()
            self.batches: list[int] = []

        def detect_many(self, images: list[np.ndarray]) -> list[Detections]:
            self.batches.append(len(images))
            return [self(i) for i in images]

    pool = Pool()
    rp = on(camera(), pool)
    merged = rp(frame_with((700, 400, 710, 412)))
    assert pool.batches == [1 + len(rp.tiles)] and len(merged) == 1  # the frame and its tiles in one call


# -- config and wiring


def test_off_by_default_and_old_configs_load_unchanged() -> None:
    cam = camera()
    assert cam.regions_pass.enabled is False
    det = BlobDetector()
    assert regions_pass_for(cam, det) is det
    for path in sorted((REPO_ROOT / "configs" / "cameras").glob("*.yaml")):
        assert load_camera_config(path).regions_pass == RegionsPassConfig(), path.name


def test_the_camera_analysis_runs_the_pass_when_enabled() -> None:
    from datetime import UTC, datetime

    img = frame_with((700, 400, 710, 412))
    seen = []
    for enabled in (False, True):
        analyzer = CameraAnalyzer("n", camera({"enabled": enabled}), BlobDetector())
        analyzer.process(Frame(img, 0.0, 0.0, 0), datetime(2026, 1, 1, tzinfo=UTC))
        seen.append(analyzer.stats.detections)
    assert seen == [0, 1]


@pytest.mark.parametrize(
    ("regions_pass", "key"),
    [
        ({"scale": 0}, "regions_pass.scale"),
        ({"overlap": 0.7}, "regions_pass.overlap"),
        ({"max_tiles": 0}, "regions_pass.max_tiles"),
        ({"tiles": 4}, "regions_pass.tiles"),
        ({"regions": ["nowhere"]}, "regions_pass"),
    ],
)
def test_config_errors_name_the_key(tmp_path: Path, regions_pass: dict, key: str) -> None:
    import yaml

    data = camera().model_dump(mode="json")
    data["regions_pass"] = regions_pass
    path = tmp_path / "cam.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    with pytest.raises(ConfigError) as e:
        load_camera_config(path)
    assert key in str(e.value)
    if "regions" in regions_pass:
        assert "'nowhere' is no zone or line of the scene" in str(e.value)


def test_tiles_follow_the_zones_when_the_camera_moves() -> None:
    """The analysis maps the zones into the frame as the camera drifts (edge.registration); the
    tiles are laid over the zones as they are now, not as drawn."""
    cam = camera(zones=[{"id": "z", "kind": "sidewalk", "polygon": [[900, 500], [1000, 500], [1000, 600], [900, 600]]}])
    from edge.geometry import PolygonZone

    now = [PolygonZone("z", "sidewalk", np.array([[900, 500], [1000, 500], [1000, 600], [900, 600]], np.float32))]
    rp = RegionsPass(BlobDetector(), cam.regions_pass.model_copy(update={"enabled": True, "scale": 2.0}),
                     cam.scene, lambda: now)
    before, _ = rp.plan((720, 1280))
    now[0].polygon[:] -= np.array([300, 200], np.float32)  # the view drifted
    after, _ = rp.plan((720, 1280))
    assert before != after
    for tiles, zone in ((before, (900, 500, 1000, 600)), (after, (600, 300, 700, 400))):
        assert any(t[0] <= zone[0] and t[1] <= zone[1] and t[2] >= zone[2] and t[3] >= zone[3] for t in tiles)
