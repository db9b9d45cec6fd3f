"""Two streams per camera (edge/streams.py): `camera.record_source` next to `source`, boxes scaled
from the detect (sub) stream to the record (main) stream, and an event's snapshot decoded from the
main stream's packets at the event's pts."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from contract.configfile import ConfigError
from contract.events import ViolationType
from edge.__main__ import main
from edge.config import load_camera_config, load_node_config
from edge.data import video_path
from edge.detections import TrackedObjects
from edge.frames import Frame
from edge.geometry import PolygonZone
from edge.rules import Violation
from edge.rules.base import Offender, Overlay
from edge.sources import VideoFileSource
from edge.streams import (
    MainStreamFrames,
    MainStreamPendingEvent,
    frame_at,
    record_pipeline,
    scale_tracks,
    scale_violation,
)
from pipelines.clips import Packet, PacketRing

CAMERA = """
camera:
  id: cam-1
  source: {source}
{extra}scene:
  reference_size: [1920, 1080]
  zones:
    - {{id: z1, kind: no_stopping, polygon: [[0, 0], [960, 0], [960, 540]]}}
rules:
  illegal_stopping: {{zones: [z1], max_stop_seconds: 10}}
"""
SUB = "rtsp://user:secret@10.0.0.5:554/Streaming/Channels/102"
MAIN = "rtsp://user:secret@10.0.0.5:554/Streaming/Channels/101"
FOOTAGE = "hanoi_lythuongkiet_hangbai_intersection_trafficlight.mp4"  # H.264, upright, 5 s GOPs


def camera_file(tmp_path: Path, source: str, record: str | None = None) -> Path:
    extra = f"  record_source: {record}\n" if record is not None else ""
    p = tmp_path / "cam.yaml"
    p.write_text(CAMERA.format(source=source, extra=extra), encoding="utf-8")
    return p


# -- config --------------------------------------------------------------------------------------


def test_record_source_names_the_main_stream(tmp_path):
    cam = load_camera_config(camera_file(tmp_path, SUB, MAIN)).camera
    assert (cam.detect_source, cam.recorded_source) == (SUB, MAIN)


def test_a_one_stream_camera_is_unchanged(tmp_path):
    cam = load_camera_config(camera_file(tmp_path, MAIN)).camera
    assert cam.record_source is None
    assert cam.detect_source == cam.recorded_source == MAIN


@pytest.mark.parametrize(
    ("source", "record", "message"),
    [
        (SUB, "main.mp4", r"camera\.record_source.*rtsp:// or rtsps:// URL"),
        (FOOTAGE, MAIN, r"camera\.record_source.*not a file"),
    ],
)
def test_two_streams_are_a_live_cameras(tmp_path, source, record, message):
    with pytest.raises(ConfigError, match=message):
        load_camera_config(camera_file(tmp_path, source, record))


def test_check_config_names_the_record_source_key(tmp_path, capsys):
    path = camera_file(tmp_path, SUB, "rtsp://10.0.0.5:99999/main")
    rc = main(["--log-level", "WARNING", "check-config", "--camera", str(path)])
    captured = capsys.readouterr()
    out = captured.out + captured.err
    assert rc != 0
    assert f"{path}: camera.record_source: malformed URL" in out and "camera.source" not in out


def test_a_node_source_override_means_both_streams(tmp_path):
    # One camera config for several alike cameras: the node's source for a camera must never be
    # paired with the main stream of the camera the file was written for.
    camera_file(tmp_path, SUB, MAIN)
    node = tmp_path / "node.yaml"
    node.write_text(
        "node: {id: n1}\nmqtt: {url: 'mqtt://127.0.0.1:1883'}\n"
        "cameras:\n  - {config: cam.yaml, id: cam-2, source: 'rtsp://10.0.0.6/main'}\n  - {config: cam.yaml}\n",
        encoding="utf-8",
    )
    _, cams = load_node_config(node)
    assert (cams[0].camera.source, cams[0].camera.record_source) == ("rtsp://10.0.0.6/main", None)
    assert (cams[1].camera.source, cams[1].camera.record_source) == (SUB, MAIN)


def test_the_record_pipeline_has_no_decoder():
    desc = record_pipeline(MAIN)
    assert "rtph264depay ! h264parse" in desc and "appsink name=packets" in desc
    assert "dec" not in desc.replace("rtph264depay", "")


# -- detect -> record pixels ---------------------------------------------------------------------


def violation() -> Violation:
    zone = PolygonZone("z1", "no_stopping", np.array([[0, 0], [320, 0], [320, 180]], np.float32))
    return Violation(
        type=ViolationType("illegal_stopping"),
        started_at=1.0,
        ended_at=2.0,
        confidence=0.9,
        offenders=(Offender(7, "motorcycle", (100.0, 50.0, 140.0, 110.0), 0.9),),
        zone=zone,
        overlay=Overlay(lines=(("l1", (10.0, 300.0), (600.0, 300.0)),), signal_boxes=(("red", (600, 10, 610, 20)),)),
    )


def test_boxes_zone_and_lines_scale_from_detect_to_record():
    v = scale_violation(violation(), 3.0, 3.0)  # 640x360 -> 1920x1080
    assert v.offenders[0].box == (300.0, 150.0, 420.0, 330.0)
    np.testing.assert_allclose(v.zone.polygon, [[0, 0], [960, 0], [960, 540]])
    assert v.overlay.lines == (("l1", (30.0, 900.0), (1800.0, 900.0)),)
    assert v.overlay.signal_boxes == (("red", (1800, 30, 1830, 60)),)
    # Not in place: the rule's own violation keeps its sub-stream pixels.
    assert violation().offenders[0].box == (100.0, 50.0, 140.0, 110.0)


def test_tracks_scale_unevenly_when_the_aspect_differs():
    t = TrackedObjects(
        np.array([[10, 20, 30, 40]], np.float32),
        np.array([0.8], np.float32),
        np.array([3], np.int32),
        np.array([5], np.int64),
        ("car",),
    )
    s = scale_tracks(t, 2.0, 1.5)
    assert s is not None
    np.testing.assert_allclose(s.xyxy, [[20, 30, 60, 60]])
    assert int(s.track_id[0]) == 5 and s.names == ("car",)


# -- a snapshot from the main stream's packets ---------------------------------------------------


@pytest.fixture(scope="module")
def footage():
    """A real clip's packets (what a camera's main stream gives the ring) and its decoded frames."""
    packets: list[Packet] = []
    src = VideoFileSource(video_path(FOOTAGE), on_packet=packets.append)
    frames = {}
    for f in src.frames():
        frames[f.pts] = f.image
        if len(frames) >= 90:
            break
    return packets, frames


def test_the_frame_at_an_events_pts_is_decoded_from_its_gop(footage):
    packets, frames = footage
    ring = PacketRing(60, 1 << 30)
    for p in packets:
        ring.add(p)
    keys = [p.pts for p in packets if p.keyframe]
    # A moment well inside a GOP (not on its keyframe): the decode must run from the keyframe to it.
    inside = [t for t in sorted(frames) if t > keys[0] + 0.5 and t not in keys]
    assert inside, "the clip has no frame inside a GOP"
    for t in inside[:: max(1, len(inside) // 4)]:
        got = frame_at(ring.window(t, t + 0.1), t)
        assert got is not None
        image, pts = got
        assert pts == pytest.approx(t, abs=1e-3)
        assert np.array_equal(image, frames[t])
    # A little off the frame (the streams' skew): still the nearest frame.
    t = inside[0]
    got = frame_at(ring.window(t + 0.004, t + 0.1), t + 0.004)
    assert got is not None and got[1] == pytest.approx(t, abs=1e-3)


def test_no_frame_without_a_keyframe_to_start_from(footage):
    packets, _ = footage
    deltas = [p for p in packets if not p.keyframe]
    assert frame_at(deltas[:5], deltas[2].pts) is None


class _Analyzer:
    """The two calls the pending event makes back into its analyzer, recorded."""

    def __init__(self, main: MainStreamFrames) -> None:
        from edge.config import CameraConfig

        self.main_frames = main
        self.camera = CameraConfig.model_validate(
            {"camera": {"id": "cam-1", "source": SUB, "record_source": MAIN}, "scene": {"reference_size": [1920, 1080]}}
        )
        from zoneinfo import ZoneInfo

        self.tz = ZoneInfo("Asia/Ho_Chi_Minh")
        self.calls: list[tuple] = []

    def _evidence(self, v, image, when, tracks):
        self.calls.append(("evidence", v, image, tracks))
        return ()

    def _event(self, v, pts, when, evidence):
        self.calls.append(("event", v, pts))
        return "record"


def test_an_events_snapshot_is_the_main_streams_frame_with_the_box_scaled(footage):
    packets, frames = footage
    ring = PacketRing(60, 1 << 30)
    for p in packets:
        ring.add(p)
    t = sorted(frames)[len(frames) // 2]
    main_image = frames[t]
    h, w = main_image.shape[:2]
    sub = np.zeros((h // 2, w // 2, 3), np.uint8)  # the sub-stream's frame: half the size
    a = _Analyzer(MainStreamFrames(ring, wait_s=0.0))
    tracks = TrackedObjects(
        np.array([[100, 50, 140, 110]], np.float32),
        np.array([0.9], np.float32),
        np.array([3], np.int32),
        np.array([7], np.int64),
        ("motorcycle",),
    )
    event = MainStreamPendingEvent(
        a, violation(), Frame(image=sub, pts=t, wall_time=0.0, index=0), datetime.now(UTC), tracks
    )
    assert event.build() == "record"
    (_, v, image, scaled), (_, v_event, pts) = a.calls
    assert np.array_equal(image, main_image)
    assert v.offenders[0].box == (200.0, 100.0, 280.0, 220.0) == v_event.offenders[0].box
    np.testing.assert_allclose(scaled.xyxy, [[200, 100, 280, 220]])
    assert pts == t and a.main_frames.decoded == 1


def test_without_the_main_streams_packets_the_snapshot_is_the_sub_streams(footage):
    _, frames = footage
    a = _Analyzer(MainStreamFrames(PacketRing(5, 1 << 20), wait_s=0.0))
    sub = np.zeros((240, 320, 3), np.uint8)
    event = MainStreamPendingEvent(
        a, violation(), Frame(image=sub, pts=1.0, wall_time=0.0, index=0), datetime.now(UTC), None
    )
    from edge.runtime.analyzer import PendingEvent

    # The fallback is the one-stream path: PendingEvent.build with the sub-stream frame, unscaled.
    assert isinstance(event, PendingEvent)
    assert event.build() == "record"
    (_, v, image, _), _ = a.calls
    assert image is sub and v.offenders[0].box == (100.0, 50.0, 140.0, 110.0)
    assert a.main_frames.missed == 1


def test_the_main_streams_url_never_goes_to_central(tmp_path):
    # The console gets each camera's running config (edge/scene_sync.py) without its URLs: both
    # carry the camera's password.
    from edge.scene_sync import running_yaml

    text = running_yaml(load_camera_config(camera_file(tmp_path, SUB, MAIN)))
    assert "secret" not in text and "rtsp://" not in text and "record_source" not in text


def test_a_console_edit_keeps_the_nodes_own_streams(tmp_path):
    from edge.scene_sync import running_yaml, validate

    running = load_camera_config(camera_file(tmp_path, SUB, MAIN))
    edited = running_yaml(running).replace("max_stop_seconds: 10", "max_stop_seconds: 20")
    camera = validate(edited, running, "console")
    assert (camera.camera.source, camera.camera.record_source) == (SUB, MAIN)
    assert camera.rules.illegal_stopping.max_stop_seconds == 20


def test_the_plate_is_read_again_on_the_main_streams_frame():
    """A real 1080p close-up (a car, plate 51G-688.82, 535 px wide) as the main stream and a
    sixteenth of it as the sub-stream (the plate 33 px wide, as a car's some way off at 640x360):
    the sub-stream's crop of the car gives no readable plate; the event's main-stream frame does,
    and the event carries that text and crop."""
    import cv2

    from edge.config import PlateConfig
    from edge.crops import cut
    from edge.data import data_dir
    from edge.plate_text import UNREADABLE
    from edge.plates import PlateCropper
    from edge.rules.base import EvidenceImage
    from edge.streams import main_stream_plate

    main_image = cv2.imread(str(data_dir() / "plates" / "kkhoa-dev_tri-tue-nhan-tao_scenes" / "20.jpg"))
    assert main_image is not None and main_image.shape[:2] == (1080, 1920)
    k = 16
    sub = cv2.resize(main_image, (1920 // k, 1080 // k), interpolation=cv2.INTER_AREA)
    car = (300.0, 0.0, 1700.0, 1080.0)  # the car's rear around the plate (755-1290, 532-720)
    sub_box = tuple(c / k for c in car)
    cropper = PlateCropper(PlateConfig())
    v = Violation(
        type=ViolationType("red_light"),
        started_at=1.0,
        ended_at=2.0,
        confidence=0.9,
        offenders=(Offender(7, "car", sub_box, 0.9),),
    )
    on_sub = cropper.attach(v, [cut(sub, sub_box, margin=0.1)])
    assert on_sub.details.get("plate_text") in (None, UNREADABLE), on_sub.details  # too small to read
    scaled = scale_violation(on_sub, k, k)
    got = main_stream_plate(scaled, main_image, cropper)
    assert got.details["plate_text"] == "51G-688.82" and got.details["plate_source"] == "record_stream"
    plates = [i for i in got.images if i.kind == "plate"]
    assert len(plates) == 1 and isinstance(plates[0], EvidenceImage)
    assert plates[0].image.shape[1] > 200  # the main stream's crop, not the sub-stream's
    # A sub-stream vote that read the plate and a main-stream frame that cannot: the vote stands.
    read = dataclasses_replace(
        scaled,
        details={**scaled.details, "plate_found": True, "plate_text": "51G-688.82", "plate_text_confidence": 0.9},
    )
    blank = np.zeros_like(main_image)
    assert main_stream_plate(read, blank, cropper) is read
    assert main_stream_plate(read, main_image, None) is read  # a camera without the plate stage


def dataclasses_replace(obj, **kw):
    import dataclasses

    return dataclasses.replace(obj, **kw)
