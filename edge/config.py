"""Edge configuration: the node (broker, detector, its cameras) and each camera's scene and rules.

Validated at start; `contract.configfile.load_config` turns a problem into one line per key path.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from contract.configfile import ConfigError, ConfigPath, load_config
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


class LampConfig(_Model):
    color: Literal["red", "yellow", "green"]
    box: tuple[float, float, float, float] = Field(description="x1, y1, x2, y2 of the lamp on the reference snapshot")


class SignalHeadConfig(_Model):
    """A signal head: its lamps' image regions (read from the picture), or a signal controller over MQTT."""

    id: Identifier
    source: Literal["image", "controller"] = "image"
    lamps: list[LampConfig] = Field(default_factory=list)
    min_value: int = Field(130, ge=0, le=255, description="HSV brightness of a lit lamp's pixel")
    min_saturation: int = Field(70, ge=0, le=255, description="saturation of a lit lamp's pixel (glare is white)")
    min_lit_fraction: float = Field(0.12, gt=0, le=1, description="share of a lamp's region that must be lit")
    dominance: float = Field(2.0, ge=1, description="the lit lamp's share must exceed every other lamp's this many times")
    confirm_frames: int = Field(2, ge=1, description="a new state counts after this many frames in a row")
    unknown_after_frames: int = Field(3, ge=1, description="this many unreadable frames in a row make the state unknown")
    controller_timeout_s: float = Field(5.0, gt=0, description="a controller state older than this is unknown")

    @model_validator(mode="after")
    def _lamps(self) -> SignalHeadConfig:
        if self.source == "image" and not any(lamp.color == "red" for lamp in self.lamps):
            raise ValueError("an image-read signal head needs lamps, one of them red")
        return self


class LaneConfig(_Model):
    id: Identifier
    polygon: list[Point] = Field(min_length=3)
    direction: tuple[Point, Point] = Field(description="an arrow (from, to) along the lane's allowed travel")
    allowed_classes: list[str] | None = Field(None, description="vehicle classes allowed in the lane; null = all")
    name: str | None = None


class GroundCalibration(_Model):
    """Four image points and where they lie on the road plane, in metres (for speeds)."""

    image_points: list[Point] = Field(min_length=4, max_length=4)
    ground_points_m: list[Point] = Field(min_length=4, max_length=4)


class SceneConfig(_Model):
    reference_size: tuple[int, int] = Field(description="width, height of the snapshot the scene was drawn on")
    zones: list[ZoneConfig] = Field(default_factory=list)
    lines: list[LineConfig] = Field(default_factory=list)
    signals: list[SignalHeadConfig] = Field(default_factory=list)
    lanes: list[LaneConfig] = Field(default_factory=list)
    calibration: GroundCalibration | None = None

    @field_validator("zones", "lines", "signals", "lanes")
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


HOURS_PATTERN = r"^([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-4]):[0-5]\d$"


class StoppingZoneRule(_Model):
    max_stop_seconds: float | None = Field(None, gt=0, description="this zone's limit (default: the rule's)")
    allowed_hours: list[Annotated[str, Field(pattern=HOURS_PATTERN)]] = Field(
        default_factory=list, description="local 'HH:MM-HH:MM' spans when stopping here is allowed (may wrap midnight)"
    )


class IllegalStoppingConfig(_Model):
    zones: list[Identifier] = Field(min_length=1, description="ids of no_stopping / no_parking zones")
    max_stop_seconds: float = Field(gt=0, description="stationary longer than this is a violation")
    vehicle_classes: list[str] = Field(default_factory=lambda: list(VEHICLE_CLASSES), min_length=1)
    still_tolerance: float = Field(0.25, gt=0, le=2, description="movement allowed, as a share of the box height")
    move_grace_seconds: float = Field(1.0, ge=0, description="moving for less than this does not end the stop")
    forget_after_seconds: float = Field(3.0, gt=0, description="a vehicle unseen this long has gone")
    zone_rules: dict[Identifier, StoppingZoneRule] = Field(
        default_factory=dict, description="per-zone limit and allowed hours, by zone id"
    )
    timezone: str = Field("Asia/Ho_Chi_Minh", description="the zone of allowed_hours")

    @model_validator(mode="after")
    def _zone_rules_for_listed_zones(self) -> IllegalStoppingConfig:
        for zone_id in self.zone_rules:
            if zone_id not in self.zones:
                raise ValueError(f"zone_rules.{zone_id}: not one of zones {self.zones}")
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"timezone: unknown time zone {self.timezone!r}") from None
        return self


