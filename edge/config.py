"""Edge configuration: the node (broker, detector, its cameras) and each camera's scene and rules.

Validated at start; `contract.configfile.load_config` turns a problem into one line per key path.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from contract.configfile import ConfigError, load_config
from contract.events import ID_PATTERN, Location
from contract.topics import DEFAULT_PREFIX

Identifier = Annotated[str, Field(pattern=ID_PATTERN)]
Point = tuple[float, float]

# COCO names of what can stop or park on a road.
VEHICLE_CLASSES = ["car", "motorcycle", "bus", "truck", "bicycle"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ZoneConfig(_Model):
    id: Identifier
    kind: Literal["no_stopping", "no_parking", "sidewalk", "littering_watch", "lane", "other"]
    polygon: list[Point] = Field(min_length=3, description="pixel points of the reference snapshot")
    name: str | None = None


class LineConfig(_Model):
    id: Identifier
    points: tuple[Point, Point]
    name: str | None = None


class SceneConfig(_Model):
    reference_size: tuple[int, int] = Field(description="width, height of the snapshot the scene was drawn on")
    zones: list[ZoneConfig] = Field(default_factory=list)
    lines: list[LineConfig] = Field(default_factory=list)

    @field_validator("zones", "lines")
    @classmethod
    def _unique_ids(cls, items: list[ZoneConfig] | list[LineConfig]) -> list:
        seen: set[str] = set()
        for item in items:
            if item.id in seen:
                raise ValueError(f"id {item.id!r} is used twice")
            seen.add(item.id)
        return items

    @model_validator(mode="after")
    def _inside_reference(self) -> SceneConfig:
        w, h = self.reference_size
        for i, zone in enumerate(self.zones):
            for x, y in zone.polygon:
                if not (0 <= x <= w and 0 <= y <= h):
                    raise ValueError(f"zones[{i}] ({zone.id}): point ({x}, {y}) is outside the {w}x{h} reference")
        return self


class IllegalStoppingConfig(_Model):
    zones: list[Identifier] = Field(min_length=1, description="ids of no_stopping / no_parking zones")
    max_stop_seconds: float = Field(gt=0, description="stationary longer than this is a violation")
    vehicle_classes: list[str] = Field(default_factory=lambda: list(VEHICLE_CLASSES), min_length=1)
    still_tolerance: float = Field(0.25, gt=0, le=2, description="movement allowed, as a share of the box height")
    move_grace_seconds: float = Field(1.0, ge=0, description="moving for less than this does not end the stop")
    forget_after_seconds: float = Field(3.0, gt=0, description="a vehicle unseen this long has gone")


class RulesConfig(_Model):
    illegal_stopping: IllegalStoppingConfig | None = None


class TrackerConfig(_Model):
    lost_track_seconds: float = Field(2.0, gt=0)
    activation_confidence: float = Field(0.35, ge=0, le=1)
    high_confidence: float = Field(0.5, ge=0, le=1)


class CameraInfo(_Model):
    id: Identifier
    name: str | None = None
    source: str | None = Field(None, description="rtsp:// URL or a video file (name under EDGE_DATA_DIR/videos)")
    analysis_fps: float = Field(5.0, gt=0, le=60)
    location: Location = Field(default_factory=Location)


class CameraConfig(_Model):
    camera: CameraInfo
    scene: SceneConfig
    rules: RulesConfig = Field(default_factory=RulesConfig)
    tracker: TrackerConfig = Field(default_factory=TrackerConfig)

    @field_validator("rules")
    @classmethod
    def _rules_use_known_zones(cls, rules: RulesConfig, info: ValidationInfo) -> RulesConfig:
        scene = info.data.get("scene")
        if scene is None or rules.illegal_stopping is None:
            return rules
        known = {z.id for z in scene.zones}
        for i, zone_id in enumerate(rules.illegal_stopping.zones):
            if zone_id not in known:
                raise ValueError(
                    f"illegal_stopping.zones[{i}]: no zone {zone_id!r} in scene.zones (have: {sorted(known) or 'none'})"
                )
        return rules


class DetectorConfig(_Model):
    model: str = Field("yolo11n.onnx", description="file under EDGE_DATA_DIR/weights, or a path")
    input_size: tuple[int, int] | None = Field(None, description="height, width; null = long side at long_side")
    long_side: int = Field(640, ge=64, le=2048, multiple_of=32)
    confidence: float = Field(0.25, gt=0, lt=1)
    iou: float = Field(0.45, gt=0, lt=1)
    providers: list[str] | None = Field(None, description="ONNX Runtime execution providers in order of preference")
    threads: int = Field(1, ge=1, le=64)


class MqttConfig(_Model):
    url: str = Field("mqtt://127.0.0.1:1883", pattern=r"^mqtts?://[^/:]+(:\d+)?/?$")
    topic_prefix: str = Field(DEFAULT_PREFIX, pattern=r"^[a-z0-9_-]+$")
    client_id: str | None = None
    username: str | None = None
    password: str | None = None
    keepalive_s: int = Field(30, ge=5, le=3600)


class NodeCamera(_Model):
    config: Path = Field(description="camera config file, relative to this node config")
    source: str | None = Field(None, description="overrides the camera config's source")


class NodeInfo(_Model):
    id: Identifier
    state_dir: Path | None = Field(None, description="outbox and evidence; default var/edge/<id>")


class NodeConfig(_Model):
    node: NodeInfo
    mqtt: MqttConfig = Field(default_factory=MqttConfig)
    detector: DetectorConfig = Field(default_factory=DetectorConfig)
    cameras: list[NodeCamera] = Field(min_length=1)
    status_interval_s: float = Field(10.0, gt=0)
    platform: Literal["cpu", "vaapi", "jetson"] = "cpu"


def mqtt_client_id(node: NodeConfig) -> str:
    return node.mqtt.client_id or f"edge-{node.node.id}-{socket.gethostname()}-{os.getpid()}"


def load_camera_config(path: Path | str) -> CameraConfig:
    return load_config(path, CameraConfig)


def load_node_config(path: Path | str) -> tuple[NodeConfig, list[CameraConfig]]:
    """The node config and its cameras' configs (each validated, errors naming its own file)."""
    path = Path(path)
    node = load_config(path, NodeConfig)
    if node.node.state_dir is not None and not node.node.state_dir.is_absolute():
        node.node.state_dir = (path.parent / node.node.state_dir).resolve()
    cameras: list[CameraConfig] = []
    seen: set[str] = set()
    for i, entry in enumerate(node.cameras):
        cam_path = entry.config if entry.config.is_absolute() else path.parent / entry.config
        cam = load_camera_config(cam_path)
        if entry.source:
            cam = cam.model_copy(update={"camera": cam.camera.model_copy(update={"source": entry.source})})
        if not cam.camera.source:
            raise ConfigError(f"{path}: cameras[{i}].source: no source here nor in {cam_path}")
        if cam.camera.id in seen:
            raise ConfigError(f"{path}: cameras[{i}]: camera id {cam.camera.id!r} appears twice")
        seen.add(cam.camera.id)
        cameras.append(cam)
    return node, cameras
