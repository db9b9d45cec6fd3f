"""Edge configuration: the node (broker, detector, its cameras) and each camera's scene and rules.

Validated at start; `contract.configfile.load_config` turns a problem into one line per key path.
"""

from __future__ import annotations

import os
import re
import socket
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, Field, ValidationInfo, create_model, field_validator

from contract.configfile import ConfigError, ConfigPath, load_config, secret_file_problem
from contract.events import Location
from contract.mqtt import MqttSettings, Will, resolve_password
from contract.topics import DEFAULT_PREFIX
from edge.data import video_path, weights_path
from edge.scene import (  # noqa: F401  (re-exported: the scene models have always been importable from here)
    VEHICLE_CLASSES,
    GroundCalibration,
    Identifier,
    LampConfig,
    LaneConfig,
    LineConfig,
    Point,
    SceneConfig,
    SignalHeadConfig,
    ZoneConfig,
    _Model,
)


class PlateConfig(_Model):
    model: str = Field("license_plate_yolov8n.onnx")
    input_size: int = Field(320, ge=64, le=640, multiple_of=32)
    confidence: float = Field(0.3, gt=0, lt=1)


def _rules_model() -> type[BaseModel]:
    """`rules:` of a camera config: one optional key per registered rule plug-in (its own config
    model), plus the plate stage. Built from the registry, so a new rule needs no entry here."""
    from edge.rules.registry import rule_specs

    fields: dict[str, Any] = {
        key: (spec.config | None, Field(None, description=spec.description)) for key, spec in rule_specs().items()
    }
    fields["plates"] = (PlateConfig | None, Field(None, description="crop the plate into traffic events' evidence"))
    return create_model("RulesConfig", __base__=_Model, **fields)


if TYPE_CHECKING:

    class RulesConfig(_Model):
        """For the type checker: the fields are the registered rules' keys (made at run time)."""

        def __getattr__(self, name: str) -> Any: ...

else:
    RulesConfig = _rules_model()


class StationaryConfig(_Model):
    """Stationary objects confirmed from repeated low-confidence detections at one place (a parked
    scooter the tracker never takes); see edge/stationary.py."""

    enabled: bool = True
    min_confidence: float = Field(
        0.25, gt=0, lt=1, description="lowest detection that counts (the detector's own confidence floor applies first)"
    )
    window_s: float = Field(5.0, gt=0, description="seconds over which the hit share is measured")
    min_hit_share: float = Field(0.3, gt=0, le=1, description="share of the window's analysed frames with a hit there")
    forget_s: float = Field(5.0, gt=0, description="a place without a hit this long is free again")
    classes: list[str] = Field(default_factory=lambda: sorted(VEHICLE_CLASSES), min_length=1)
    closer_look: bool = Field(True, description="confirm on an upscaled crop before promotion (one detector run)")


class TrackerConfig(_Model):
    lost_track_seconds: float = Field(2.0, gt=0)
    activation_confidence: float = Field(0.35, ge=0, le=1)
    high_confidence: float = Field(0.5, ge=0, le=1)
    stationary: StationaryConfig = Field(default_factory=StationaryConfig)