class RedLightConfig(_Model):
    line: Identifier = Field(description="the stop line (scene.lines)")
    signal: Identifier = Field(description="the signal head controlling it (scene.signals)")
    direction: Literal["forward", "backward"] = Field("forward", description="controlled crossing direction of the line")
    vehicle_classes: list[str] = Field(default_factory=lambda: list(VEHICLE_CLASSES), min_length=1)
    grace_seconds: float = Field(0.0, ge=0, description="crossings this soon after the red began are forgiven")


class StopLineConfig(_Model):
    line: Identifier
    signal: Identifier
    zone: Identifier = Field(description="the area just beyond the stop line (scene.zones)")
    still_seconds: float = Field(1.0, gt=0, description="at rest in the zone this long while red")
    still_tolerance: float = Field(0.2, gt=0, le=2, description="movement allowed, as a share of the box height")
    vehicle_classes: list[str] = Field(default_factory=lambda: list(VEHICLE_CLASSES), min_length=1)


class WrongWayConfig(_Model):
    lanes: list[Identifier] = Field(min_length=1)
    min_distance: float = Field(0.08, gt=0, description="against the lane, as a share of the frame height")
    min_seconds: float = Field(1.0, gt=0)
    max_angle_deg: float = Field(50, gt=0, le=90, description="how far from straight against the lane still counts")
    vehicle_classes: list[str] = Field(default_factory=lambda: list(VEHICLE_CLASSES), min_length=1)
    riders: bool = Field(False, description="a tracked person seen on a motorcycle/bicycle counts as that vehicle")


class LaneRuleConfig(_Model):
    lanes: list[Identifier] = Field(min_length=1, description="lanes with allowed_classes")
    min_seconds: float = Field(1.0, gt=0)


class TurnConfig(_Model):
    entry: Identifier
    exit: Identifier
    entry_direction: Literal["forward", "backward", "any"] = "any"
    exit_direction: Literal["forward", "backward", "any"] = "any"


class ForbiddenTurnConfig(_Model):
    turns: list[TurnConfig] = Field(min_length=1)
    max_seconds: float = Field(15.0, gt=0, description="entry to exit within this time")
    vehicle_classes: list[str] = Field(default_factory=lambda: list(VEHICLE_CLASSES), min_length=1)


class SpeedingConfig(_Model):
    limit_kmh: float = Field(gt=0)
    tolerance_kmh: float = Field(5.0, ge=0)
    window_seconds: float = Field(1.0, gt=0, description="speed measured over this span of the track")
    min_seconds: float = Field(0.5, ge=0, description="over the limit this long")
    zone: Identifier | None = Field(None, description="measure only inside this zone")
    vehicle_classes: list[str] = Field(default_factory=lambda: list(VEHICLE_CLASSES), min_length=1)


class NoHelmetConfig(_Model):
    model: str = Field("helmet_yolo12m.onnx", description="head detector: With Helmet / Without Helmet")
    input_size: int = Field(160, ge=64, le=640, multiple_of=32, description="square input for rider crops")
    confidence: float = Field(0.35, gt=0, lt=1)
    checks_per_track: int = Field(5, ge=1, le=50, description="crops analysed per motorcycle track at most")
    check_interval_s: float = Field(0.4, gt=0)
    min_votes: int = Field(3, ge=1)
    min_share: float = Field(0.6, gt=0, le=1, description="share of votes 'without helmet' to decide")
    min_box_height: float = Field(40, gt=0, description="smaller motorcycles (pixels) are not checked")
    min_head_height: float = Field(18, gt=0, description="smaller heads (pixels) do not vote: too few pixels to tell")
    zone: Identifier | None = None


