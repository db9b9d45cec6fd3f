"""An in-process live edge node for tests: a node config on the test broker, file cameras."""

from __future__ import annotations

from pathlib import Path

from edge.config import CameraConfig, NodeConfig, load_camera_config
from edge.node import EdgeNode

REPO = Path(__file__).resolve().parents[2]
VIDEO = "vn_paved_parking_area_motorbike.mp4"  # a car parks on the walkway: an illegal_stopping event
CAMERA_CONFIG = REPO / "configs" / "cameras" / "vn_paved_parking_area_motorbike.yaml"


def camera(source: str = VIDEO, camera_id: str | None = None) -> CameraConfig:
    """The walkway camera's config, with another source (a file stands in for a camera) or id."""
    cam = load_camera_config(CAMERA_CONFIG)
    update = {"source": source, **({"id": camera_id} if camera_id else {})}
    return cam.model_copy(update={"camera": cam.camera.model_copy(update=update)})


def live_node(broker_port: int, state_dir: Path, prefix: str, node_id: str, cameras: list[CameraConfig],
              **extra) -> EdgeNode:
    """A node publishing under `prefix`, status every second, one inference worker; `extra`: more keys."""
    cfg = NodeConfig.model_validate({
        "node": {"id": node_id, "state_dir": str(state_dir)},
        "mqtt": {"url": f"mqtt://127.0.0.1:{broker_port}", "topic_prefix": prefix},
        "cameras": [{"config": "unused.yaml"}],
        "status_interval_s": 1,
        "inference": {"workers": 1},
        **extra,
    })
    return EdgeNode(cfg, cameras)
