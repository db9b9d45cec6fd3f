"""Central's config: one YAML file (every key has a default) plus two env overrides.

Relative state paths (the SQLite file, the evidence dir) are relative to CENTRAL_STATE_DIR
(contract.paths.central_state_dir: `var/central` in a checkout, else ~/.local/state/ioc-central);
relative config files (routing table, MQTT files) to the folder that holds `configs/` (the checkout,
or site-packages when installed), so the service behaves the same whatever directory it is started
from.
"""

from __future__ import annotations

import logging
import os
import socket
import warnings
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from contract.configfile import ConfigError, ConfigPath, format_validation_error, load_config, secret_file_problem
from contract.events import ViolationType
from contract.mqtt import MqttSettings, resolve_password
from contract.paths import central_state_dir, packaged_config
from contract.topics import parse_mqtt_url

# Where `configs/` is: the checkout, or site-packages when installed (the shipped files are package data).
REPO_ROOT = packaged_config().parent
DEFAULT_CONFIG_PATH = packaged_config("central.yaml")
ENV_DATABASE_URL = "CENTRAL_DATABASE_URL"
ENV_MQTT_URL = "CENTRAL_MQTT_URL"
ENV_MQTT_PASSWORD = "CENTRAL_MQTT_PASSWORD"

_TOPIC_SAFE = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"
log = logging.getLogger("central.config")
RetentionCategory = Literal["traffic", "urban_order", "sanitation"]
_DEFAULT_RETENTION_DAYS: dict[RetentionCategory, float] = {"traffic": 365.0, "urban_order": 180.0, "sanitation": 90.0}


def config_relative(value: Path, info: ValidationInfo, key: str) -> Path:
    """A relative file named in a config is relative to that config file's folder. Configs
    written before 0.2 named files relative to the checkout (`configs/routing.yaml`): such a path
    still works when only that reading finds the file, with a deprecation warning naming the key.
    Without a config file (defaults, code), relative to the folder holding `configs/`."""
    if value.is_absolute():
        return value
    config_file = (info.context or {}).get("config_file")
    if config_file is None:
        return REPO_ROOT / value
    here = Path(config_file).parent / value
    legacy = REPO_ROOT / value
    if not here.exists() and legacy.exists():
        warnings.warn(
            f"{config_file}: {key}: {str(value)!r} is read relative to the checkout as before 0.2; "
            f"relative paths are now relative to the config file's folder: write {str(legacy)!r} "
            "or a path from the config's folder",
            DeprecationWarning,
            stacklevel=2,
        )
        log.warning("deprecated relative path in config", extra={"fields": {"file": str(config_file), "key": key}})
        return legacy
    return here


def default_client_id() -> str:
    return f"central-{socket.gethostname()}-{os.getpid()}"


class _Section(BaseModel):
    # validate_default: the defaults go through the same path normalisation as file values.
    model_config = ConfigDict(extra="forbid", validate_default=True)