class PlateConfig(_Model):
    model: str = Field("license_plate_yolov8n.onnx")
    input_size: int = Field(320, ge=64, le=640, multiple_of=32)
    confidence: float = Field(0.3, gt=0, lt=1)


HoursRange = Annotated[str, Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-4]):[0-5]\d$")]


class StaticChangeConfig(_Model):
    """Class-agnostic "new static object" detection (edge/static_change.py)."""

    enabled: bool = True
    static_seconds: float = Field(2.0, gt=0, description="unchanged this long to count as a static object")
    min_area: float = Field(0.0004, ge=0, lt=1, description="smallest object, share of the frame")
    max_area: float = Field(0.08, gt=0, le=1, description="largest object, share of the frame")


class SidewalkEncroachmentConfig(_Model):
    zones: list[Identifier] = Field(min_length=1, description="ids of sidewalk zones")
    min_seconds: float = Field(60.0, gt=0, description="an object staying longer than this encroaches")
    active_hours: list[HoursRange] | None = Field(
        None, description='local time ranges "HH:MM-HH:MM" when the rule applies; null = always'
    )
    object_classes: list[str] = Field(default_factory=lambda: ["chair", "dining table", "umbrella", "bench"])
    vehicle_classes: list[str] = Field(default_factory=lambda: ["motorcycle", "car", "bicycle"])
    still_tolerance: float = Field(0.25, gt=0, le=2, description="vehicle movement allowed, share of box height")
    end_seconds: float = Field(30.0, gt=0, description="the zone free this long ends the incident")
    update_seconds: float = Field(60.0, gt=0, description="an update event this often while it lasts")
    forget_after_seconds: float = Field(3.0, gt=0, description="an object unseen this long has gone")
    static_change: StaticChangeConfig = Field(default_factory=StaticChangeConfig)


class LitteringConfig(_Model):
    zones: list[Identifier] = Field(min_length=1, description="ids of watched zones")
    left_seconds: float = Field(5.0, gt=0, description="the object still there this long after its owner left")
    static_seconds: float = Field(2.0, gt=0, description="lying still this long makes it an object")
    active_hours: list[HoursRange] | None = None
    object_classes: list[str] = Field(default_factory=lambda: ["bottle", "cup", "backpack", "handbag", "suitcase"])
    owner_classes: list[str] = Field(default_factory=lambda: ["person", "motorcycle", "bicycle", "car"])
    owner_radius: float = Field(0.6, gt=0, description="owner near the object: gap at most this x owner height")
    require_owner: bool = Field(True, description="ignore objects nobody was near when they appeared")
    forget_after_seconds: float = Field(2.0, gt=0, description="an object unseen (and not hidden) this long is gone")
    static_change: StaticChangeConfig = Field(default_factory=StaticChangeConfig)


class RulesConfig(_Model):
    illegal_stopping: IllegalStoppingConfig | None = None
    sidewalk_encroachment: SidewalkEncroachmentConfig | None = None
    littering: LitteringConfig | None = None
    red_light: RedLightConfig | None = None
    stop_line: StopLineConfig | None = None
    wrong_way: WrongWayConfig | None = None
    lane: LaneRuleConfig | None = None
    forbidden_turn: ForbiddenTurnConfig | None = None
    speeding: SpeedingConfig | None = None
    no_helmet: NoHelmetConfig | None = None
    plates: PlateConfig | None = Field(None, description="crop the plate into traffic events' evidence")


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


class MotionGatingConfig(_Model):
    """Skip detection while nothing moves (the previous detections carry over, so stationary
    objects stay tracked); see edge/motion.py."""

    enabled: bool = True
    min_changed_fraction: float = Field(
        0.0015, ge=0, le=1, description="share of the (downscaled) picture that must change to run the detector"
    )
    pixel_threshold: int = Field(20, ge=1, le=255, description="grey-level difference that counts as a change")
    max_skip_s: float = Field(2.0, gt=0, description="run the detector at least this often, motion or not")