class CameraInfo(_Model):
    id: Identifier
    name: str | None = None
    source: str | None = Field(None, description="rtsp:// URL or a video file (name under EDGE_DATA_DIR/videos)")
    # Two streams (Frigate's detect / record roles): `source` is then the camera's sub-stream, decoded
    # and analysed; the main stream is only parsed, for clips and the events' snapshots (edge/streams.py).
    record_source: str | None = Field(
        None, description="rtsp:// URL of the main stream for clips and snapshots; default: source (one stream)"
    )
    analysis_fps: float = Field(5.0, gt=0, le=60)
    location: Location = Field(default_factory=Location)
    timezone: str = Field("Asia/Ho_Chi_Minh", description="the camera's local time zone (rules' local hours, stamps)")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value

    @field_validator("record_source")
    @classmethod
    def _record_stream(cls, value: str | None, info: ValidationInfo) -> str | None:
        # The record stream is a camera's main stream: only live cameras have two streams (a file
        # has no second rendition timed with the first).
        if value is not None and not value.lower().startswith(("rtsp://", "rtsps://")):
            raise ValueError(f"must be an rtsp:// or rtsps:// URL (the camera's main stream), got {value!r}")
        source = info.data.get("source")
        if value is not None and source and not source.lower().startswith(("rtsp://", "rtsps://")):
            raise ValueError("needs source to be the camera's rtsp:// sub-stream, not a file")
        return value

    @property
    def detect_source(self) -> str | None:
        """The stream analysed (the sub-stream of a two-stream camera)."""
        return self.source

    @property
    def recorded_source(self) -> str | None:
        """The stream clips and snapshots come from (the main stream; `source` for a one-stream camera)."""
        return self.record_source or self.source

    @field_validator("location")
    @classmethod
    def _printable_location(cls, value: Location) -> Location:
        # These go into every event of the camera: a NUL (or a stray control character from a
        # copy-paste) would make each one poison at central (issue 18, defect 7).
        for key in ("province", "ward", "district", "address"):
            text = getattr(value, key)
            bad = re.search(r"[\x00-\x1f\x7f\ud800-\udfff]", text) if text else None
            if bad:
                raise ValueError(f"{key}: control character U+{ord(bad.group()):04X} at character {bad.start()}")
        return value


class MotionGatingConfig(_Model):
    """Skip detection while nothing moves (the previous detections carry over, so stationary
    objects stay tracked); see edge/motion.py."""

    enabled: bool = True
    min_changed_fraction: float = Field(
        0.0015, ge=0, le=1, description="share of the (downscaled) picture that must change to run the detector"
    )
    pixel_threshold: int = Field(20, ge=1, le=255, description="grey-level difference that counts as a change")
    max_skip_s: float = Field(2.0, gt=0, description="run the detector at least this often, motion or not")


class RegionsPassConfig(_Model):
    """A second detector pass over the scene's zones and lines in tiles at the camera's native (or
    an upscaled) resolution, merged with the full-frame pass: small objects the downscaled frame
    loses (distant riders, pillion passengers). One detector run per tile; see edge/regions.py."""

    enabled: bool = False
    scale: float = Field(
        1.0, ge=0.5, le=4, description="detector input pixels per frame pixel in a tile (1 native, 2 twice upscaled)"
    )
    overlap: float = Field(0.2, ge=0, lt=0.5, description="share of a tile shared with its neighbour")
    pad: float = Field(0.05, ge=0, le=0.5, description="margin around each zone and line, share of the frame height")
    max_tiles: int = Field(
        6, ge=1, le=64, description="at most this many tiles a frame (tiles grow to cover the regions)"
    )
    every_n_frames: int = Field(1, ge=1, le=100, description="run the pass on every n-th detector run")
    regions: list[Identifier] | None = Field(None, description="ids of the zones and lines to cover; null = all")


# "auto" (the default): the fastest engine the agreement harness kept that this machine runs
# (edge/detect/choice.py, models/backends.yaml); a config may pin any registered backend instead.
AUTO_BACKEND = "auto"
Precision = Literal["auto", "fp32", "bf16", "int8-decode", "int8-head", "int8-ac"]


def check_backend(backend: str) -> str:
    from edge.detect.base import backends

    if backend != AUTO_BACKEND and backend not in backends():
        raise ValueError(
            f"unknown detector backend {backend!r} (have: {', '.join([AUTO_BACKEND, *sorted(backends())])})"
        )
    return backend