class MqttConfig(_Section):
    url: str = "mqtt://127.0.0.1:1883"
    topic_prefix: str = Field(default="ioc", pattern=_TOPIC_SAFE)
    share_group: str | None = Field(default="central", pattern=_TOPIC_SAFE)
    # None -> "central-<hostname>-<pid>": a fresh MQTT session per process. Set a stable id per
    # ingester in production so a restarted ingester resumes its session and its queued messages.
    client_id: str | None = Field(default=None, min_length=1, max_length=128)
    session_expiry_s: int = Field(default=3600, ge=0, le=4294967295)
    username: str | None = None
    password: str | None = Field(default=None, description="better: password_file or env CENTRAL_MQTT_PASSWORD")
    password_file: ConfigPath | None = Field(default=None, description="a file holding the broker password (mode 600)")
    ca_file: ConfigPath | None = Field(default=None, description="CA certificate for mqtts:// (default: system CAs)")
    keepalive_s: int = Field(default=30, ge=5, le=3600)
    protocol: Literal["5", "3.1.1"] = Field(
        default="5", description="3.1.1 for brokers without MQTT 5 (NATS, RabbitMQ: then share_group must be null)"
    )
    failover_urls: list[str] = Field(
        default_factory=list,
        description="a broker cluster's other nodes: tried in turn when the connected one goes away (same scheme)",
    )

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        parse_mqtt_url(value)  # ValueError -> pydantic error naming the key
        return value

    @field_validator("failover_urls")
    @classmethod
    def _failover(cls, urls: list[str], info: ValidationInfo) -> list[str]:
        main = str(info.data.get("url", ""))
        for u in urls:
            parse_mqtt_url(u)
            if u.split(":", 1)[0] != main.split(":", 1)[0]:
                raise ValueError(f"{u!r}: every broker URL uses the scheme of url ({main!r})")
        return urls

    @field_validator("password_file", "ca_file")
    @classmethod
    def _mqtt_file(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        return None if value is None else config_relative(value, info, f"mqtt.{info.field_name}")

    def secret(self) -> str | None:
        """The broker password: env CENTRAL_MQTT_PASSWORD, else password_file, else password."""
        return resolve_password(ENV_MQTT_PASSWORD, self.password_file, self.password, key="mqtt.password_file")

    def client_settings(self, client_id: str, **options: Any) -> MqttSettings:
        """Settings for one of central's MQTT clients; `options`: other MqttSettings fields."""
        return MqttSettings(
            self.url,
            client_id,
            username=self.username,
            password=self.secret(),
            ca_file=self.ca_file,
            keepalive_s=self.keepalive_s,
            protocol=self.protocol,
            failover_urls=tuple(self.failover_urls),
            **options,
        )

    @property
    def effective_client_id(self) -> str:
        return self.client_id or default_client_id()

    @property
    def stable_client_id(self) -> bool:
        """Whether the session is meant to be resumed by a later process."""
        return self.client_id is not None


class JetStreamConfig(_Section):
    """Events from a NATS JetStream broker cluster (central/ingest_jetstream.py): every ingester
    pulls from one durable consumer of the replicated stream and acks after the commit. Node
    status and health still come over MQTT (`mqtt`, pointed at the cluster's MQTT port)."""

    servers: list[Annotated[str, Field(pattern=r"^(nats|tls)://[^/\s]+$")]] = Field(
        min_length=1, description="nats://host:port of the cluster's servers (tried in turn)"
    )
    user: str | None = None
    password: str | None = Field(default=None, description="better: password_file or env CENTRAL_NATS_PASSWORD")
    password_file: ConfigPath | None = None
    stream: str = Field(default="IOC_EVENTS", pattern=r"^[A-Za-z0-9_-]+$")
    durable: str = Field(default="central-ingest", pattern=r"^[A-Za-z0-9_-]+$")
    replicas: int = Field(default=3, ge=1, le=5, description="copies of the stream across the cluster's servers")
    batch_max: int = Field(default=200, ge=1, le=10_000)

    @field_validator("password_file")
    @classmethod
    def _nats_file(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        return None if value is None else config_relative(value, info, "jetstream.password_file")

    def secret(self) -> str | None:
        return resolve_password("CENTRAL_NATS_PASSWORD", self.password_file, self.password, key="jetstream.password_file")


class RabbitMqConfig(_Section):
    """Events from a RabbitMQ broker cluster (central/ingest_rabbitmq.py): every ingester is a
    competing consumer of one replicated quorum queue bound to amq.topic for the event, evidence,
    node status and camera health topics, and acks after the commit. Over MQTT (`mqtt`, pointed at
    the cluster's MQTT listeners, `protocol: "3.1.1"`, `share_group: null`) the ingester subscribes
    to nothing (a clean session); police alerts still go out there."""

    servers: list[Annotated[str, Field(pattern=r"^amqps?://[^/\s]+$")]] = Field(
        min_length=1, description="amqp://host:port of the cluster's nodes (tried in turn)"
    )
    user: str = "central"
    password: str | None = Field(default=None, description="better: password_file or env CENTRAL_RABBITMQ_PASSWORD")
    password_file: ConfigPath | None = None
    ca_file: ConfigPath | None = Field(default=None, description="CA certificate for amqps:// (default: system CAs)")
    vhost: str = "/"
    queue: str = Field(default="ioc.events", pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
    declare: bool = Field(
        default=True, description="declare the quorum queue and its bindings at start (idempotent); false: it must exist"
    )
    replicas: int = Field(default=3, ge=1, le=7, description="nodes holding a copy of the queue (quorum queue group)")
    prefetch: int = Field(default=500, ge=1, le=65535, description="unacked deliveries one ingester may hold")
    heartbeat_s: int = Field(default=20, ge=0, le=600)

    @field_validator("password_file", "ca_file")
    @classmethod
    def _rabbit_file(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        return None if value is None else config_relative(value, info, f"rabbitmq.{info.field_name}")

    def secret(self) -> str | None:
        return resolve_password(
            "CENTRAL_RABBITMQ_PASSWORD", self.password_file, self.password, key="rabbitmq.password_file"
        )


class WebConfig(_Section):
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=1, le=65535)
    public_url: str | None = Field(
        default=None, description="base URL of the console in links; default http://host:port"
    )
    trusted_proxies: list[str] = Field(
        default_factory=list,
        description="reverse proxies (IP addresses or networks, e.g. 10.0.0.5 or 10.0.0.0/24) whose "
        "X-Forwarded-For names the client; from anyone else the header is ignored",
    )
    worker_header: bool = Field(
        default=False,
        description="send X-Central-Worker: <host>/<pid> on every response (which web process answered, "
        "behind a load-balancing proxy)",
    )

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        import ipaddress

        for item in value:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(f"{item!r} is not an IP address or network") from None
        return value

    @property
    def base_url(self) -> str:
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")


class ReportsConfig(_Section):
    group_window_s: float = Field(
        default=300, ge=0, le=86400, description="events of one type at one camera+zone this close form one report"
    )
    routing_file: ConfigPath = Path("configs/routing.yaml")

    @field_validator("routing_file")
    @classmethod
    def _routing_file(cls, value: Path, info: ValidationInfo) -> Path:
        return config_relative(value, info, "reports.routing_file")


class SkipReview(_Section):
    type: ViolationType
    min_confidence: float = Field(ge=0, le=1)


class ReviewConfig(_Section):
    # Classes the detector gets right often enough: confirmed by "system" without an operator.
    skip_review: list[SkipReview] = Field(default_factory=list)
    forward_on_confirm: bool = Field(default=True, description="a confirmed report goes to its agency at once")
    undo_seconds: float = Field(
        default=10,
        ge=0,
        le=600,
        description="a person's confirmation forwards and alerts this long after it (undo until then); 0: at once",
    )


class AuthConfig(_Section):
    session_hours: float = Field(default=12, gt=0, le=24 * 30)
    cookie_secure: bool = Field(
        default=False, description="true behind HTTPS: the session cookie is never sent in clear"
    )
    share_link_secret: str | None = Field(
        default=None,
        min_length=16,
        description="signs the read-only report links printed on the console; default: a random one per database",
    )
    share_link_days: float = Field(
        default=30,
        gt=0,
        le=3650,
        description="a share link stops working this long after it was made (admins can also revoke it)",
    )
    evidence_token_days: float = Field(
        default=30,
        gt=0,
        le=3650,
        description="a signed evidence URL (in report views and share pages) stops working this long after issue",
    )
    login_account_failures: int = Field(
        default=5,
        ge=1,
        le=1000,
        description="failed logins for one account (within login_window_s) before it is throttled",
    )
    login_address_failures: int = Field(
        default=20,
        ge=1,
        le=100_000,
        description="failed logins from one client address, all accounts, before it is throttled",
    )
    login_window_s: float = Field(default=900, gt=0, le=86_400, description="how long failed logins are counted")
    login_base_delay_s: float = Field(
        default=1, gt=0, le=3600, description="first refusal once throttled; doubles with each further failure"
    )
    login_max_delay_s: float = Field(
        default=300, gt=0, le=3600, description="the longest refusal: how long an attacker can lock a real user out"
    )
    login_concurrent_verifications: int = Field(
        default=2, ge=1, le=256, description="password checks (argon2) at once; more are refused (503) at once"
    )


class Webhook(_Section):
    url: str = Field(pattern=r"^https?://")
    secret: str = Field(min_length=16, description="HMAC-SHA256 key; the signature is in X-IOC-Signature")
    districts: list[str] | None = Field(default=None, description="legacy: only these districts' alerts")
    wards: list[str] | None = Field(default=None, description="only these wards' alerts")
    areas: list[str] | None = Field(default=None, description="only these routing areas' alerts (codes)")
    timeout_s: float = Field(default=5, gt=0, le=60)


class AlertsConfig(_Section):
    enabled: bool = True
    # Traffic types alerted at once, before review (e.g. wrong-way driving on a highway ramp).
    immediate_types: list[ViolationType] = Field(default_factory=list)
    webhooks: list[Webhook] = Field(default_factory=list)
    poll_interval_s: float = Field(default=0.5, gt=0, le=60)
    max_attempts: int = Field(default=10, ge=1, le=1000)


class PublicConfig(_Section):
    """The public version's blurring (central/public.py): heads, people and plates."""

    head_model: str = "helmet_yolo12m.onnx"
    plate_model: str = "license_plate_yolov8n.onnx"
    person_model: str = Field(default="yolo11n.onnx", description="COCO detector: people, riders' bikes, vehicles")
    confidence: float = Field(default=0.25, gt=0, lt=1)


class UploadsConfig(_Section):
    """Evidence upload over HTTP (`PUT /api/v1/evidence/<sha256>`): who may upload, how much."""

    # node id -> its upload token (HTTP Basic password). A node not listed cannot upload.
    nodes: dict[str, str] = Field(default_factory=dict)
    max_size_mb: float = Field(default=512, gt=0, le=4096)

    @field_validator("nodes")
    @classmethod
    def _nodes(cls, value: dict[str, str]) -> dict[str, str]:
        import re

        for node, token in value.items():
            if not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,63}", node):
                raise ValueError(f"{node!r} is not a node id")
            if len(token) < 16:
                raise ValueError(f"{node}: token must be at least 16 characters")
        return value


class EvidenceStoreConfig(_Section):
    """Where evidence files live: `local` (the files under evidence_dir, the default) or `s3`, a
    bucket in an S3-compatible object store (SeaweedFS, MinIO, AWS S3). Credentials are never
    here: boto3 reads AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or its credentials file. With s3,
    evidence_dir still holds the staging of uploads in progress (and debug videos)."""

    kind: Literal["local", "s3"] = "local"
    bucket: str | None = Field(
        default=None,
        # S3's bucket naming rules (lowercase, digits, dots, hyphens; 3-63 characters)
        pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$",
        description="the bucket (kind s3; it must exist: central does not create it)",
    )
    endpoint_url: str | None = Field(
        default=None, description="the store's S3 API, e.g. http://seaweedfs:8333; unset: AWS S3"
    )
    prefix: str = Field(default="", max_length=200, description="prepended to every key, e.g. evidence/")
    region: str | None = Field(
        default=None, pattern=r"^[a-z0-9-]{1,40}$", description="unset: AWS_REGION or boto3's default"
    )

    @field_validator("bucket")
    @classmethod
    def _bucket(cls, value: str | None, info: ValidationInfo) -> str | None:
        # validate_default runs this on an absent bucket too: kind s3 without one is an error here,
        # under evidence_store.bucket, not later when the first upload fails
        if value is None and info.data.get("kind") == "s3":
            raise ValueError("required when kind is s3")
        return value

    @field_validator("endpoint_url")
    @classmethod
    def _endpoint(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.username or parts.password:
            raise ValueError("expected an http(s) URL without credentials, e.g. http://127.0.0.1:8333")
        return value.rstrip("/")

    @field_validator("prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        import re

        if value and not re.fullmatch(r"[A-Za-z0-9!_.*'()/-]+", value):
            raise ValueError("expected letters, digits and !_.*'()/- only (S3's safe key characters)")
        if value.startswith("/") or "//" in value or ".." in value:
            raise ValueError("expected a relative key prefix without empty or '..' parts, e.g. evidence/")
        # a folder-like prefix: "evidence" and "evidence/" name the same place
        return value if not value or value.endswith("/") else value + "/"


class LimitsConfig(_Section):
    """What central accepts (issue 18, defects 6 and 10). Event sizes and field lengths are the
    contract's (`contract.events`); these are the deployer's."""

    evidence_mqtt_max_mb: float = Field(
        default=16, gt=0, le=256, description="largest evidence file over MQTT (snapshots; clips go over HTTP)"
    )
    evidence_media_types: list[str] = Field(
        default_factory=lambda: ["image/jpeg", "video/mp4", "image/png"],
        min_length=1,
        description="evidence media types stored (MQTT: by magic bytes; HTTP: Content-Type and magic bytes)",
    )
    evidence_hold_s: float = Field(
        default=86_400,
        gt=0,
        le=30 * 86_400,
        description="how long evidence no stored event refers to waits for its event before it is removed",
    )
    evidence_hold_max_mb: float = Field(
        default=2048, gt=0, le=1_048_576, description="total size of evidence waiting for its event; beyond it refused"
    )
    clock_future_s: float = Field(
        default=86_400, ge=0, description="an event time later than this after its arrival is flagged clock suspect"
    )
    clock_past_days: float = Field(
        default=30, ge=0, description="an event time earlier than this before its arrival is flagged clock suspect"
    )

    @field_validator("evidence_media_types")
    @classmethod
    def _media_types(cls, value: list[str]) -> list[str]:
        import re

        for t in value:
            if not re.fullmatch(r"[a-z]+/[a-z0-9.+-]+", t):
                raise ValueError(f"{t!r} is not a media type (e.g. image/jpeg)")
        return value


class HealthConfig(_Section):
    """When the console calls a node or camera gone (the health page turns red, a notice shows on
    every operator page). A node reports every 10 s and a camera on every state change and with
    its node's status: a minute of silence is a camera that needs a look."""

    node_offline_after_s: float = Field(default=120, ge=10, le=86_400, description="no status from the node this long: offline")
    camera_stale_after_s: float = Field(default=60, ge=10, le=86_400, description="no health from the camera this long: stale")


class MapConfig(_Section):
    """The console's map (`/map`). With no tile server it still works: markers and ward labels on a
    plain background (an operations center often has no Internet, or its own tile server)."""

    tile_url: str | None = Field(
        default=None,
        description="XYZ tile template, e.g. https://tiles.ioc.example/{z}/{x}/{y}.png; unset: no tiles",
    )
    attribution: str = Field(default="", max_length=300, description="shown in the corner (the tiles' licence)")
    center: tuple[float, float] = Field(default=(16.4637, 107.5909), description="lat, lon at start (Huế)")
    zoom: int = Field(default=13, ge=1, le=20)
    max_zoom: int = Field(default=19, ge=1, le=22)

    @field_validator("tile_url")
    @classmethod
    def _tile_template(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("expected an http(s) URL template")
        missing = [k for k in ("{z}", "{x}", "{y}") if k not in value]
        if missing:
            raise ValueError(f"the template lacks {', '.join(missing)}")
        return value

    @property
    def tile_origin(self) -> str | None:
        """scheme://host[:port] of the tiles, for the map page's Content-Security-Policy; a `{s}`
        subdomain placeholder becomes a wildcard (`https://*.tiles.example`)."""
        if self.tile_url is None:
            return None
        parts = urlsplit(self.tile_url)
        host = parts.netloc.replace("{s}.", "*.")
        return f"{parts.scheme}://{host}"


class MetricsConfig(_Section):
    """`GET /metrics` (Prometheus text format): never open to anyone by default."""

    token: str | None = Field(
        default=None,
        min_length=16,
        description="scrapers send 'Authorization: Bearer <token>'; unset: only loopback clients may scrape",
    )


class CentralConfig(_Section):
    database_url: str = "sqlite:///central.db"  # relative: in CENTRAL_STATE_DIR
    mqtt: MqttConfig = Field(default_factory=MqttConfig)
    jetstream: JetStreamConfig | None = None  # events from a NATS JetStream cluster instead of MQTT
    rabbitmq: RabbitMqConfig | None = None  # events from a RabbitMQ cluster's quorum queue instead of MQTT
    evidence_dir: ConfigPath = Path("evidence")  # relative: in CENTRAL_STATE_DIR
    evidence_store: EvidenceStoreConfig = Field(default_factory=EvidenceStoreConfig)
    web: WebConfig = Field(default_factory=WebConfig)
    time_zone: str = "Asia/Ho_Chi_Minh"
    reports: ReportsConfig = Field(default_factory=ReportsConfig)
    review: ReviewConfig = Field(default_factory=ReviewConfig)
    auth: AuthConfig = Field(default_factory=AuthConfig)
    alerts: AlertsConfig = Field(default_factory=AlertsConfig)
    public: PublicConfig = Field(default_factory=PublicConfig)
    uploads: UploadsConfig = Field(default_factory=UploadsConfig)
    metrics: MetricsConfig = Field(default_factory=MetricsConfig)
    map: MapConfig = Field(default_factory=MapConfig)
    health: HealthConfig = Field(default_factory=HealthConfig)
    limits: LimitsConfig = Field(default_factory=LimitsConfig)
    # Days an evidence file is kept after the newest event that refers to it, by event category
    # (`python -m central purge-evidence` applies it). Unlisted categories get the longest.
    evidence_retention_days: dict[RetentionCategory, float] = Field(
        default_factory=lambda: dict(_DEFAULT_RETENTION_DAYS), min_length=1
    )
    # Days an event (its report, once the whole report is that old, and dead letters) is kept;
    # None keeps them for ever (`python -m central purge-events` applies it, in batches).
    event_retention_days: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _one_events_engine(self) -> CentralConfig:
        if self.jetstream is not None and self.rabbitmq is not None:
            raise ValueError("jetstream and rabbitmq: events come from one broker cluster; set only one")
        if self.rabbitmq is not None:
            # RabbitMQ's MQTT plugin (3.10) speaks 3.1.1 and has no shared subscriptions: a
            # `$share/...` filter would be a plain topic that nothing is published to.
            if self.mqtt.protocol != "3.1.1":
                raise ValueError('rabbitmq: RabbitMQ\'s MQTT plugin speaks 3.1.1: set mqtt.protocol: "3.1.1"')
            if self.mqtt.share_group is not None:
                raise ValueError("rabbitmq: RabbitMQ's MQTT plugin has no shared subscriptions: set mqtt.share_group: null")
        return self

    @property
    def events_engine(self) -> Literal["mqtt", "jetstream", "rabbitmq"]:
        """Where events come from: MQTT (the single-box default), a JetStream stream or a RabbitMQ queue."""
        if self.rabbitmq is not None:
            return "rabbitmq"
        return "jetstream" if self.jetstream is not None else "mqtt"

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        try:
            url = make_url(value)
        except ArgumentError:
            raise ValueError(
                "expected a SQLAlchemy URL, e.g. sqlite:///central.db or postgresql+psycopg://user@host/db"
            ) from None
        if url.get_backend_name() not in ("sqlite", "postgresql"):
            raise ValueError(f"only sqlite and postgresql are supported (got {url.get_backend_name()!r})")
        if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
            path = Path(url.database)
            if not path.is_absolute():
                url = url.set(database=str(central_state_dir() / path))
            return url.render_as_string(hide_password=False)
        if url.drivername == "postgresql":
            # psycopg 3 is the driver we ship; SQLAlchemy 2.0 reads a bare "postgresql://" as psycopg2.
            url = url.set(drivername="postgresql+psycopg")
            return url.render_as_string(hide_password=False)
        return value

    @field_validator("evidence_dir")
    @classmethod
    def _evidence_dir(cls, value: Path) -> Path:
        return value if value.is_absolute() else central_state_dir() / value

    @field_validator("time_zone")
    @classmethod
    def _tz(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value


def _apply_env(cfg: CentralConfig, source: str) -> CentralConfig:
    data: dict[str, Any] = cfg.model_dump(mode="python", exclude_unset=False)
    used: list[str] = []
    if os.environ.get(ENV_DATABASE_URL):
        data["database_url"] = os.environ[ENV_DATABASE_URL]
        used.append(ENV_DATABASE_URL)
    if os.environ.get(ENV_MQTT_URL):
        data["mqtt"]["url"] = os.environ[ENV_MQTT_URL]
        used.append(ENV_MQTT_URL)
    if not used:
        return cfg
    try:
        return CentralConfig.model_validate(data)
    except ValidationError as e:
        raise ConfigError(format_validation_error(f"{source} (with env {', '.join(used)})", e)) from None


def _check_state_paths(cfg: CentralConfig, source: str) -> None:
    """What validation cannot see (issue 18, defect 9): the files and folders named must be of the
    right kind before anything opens them. A FIFO as evidence_dir or password_file would hang, a
    device would be read without end, and a SQLite file in a folder that does not exist would be
    created silently in a mistyped place (only CENTRAL_STATE_DIR is made on demand)."""
    evidence = cfg.evidence_dir
    if evidence.exists() and not evidence.is_dir():
        raise ConfigError(f"{source}: evidence_dir: {evidence} exists and is not a folder")
    url = make_url(cfg.database_url)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        db = Path(url.database)
        if db.exists() and not db.is_file():
            raise ConfigError(f"{source}: database_url: {db} exists and is not a regular file")
        if not db.parent.is_dir() and not _in_state_dir(db):
            raise ConfigError(
                f"{source}: database_url: the folder {db.parent} does not exist "
                "(create it, or give a path in an existing folder)"
            )
    for key in ("password_file", "ca_file"):
        file = getattr(cfg.mqtt, key)
        if file is not None:
            secret_file_problem(source, f"mqtt.{key}", file)
        rabbit = getattr(cfg.rabbitmq, key, None) if cfg.rabbitmq is not None else None
        if rabbit is not None:
            secret_file_problem(source, f"rabbitmq.{key}", rabbit)


def _in_state_dir(path: Path) -> bool:
    """Central makes its own state folder (and folders below it) on first start."""
    try:
        path.resolve().relative_to(central_state_dir().resolve())
    except ValueError:
        return False
    return True


def load_central_config(path: Path | str | None = DEFAULT_CONFIG_PATH) -> CentralConfig:
    """Load and validate; `path=None` means defaults only. Raises ConfigError with file + key path."""
    cfg = CentralConfig() if path is None else load_config(path, CentralConfig)
    cfg = _apply_env(cfg, str(path) if path is not None else "defaults")
    _check_state_paths(cfg, str(path) if path is not None else "defaults")
    # The routing table is part of the config: a bad one stops the start, naming its file + key.
    from central.workflow import load_routing

    if not cfg.reports.routing_file.is_file():
        raise ConfigError(f"{path or 'defaults'}: reports.routing_file: no such file {cfg.reports.routing_file}")
    load_routing(cfg.reports.routing_file)
    return cfg