class CameraConfig(_Model):
    camera: CameraInfo
    scene: SceneConfig
    rules: RulesConfig = Field(default_factory=RulesConfig)
    tracker: TrackerConfig = Field(default_factory=TrackerConfig)
    motion_gating: MotionGatingConfig = Field(default_factory=MotionGatingConfig)

    @field_validator("rules")
    @classmethod
    def _rules_use_known_zones(cls, rules: RulesConfig, info: ValidationInfo) -> RulesConfig:
        scene = info.data.get("scene")
        if scene is None:
            return rules
        known = {z.id for z in scene.zones}
        if rules.illegal_stopping is not None:
            for i, zone_id in enumerate(rules.illegal_stopping.zones):
                if zone_id not in known:
                    raise ValueError(
                        f"illegal_stopping.zones[{i}]: no zone {zone_id!r} in scene.zones (have: {sorted(known) or 'none'})"
                    )
        for name in ("sidewalk_encroachment", "littering"):
            urban = getattr(rules, name)
            for i, zone_id in enumerate(urban.zones if urban is not None else []):
                if zone_id not in known:
                    raise ValueError(
                        f"{name}.zones[{i}]: no zone {zone_id!r} in scene.zones (have: {sorted(known) or 'none'})"
                    )
        _check_traffic_refs(rules, scene)
        return rules


def _check_traffic_refs(rules: RulesConfig, scene: SceneConfig) -> None:
    """Every id a traffic rule names must exist in the scene (the error names the rule's key)."""
    have = {
        "lines": {x.id for x in scene.lines},
        "signals": {x.id for x in scene.signals},
        "zones": {x.id for x in scene.zones},
        "lanes": {x.id for x in scene.lanes},
    }
    refs: list[tuple[str, str, str]] = []  # (key path, id, scene list)
    for name in ("red_light", "stop_line"):
        cfg = getattr(rules, name)
        if cfg is not None:
            refs += [(f"{name}.line", cfg.line, "lines"), (f"{name}.signal", cfg.signal, "signals")]
    if rules.stop_line is not None:
        refs.append(("stop_line.zone", rules.stop_line.zone, "zones"))
    for name in ("wrong_way", "lane"):
        cfg = getattr(rules, name)
        if cfg is not None:
            refs += [(f"{name}.lanes[{i}]", lane, "lanes") for i, lane in enumerate(cfg.lanes)]
    if rules.forbidden_turn is not None:
        for i, turn in enumerate(rules.forbidden_turn.turns):
            refs += [(f"forbidden_turn.turns[{i}].entry", turn.entry, "lines")]
            refs += [(f"forbidden_turn.turns[{i}].exit", turn.exit, "lines")]
    for name in ("speeding", "no_helmet"):
        cfg = getattr(rules, name)
        if cfg is not None and cfg.zone is not None:
            refs.append((f"{name}.zone", cfg.zone, "zones"))
    for key, ref, kind in refs:
        if ref not in have[kind]:
            raise ValueError(f"{key}: no {kind[:-1]} {ref!r} in scene.{kind} (have: {sorted(have[kind]) or 'none'})")
    if rules.speeding is not None and scene.calibration is None:
        raise ValueError("speeding: the scene has no ground-plane calibration (scene.calibration)")
    if rules.lane is not None:
        lanes = {x.id: x for x in scene.lanes}
        for i, lane in enumerate(rules.lane.lanes):
            if lanes[lane].allowed_classes is None:
                raise ValueError(f"lane.lanes[{i}]: lane {lane!r} has no allowed_classes")