class CameraDetectorConfig(_Model):
    """`detector:` of a camera config: the camera's own choice of detector model (and its input),
    over the node's `detector:`; what it leaves out is the node's. The node's inference pool holds
    one set of sessions per model the cameras actually use."""

    model: str | None = Field(
        None,
        description="a name registered in models/registry.yaml or models/variants.yaml (e.g. yolov8n), or "
        "a file under EDGE_DATA_DIR/weights or a path (*.onnx); null = the node's",
    )
    input_size: tuple[int, int] | None = Field(None, description="height, width; null = the node's")
    long_side: int | None = Field(None, ge=64, le=2048, multiple_of=32, description="null = the node's")
    confidence: float | None = Field(None, gt=0, lt=1, description="null = the node's")
    backend: str | None = Field(None, description="pin this camera's detector backend (auto, onnxruntime, openvino)")
    precision: Precision | None = Field(None, description="pin this camera's inference precision; null = the node's")

    @field_validator("model")
    @classmethod
    def _known_model(cls, model: str | None) -> str | None:
        import models

        if model is not None:
            models.check_model_name(model)
        return model

    @field_validator("backend")
    @classmethod
    def _known_backend(cls, backend: str | None) -> str | None:
        return None if backend is None else check_backend(backend)


class DetectionRoiConfig(_Model):
    """Detect on the bounding box of the scene's zones, lines and lamps plus a margin, when that is
    clearly smaller than the frame (edge/roi.py). Off by default: not yet shown not to lose events
    on every sample camera. Ignored while `regions_pass` is on (that pass tiles the full frame)."""

    enabled: bool = False
    margin: float = Field(0.10, ge=0, le=0.5, description="share of the frame's width/height added on each side")
    max_area_fraction: float = Field(0.7, gt=0, le=1, description="use the crop only when it is at most this share of the frame")


class CameraConfig(_Model):
    camera: CameraInfo
    scene: SceneConfig
    rules: RulesConfig = Field(default_factory=RulesConfig)
    tracker: TrackerConfig = Field(default_factory=TrackerConfig)
    motion_gating: MotionGatingConfig = Field(default_factory=MotionGatingConfig)
    detector: CameraDetectorConfig | None = Field(None, description="this camera's detector model; null = the node's")
    regions_pass: RegionsPassConfig = Field(default_factory=RegionsPassConfig)
    detection_roi: DetectionRoiConfig = Field(default_factory=DetectionRoiConfig)

    @field_validator("regions_pass")
    @classmethod
    def _regions_in_scene(cls, value: RegionsPassConfig, info: ValidationInfo) -> RegionsPassConfig:
        scene = info.data.get("scene")
        if scene is not None and value.regions is not None:
            known = {z.id for z in scene.zones} | {ln.id for ln in scene.lines}
            unknown = [r for r in value.regions if r not in known]
            if unknown:
                raise ValueError(f"regions: {', '.join(map(repr, unknown))} is no zone or line of the scene")
        return value

    @field_validator("rules")
    @classmethod
    def _rules_use_known_scene(cls, rules: BaseModel, info: ValidationInfo) -> BaseModel:
        scene = info.data.get("scene")
        if scene is not None:
            from edge.rules.registry import check_rules

            check_rules(rules, scene)
        return rules


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
    backend: str = Field(
        AUTO_BACKEND,
        description="detector backend plug-in (edge/detect/backends/), or auto: the fastest engine kept by the "
        "model-agreement harness (models/backends.yaml) that this machine runs, else onnxruntime",
    )
    precision: Precision = Field(
        "auto",
        description="inference precision: onnxruntime runs the model's own (fp32/auto); openvino runs fp32, "
        "bf16 on CPUs with AMX / AVX-512 BF16 (auto: bf16 where the CPU has it), or an INT8 IR built by "
        "`python -m models build-openvino-int8` (int8-decode, int8-head, int8-ac)",
    )

    @field_validator("backend")
    @classmethod
    def _known_backend(cls, backend: str) -> str:
        return check_backend(backend)

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


