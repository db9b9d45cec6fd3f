"""The detector on real weights and a real image (EDGE_DATA_DIR)."""

import av
import cv2
import numpy as np
import pytest

from edge.data import data_dir, weights_path
from edge.detector import YoloDetector, auto_input_size, letterbox


@pytest.fixture(scope="module")
def detector():
    return YoloDetector(weights_path("yolo11n.onnx"))


def test_names_come_from_the_model(detector):
    assert len(detector.names) == 80
    assert detector.names[0] == "person" and detector.names[3] == "motorcycle"


def test_bus_image(detector):
    img = cv2.imread(str(data_dir() / "images" / "ultralytics_bus.jpg"))
    dets = detector(img)
    names = [dets.class_name(i) for i in range(len(dets))]
    assert names.count("bus") == 1
    assert names.count("person") >= 3
    bus = dets.xyxy[names.index("bus")]
    # The bus spans almost the whole width of the 810x1080 image.
    assert bus[0] < 30 and bus[2] > 770 and 200 < bus[1] < 260
    assert np.all(dets.confidence >= detector.confidence)


def test_letterbox_and_rect_input():
    img = np.zeros((480, 640, 3), np.uint8)
    assert auto_input_size((480, 640), 640, 32) == (480, 640)
    assert auto_input_size((1080, 1920), 640, 32) == (384, 640)
    out, lb = letterbox(img, (384, 640))
    assert out.shape == (384, 640, 3) and lb.scale == pytest.approx(0.8)


def test_hanoi_intersection_frame_has_motorbikes_and_cars(detector):
    # Frame at 30 s of the real Hanoi CCTV clip: a queue of motorbikes and two cars in front.
    with av.open(str(data_dir() / "videos" / "hanoi_lythuongkiet_hangbai_intersection_trafficlight.mp4")) as c:
        stream = c.streams.video[0]
        img = next(f for f in c.decode(stream) if f.time >= 30).to_ndarray(format="bgr24")
    dets = detector(img)
    names = [dets.class_name(i) for i in range(len(dets))]
    assert names.count("motorcycle") >= 8
    assert names.count("car") >= 2