class DetectorConfig(_Model):
    model: str = Field(
        "yolo11n.onnx",
        description="a file under EDGE_DATA_DIR/weights or a path (*.onnx), or a name registered in "
        "models/registry.yaml or models/variants.yaml (e.g. yolo11n-384x640-int8, from EDGE_MODEL_CACHE)",
    )
    input_size: tuple[int, int] | None = Field(
        None, description="height, width; null = long side at long_side. A static-input model uses its own"
    )
    long_side: int = Field(640, ge=64, le=2048, multiple_of=32)
    confidence: float = Field(0.25, gt=0, lt=1)
    iou: float = Field(0.45, gt=0, lt=1)
    providers: list[str] | None = Field(
        None,
        min_length=1,
        description="ONNX Runtime execution providers, best first; those this onnxruntime build lacks are skipped. "
        "null = TensorRT, CUDA, OpenVINO, CPU",
    )
    threads: int = Field(1, ge=1, le=64, description="ONNX Runtime intra-op threads (1 per worker uses cores best)")

    @field_validator("model")
    @classmethod
    def _known_model(cls, model: str) -> str:
        import models

        models.check_model_name(model)
        return model

    @field_validator("providers")
    @classmethod
    def _known_providers(cls, providers: list[str] | None) -> list[str] | None:
        from edge.detector import KNOWN_PROVIDERS

        for i, name in enumerate(providers or []):
            if name not in KNOWN_PROVIDERS:
                raise ValueError(f"[{i}]: unknown execution provider {name!r} (known: {', '.join(KNOWN_PROVIDERS)})")
        return providers


class MqttConfig(_Model):
    url: str = Field("mqtt://127.0.0.1:1883", pattern=r"^mqtts?://[^/:]+(:\d+)?/?$")
    topic_prefix: str = Field(DEFAULT_PREFIX, pattern=r"^[a-z0-9_-]+$")
    client_id: str | None = None
    username: str | None = Field(None, description="default: the node id")
    password: str | None = Field(None, description="better: password_file or env EDGE_MQTT_PASSWORD")
    password_file: ConfigPath | None = Field(None, description="a file holding the broker password (mode 600)")
    ca_file: ConfigPath | None = Field(None, description="CA certificate for mqtts:// (default: system CAs)")
    keepalive_s: int = Field(30, ge=5, le=3600)

    def secret(self) -> str | None:
        """The broker password: env EDGE_MQTT_PASSWORD, else password_file, else password."""
        if os.environ.get("EDGE_MQTT_PASSWORD"):
            return os.environ["EDGE_MQTT_PASSWORD"]
        if self.password_file is not None:
            try:
                return self.password_file.read_text(encoding="utf-8").strip()
            except OSError as e:
                raise ConfigError(f"mqtt.password_file: cannot read {self.password_file}: {e}") from None
        return self.password


class NodeCamera(_Model):
    config: ConfigPath = Field(description="camera config file, relative to this node config")
    source: str | None = Field(None, description="overrides the camera config's source")
    id: Identifier | None = Field(None, description="overrides the camera id (one config for several alike cameras)")


class InferenceConfig(_Model):
    workers: int = Field(0, ge=0, le=256, description="inference workers (one model session each); 0 = one per core")
    max_batch: int = Field(
        1, ge=1, le=64, description="frames of several cameras per model run; >1 pays on a GPU, not on a CPU"
    )


class NodeInfo(_Model):
    id: Identifier
    state_dir: ConfigPath | None = Field(None, description="outbox and evidence; default var/edge/<id>")


class ClipsConfig(_Model):
    """Event clips cut from each camera's buffer of compressed packets (no re-encoding)."""

    enabled: bool = True
    pre_seconds: float = Field(5.0, ge=0, le=60, description="footage before the event (at least; from a keyframe)")
    post_seconds: float = Field(5.0, ge=0, le=60, description="footage after the event; the event waits for it")
    max_buffer_mb: float = Field(64.0, gt=0, le=4096, description="hard cap on one camera's packet buffer")


