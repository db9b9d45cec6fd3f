import numpy as np

from edge.geometry import DirectedLine, PolygonZone, box_iou, scale_points


def test_polygon_contains_inside_edge_and_outside():
    zone = PolygonZone("z", "no_stopping", np.array([[0, 0], [10, 0], [10, 10], [0, 10]], np.float32))
    mask = zone.contains(np.array([[5, 5], [10, 5], [11, 5], [-1, -1]], np.float32))
    assert mask.tolist() == [True, True, False, False]
    assert zone.area() == 100.0
    assert zone.contains(np.zeros((0, 2))).shape == (0,)


def test_directed_line_crossing_direction_and_segment_extent():
    # a->b points right; forward (left->right side of the segment) is downwards in image coordinates.
    line = DirectedLine("stop", np.array([0.0, 10.0]), np.array([20.0, 10.0]))
    before = np.array([[5, 5], [5, 15], [30, 5], [5, 5]], np.float64)
    after = np.array([[5, 15], [5, 5], [30, 15], [6, 8]], np.float64)
    assert line.crossing(before, after).tolist() == [1, -1, 0, 0]


def test_scale_points_maps_reference_to_frame():
    pts = scale_points(np.array([[320, 240]], np.float32), (640, 480), (1280, 960))
    assert pts.tolist() == [[640.0, 480.0]]


def test_box_iou():
    a = np.array([0, 0, 10, 10], np.float32)
    assert box_iou(a, a) == 1.0
    assert box_iou(a, np.array([20, 20, 30, 30], np.float32)) == 0.0
    assert abs(box_iou(a, np.array([5, 0, 15, 10], np.float32)) - 1 / 3) < 1e-6