def camera_detector(node: DetectorConfig, camera: CameraConfig) -> DetectorConfig:
    """The detector `camera` runs: the node's `detector:` with what the camera's own `detector:` sets."""
    if camera.detector is None:
        return node
    return node.model_copy(update=camera.detector.model_dump(exclude_none=True))


class MqttConfig(_Model):
    url: str = Field("mqtt://127.0.0.1:1883", pattern=r"^mqtts?://[^/:]+(:\d+)?/?$")
    failover_urls: list[Annotated[str, Field(pattern=r"^mqtts?://[^/:]+(:\d+)?/?$")]] = Field(
        default_factory=list,
        description="the broker cluster's other nodes: when one goes away the next is tried (same scheme as url)",
    )
    protocol: Literal["5", "3.1.1"] = Field("5", description="3.1.1 for brokers without MQTT 5 (NATS, RabbitMQ)")

    @field_validator("failover_urls")
    @classmethod
    def _same_scheme(cls, urls: list[str], info: ValidationInfo) -> list[str]:
        main = str(info.data.get("url", ""))
        for u in urls:
            if u.split(":", 1)[0] != main.split(":", 1)[0]:
                raise ValueError(f"{u!r}: every broker URL uses the scheme of url ({main!r})")
        return urls
    topic_prefix: str = Field(DEFAULT_PREFIX, pattern=r"^[a-z0-9_-]+$")
    client_id: str | None = None
    username: str | None = Field(None, description="default: the node id")
    password: str | None = Field(None, description="better: password_file or env EDGE_MQTT_PASSWORD")
    password_file: ConfigPath | None = Field(None, description="a file holding the broker password (mode 600)")
    ca_file: ConfigPath | None = Field(None, description="CA certificate for mqtts:// (default: system CAs)")
    keepalive_s: int = Field(30, ge=5, le=3600)
    # 30 s: a working broker answers in well under 2 s (docs/benchmarks.md, publish -> stored, which
    # bounds publish -> PUBACK from above: p99 105-370 ms, max 602 ms through the 3-node RabbitMQ
    # cluster at steady load; max 1.7 s through Mosquitto in a x10 rush; the slowest event ~1.1 s,
    # reconnect included, while a cluster node was killed), so 30 s is over 15x the worst wait
    # measured and does not fire on a slow but working broker; and it is the default keep-alive:
    # paho drops a connection that went silent after about two keep-alive periods (measured through
    # tests/integration/test_edge_puback_timeout.py's proxy: 9 s at keep-alive 5 s) and never one
    # that still answers pings, so a node answering pings but not publishes costs no more than a
    # dead one. A message's clock starts only once the one before it is answered: a slow uplink
    # sending large evidence is not a stuck broker.
    puback_timeout_s: float = Field(
        30.0,
        ge=1,
        le=3600,
        description="seconds the oldest unanswered message may wait for its PUBACK before the connection is "
        "dropped and the next broker URL tried (the messages stay in the outbox and are sent again)",
    )

    def secret(self) -> str | None:
        """The broker password: env EDGE_MQTT_PASSWORD, else password_file, else password."""
        return resolve_password("EDGE_MQTT_PASSWORD", self.password_file, self.password, key="mqtt.password_file")

    def client_settings(self, client_id: str, node_id: str, will: Will | None = None) -> MqttSettings:
        """Settings for one of the node's MQTT clients. With a password and no `username` the node
        logs in as its node id: the broker's ACL lets it publish under that id only."""
        secret = self.secret()
        return MqttSettings(
            self.url,
            client_id,
            username=self.username or (node_id if secret else None),
            password=secret,
            ca_file=self.ca_file,
            keepalive_s=self.keepalive_s,
            will=will,
            failover_urls=tuple(self.failover_urls),
            protocol=self.protocol,
        )


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
    state_dir: ConfigPath | None = Field(None, description="outbox and evidence; default EDGE_STATE_DIR/<id>")


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
        16,
        ge=1,
        le=1024,
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
    """The node's MQTT client id: `mqtt.client_id`, else — on a broker with credentials, whose
    generated config binds each account to its own name as client id (central.broker_security) —
    the node id; else one unique to this host and process."""
    if node.mqtt.client_id:
        return node.mqtt.client_id
    if node.mqtt.secret():
        return node.node.id
    return f"edge-{node.node.id}-{socket.gethostname()}-{os.getpid()}"