class UploadConfig(_Model):
    """HTTP upload of evidence files to central (the edge connects: works behind NAT)."""

    url: str = Field(pattern=r"^https?://[^/]+", description="central's base URL, e.g. https://central.example")
    token: str = Field(min_length=16, description="this node's upload secret (central: uploads.nodes.<node id>)")
    timeout_s: float = Field(60.0, gt=0)
    retry_max_s: float = Field(60.0, gt=0, description="longest wait between attempts (backoff doubles up to it)")


class RetentionConfig(_Model):
    quota_mb: float = Field(20480.0, gt=0, description="disk the node's evidence may use; oldest delivered goes first")
    check_interval_s: float = Field(60.0, gt=0)


class EvidenceWorkerConfig(_Model):
    """The evidence worker: JPEGs, clips, evidence files and outbox writes, off the camera threads."""

    threads: int = Field(1, ge=1, le=64, description="evidence threads shared by all cameras (one camera: one thread)")
    max_queued_frames: int = Field(
        16, ge=1, le=1024,
        description="frames waiting per thread; beyond it an event goes without its snapshots (counted, logged)",
    )


class RestartConfig(_Model):
    """A crashed camera worker is restarted after a backoff (doubling); it is `failed` after too many in a row."""

    initial_s: float = Field(1.0, gt=0)
    max_s: float = Field(60.0, gt=0)
    stable_s: float = Field(60.0, gt=0, description="a run this long resets the backoff and the crash count")
    max_consecutive: int | None = Field(10, ge=0, description="crashes in a row before giving up; null = never")


class MetricsConfig(_Model):
    """Prometheus /metrics of the node (off without this key)."""

    port: int = Field(9108, ge=0, le=65535, description="0: any free port")
    bind: str = Field("127.0.0.1", min_length=1, description="address to listen on; loopback by default")


class NodeConfig(_Model):
    node: NodeInfo
    mqtt: MqttConfig = Field(default_factory=MqttConfig)
    detector: DetectorConfig = Field(default_factory=DetectorConfig)
    inference: InferenceConfig = Field(default_factory=InferenceConfig)
    cameras: list[NodeCamera] = Field(min_length=1)
    status_interval_s: float = Field(10.0, gt=0)
    platform: Literal["cpu", "vaapi", "jetson"] = "cpu"
    decoder_threads: int = Field(
        1, ge=0, le=64, description="software decode threads per camera (0: libav decides); 1 suits many cameras"
    )
    clips: ClipsConfig = Field(default_factory=ClipsConfig)
    upload: UploadConfig | None = Field(None, description="without it, clips stay on the node")
    retention: RetentionConfig = Field(default_factory=RetentionConfig)
    evidence: EvidenceWorkerConfig = Field(default_factory=EvidenceWorkerConfig)
    restart: RestartConfig = Field(default_factory=RestartConfig)
    metrics: MetricsConfig | None = Field(None, description="Prometheus endpoint; off by default")


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
    for key in ("password_file", "ca_file"):
        value = getattr(node.mqtt, key)
        if value is not None and not value.is_absolute():
            setattr(node.mqtt, key, (path.parent / value).resolve())
    cameras: list[CameraConfig] = []
    seen: set[str] = set()
    for i, entry in enumerate(node.cameras):
        cam_path = entry.config if entry.config.is_absolute() else path.parent / entry.config
        try:
            cam = load_camera_config(cam_path)
        except ConfigError as e:
            raise ConfigError(f"{path}: cameras[{i}].config: {cam_path} is not usable:\n{e}") from None
        overrides = {k: v for k, v in (("source", entry.source), ("id", entry.id)) if v}
        if overrides:
            cam = cam.model_copy(update={"camera": cam.camera.model_copy(update=overrides)})
        if not cam.camera.source:
            raise ConfigError(f"{path}: cameras[{i}].source: no source here nor in {cam_path}")
        if cam.camera.id in seen:
            raise ConfigError(f"{path}: cameras[{i}]: camera id {cam.camera.id!r} appears twice")
        seen.add(cam.camera.id)
        cameras.append(cam)
    return node, cameras
