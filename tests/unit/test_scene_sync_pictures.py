"""The node's copy of the frame a console scene version was drawn on (edge.scene_sync, issue 14):
checked against its sha256 and decoded before it is written, scaled to the scene's reference
size when the frame had another, named by its sha256 beside the scene file, kept while the
scene or its previous version names it; central is not told the node's path for it."""

from __future__ import annotations

import hashlib
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from contract.configfile import ConfigError
from edge.config import load_camera_config
from edge.data import data_dir
from edge.scene_sync import (
    picture_name,
    prune_pictures,
    running_yaml,
    validate,
    with_reference_image,
    write_atomically,
    write_picture,
)

JPEG = data_dir() / "images" / "vn_intersection_redlight_day_1113.jpg"  # 640x640


def test_a_picture_is_written_only_when_it_is_the_frame_its_sha256_names(tmp_path: Path) -> None:
    data = JPEG.read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    with pytest.raises(ConfigError, match=r"cam-1.yaml \(version 2\): scene.reference_image: .* is not the frame"):
        write_picture(tmp_path, "cam-1", data[:-100], sha, (640, 640), "cam-1.yaml (version 2)")
    junk = b"\xff\xd8 not a jpeg at all"
    with pytest.raises(ConfigError, match="not a picture OpenCV can read"):
        write_picture(tmp_path, "cam-1", junk, hashlib.sha256(junk).hexdigest(), (640, 640), "v")
    assert list(tmp_path.iterdir()) == []  # nothing half-written
    path = write_picture(tmp_path, "cam-1", data, sha, (640, 640), "v")
    assert path == tmp_path / picture_name("cam-1", sha, (640, 640)) and path.read_bytes() == data


def test_a_frame_of_another_size_is_scaled_to_the_scenes_reference_size(tmp_path: Path) -> None:
    data = JPEG.read_bytes()
    path = write_picture(tmp_path, "cam-1", data, hashlib.sha256(data).hexdigest(), (1280, 720), "v")
    assert path.name == picture_name("cam-1", hashlib.sha256(data).hexdigest(), (1280, 720))
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    assert image.shape == (720, 1280, 3)  # as the editor showed it: the scene's pixels
    original = cv2.resize(cv2.imread(str(JPEG), cv2.IMREAD_COLOR), (1280, 720))
    assert np.abs(image.astype(int) - original.astype(int)).mean() < 4


def test_the_scene_names_its_picture_beside_it_and_central_is_not_told_the_path(tmp_path: Path) -> None:
    data = JPEG.read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    own = tmp_path / "own.yaml"
    own.write_text(yaml.safe_dump({
        "camera": {"id": "cam-1", "source": "rtsp://u:p@10.0.0.9/s", "analysis_fps": 5},
        "scene": {"reference_size": [640, 640], "zones": [
            {"id": "box", "kind": "no_stopping", "polygon": [[100, 300], [400, 300], [400, 600]]}]},
    }))
    running = load_camera_config(own)
    scenes = tmp_path / "scenes"
    picture = write_picture(scenes, "cam-1", data, sha, (640, 640), "v")
    text = with_reference_image(running_yaml(running), picture.name)
    assert yaml.safe_load(text)["scene"]["reference_image"] == picture.name  # relative: beside the file
    write_atomically(scenes, "cam-1", text, 2)
    cam = validate((scenes / "cam-1.yaml").read_text(), running, "cam-1.yaml", base=scenes)
    assert cam.scene.reference_image == picture.resolve() and cam.camera.source == running.camera.source
    # Without the folder a relative picture is not found (check-config's error, naming the file).
    with pytest.raises(ConfigError, match=r"cam-1.yaml: scene.reference_image: picture not found"):
        validate((scenes / "cam-1.yaml").read_text(), running, "cam-1.yaml")
    assert "reference_image" not in running_yaml(cam, scenes)  # central knows it by its sha256
    assert "reference_image" in running_yaml(cam)
    assert "reference_image" not in yaml.safe_load(with_reference_image(text, None))["scene"]


def test_pictures_are_kept_while_the_scene_or_its_previous_version_names_them(tmp_path: Path) -> None:
    names = [picture_name("cam-1", c * 64, (640, 480)) for c in "abc"]
    for n in [*names, picture_name("cam-10", "d" * 64, (640, 480)), "cam-1.notes.jpg"]:
        (tmp_path / n).write_bytes(b"x")
    write_atomically(tmp_path, "cam-1", f"scene: {{reference_image: {names[0]}}}\n", 2)
    write_atomically(tmp_path, "cam-1", f"scene: {{reference_image: {names[1]}}}\n", 3)
    prune_pictures(tmp_path, "cam-1")
    left = sorted(p.name for p in tmp_path.iterdir())
    assert names[0] in left and names[1] in left and names[2] not in left  # a's in .prev, b's current
    assert picture_name("cam-10", "d" * 64, (640, 480)) in left and "cam-1.notes.jpg" in left  # not cam-1's pictures