def load_camera_config(path: Path | str) -> CameraConfig:
    camera = load_config(path, CameraConfig)
    ref = camera.scene.reference_image
    if ref is not None and not ref.is_absolute():
        camera.scene.reference_image = (Path(path).parent / ref).resolve()
    return camera


def reference_image_problem(camera: CameraConfig) -> str | None:
    """Why `scene.reference_image` cannot serve as the camera's reference view, or None."""
    ref = camera.scene.reference_image
    if ref is None:
        return None
    if not ref.is_file():
        return f"picture not found: {ref}"
    import cv2

    image = cv2.imread(str(ref), cv2.IMREAD_COLOR)
    if image is None:
        return f"{ref} is not a picture OpenCV can read (JPEG or PNG)"
    h, w = image.shape[:2]
    if (w, h) != tuple(camera.scene.reference_size):
        rw, rh = camera.scene.reference_size
        return f"{ref} is {w}x{h}, but scene.reference_size is {rw}x{rh}: the scene was drawn on another picture"
    return None


def load_node_config(path: Path | str) -> tuple[NodeConfig, list[CameraConfig]]:
    """The node config and its cameras' configs (each validated, errors naming its own file)."""
    path = Path(path)
    node = load_config(path, NodeConfig)
    if node.node.state_dir is not None and not node.node.state_dir.is_absolute():
        node.node.state_dir = (path.parent / node.node.state_dir).resolve()
    for key in ("password_file", "ca_file"):
        value = getattr(node.mqtt, key)
        if value is not None and not value.is_absolute():
            value = (path.parent / value).resolve()
            setattr(node.mqtt, key, value)
        if value is not None:
            # Read now (bounded, regular files only), so check-config fails where `edge run` would.
            secret_file_problem(path, f"mqtt.{key}", value)
    cameras: list[CameraConfig] = []
    seen: set[str] = set()
    for i, entry in enumerate(node.cameras):
        cam_path = entry.config if entry.config.is_absolute() else path.parent / entry.config
        try:
            cam = load_camera_config(cam_path)
        except ConfigError as e:
            raise ConfigError(f"{path}: cameras[{i}].config: {cam_path} is not usable:\n{e}") from None
        overrides: dict[str, Any] = {k: v for k, v in (("source", entry.source), ("id", entry.id)) if v}
        if entry.source:
            overrides["record_source"] = None  # the node's source is both streams: never another camera's main
        if overrides:
            cam = cam.model_copy(update={"camera": cam.camera.model_copy(update=overrides)})
        if not cam.camera.source:
            raise ConfigError(f"{path}: cameras[{i}].source: no source here nor in {cam_path}")
        if cam.camera.id in seen:
            raise ConfigError(f"{path}: cameras[{i}]: camera id {cam.camera.id!r} appears twice")
        seen.add(cam.camera.id)
        cameras.append(cam)
    return node, cameras


# --------------------------------------------------------------------------------------------
# What a run would fail on that validation cannot see: files and URLs (`check-config`)


def is_camera_config(data: Any) -> bool:
    """A parsed YAML file that is a camera config (top-level `camera`/`scene`, no `node`/`cameras`)."""
    return isinstance(data, dict) and bool({"camera", "scene"} & data.keys()) and not {"node", "cameras"} & data.keys()


def source_problem(source: str) -> str | None:
    """Why a camera source cannot be opened as a run opens it (`edge.sources.open_source`), or None:
    an rtsp(s):// URL must be well-formed (it is not dialled), anything else must be a video file."""
    if source.lower().startswith(("rtsp://", "rtsps://")):
        from edge.sources import redact_url

        parts = urlsplit(source)
        shown = redact_url(source)  # never print a password
        if any(c.isspace() for c in source):
            return f"malformed URL {shown!r}: contains white space"
        try:
            parts.port  # noqa: B018  (raises on a port that is not a number in range)
        except ValueError:
            return f"malformed URL {shown!r}: the port is not a number from 0 to 65535"
        if not parts.hostname:
            return f"malformed URL {shown!r}: no host"
        return None
    if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", source) and not source.startswith("file://"):
        return f"{source!r} is neither an rtsp:// or rtsps:// URL nor a video file"
    path = video_path(source[len("file://") :] if source.startswith("file://") else source)
    return None if path.is_file() else f"video file not found: {path} (a name is looked up under EDGE_DATA_DIR/videos)"


def _weights_problem(model: str) -> str | None:
    path = weights_path(model)
    return None if path.is_file() else f"model file not found: {path} (EDGE_DATA_DIR/weights)"


def _model_problem(model: str) -> str | None:
    """Why a detector model a config names cannot be loaded (resolved as a run resolves it), or None."""
    import models

    try:
        path = models.resolve(model)
    except (FileNotFoundError, ValueError) as e:
        return str(e)
    return None if path.is_file() else f"model file not found: {path} (EDGE_DATA_DIR/weights)"


def camera_run_problems(path: Path | str, camera: CameraConfig, *, source_key: str | None = None) -> list[str]:
    """`file: key: problem` lines for what running `camera` would fail on: its source (when it has one:
    a node may give it; `source_key` names where a node's override came from) and its rules' model files."""
    problems: list[str] = []
    if camera.camera.source and source_key is None:
        why = source_problem(camera.camera.source)
        if why:
            problems.append(f"{path}: camera.source: {why}")
    if camera.camera.record_source and source_key is None:
        why = source_problem(camera.camera.record_source)
        if why:
            problems.append(f"{path}: camera.record_source: {why}")
    why = reference_image_problem(camera)
    if why:
        problems.append(f"{path}: scene.reference_image: {why}")
    if camera.detector is not None and camera.detector.model is not None:
        why = _model_problem(camera.detector.model)
        if why:
            problems.append(f"{path}: detector.model: {why}")
    for key in ("no_helmet", "plates"):
        rule = getattr(camera.rules, key, None)
        why = _weights_problem(rule.model) if rule is not None else None
        if why:
            problems.append(f"{path}: rules.{key}.model: {why}")
    return problems


def node_run_problems(path: Path | str, node: NodeConfig, cameras: list[CameraConfig]) -> list[str]:
    """The same for a node config: its detector model (resolved as a run resolves it) and each camera."""
    import models

    path = Path(path)
    problems: list[str] = []
    try:
        model = models.resolve(node.detector.model)
        if not model.is_file():
            problems.append(f"{path}: detector.model: model file not found: {model} (EDGE_DATA_DIR/weights)")
    except (FileNotFoundError, ValueError) as e:
        problems.append(f"{path}: detector.model: {e}")
    for i, (entry, cam) in enumerate(zip(node.cameras, cameras, strict=True)):
        cam_path = entry.config if entry.config.is_absolute() else path.parent / entry.config
        if entry.source:
            why = source_problem(entry.source)
            if why:
                problems.append(f"{path}: cameras[{i}].source: {why}")
        problems += camera_run_problems(cam_path, cam, source_key=f"cameras[{i}].source" if entry.source else None)
    return problems


def __getattr__(name: str) -> Any:
    """Rule config models (`edge.config.RedLightConfig`, ...) live in their rule modules now;
    older imports from here keep working."""
    from edge.rules.registry import rule_specs

    for spec in rule_specs().values():
        module = __import__(spec.module, fromlist=[name])
        if hasattr(module, name):
            return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
