"""Central's config: one YAML file (every key has a default) plus two env overrides.

Relative paths (the SQLite file, the evidence dir) are relative to the repository root, so the
service behaves the same whatever directory it is started from.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from central.broker import parse_mqtt_url
from contract.configfile import ConfigError, format_validation_error, load_config

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CONFIG_PATH = REPO_ROOT / "configs" / "central.yaml"
ENV_DATABASE_URL = "CENTRAL_DATABASE_URL"
ENV_MQTT_URL = "CENTRAL_MQTT_URL"

_TOPIC_SAFE = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"


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
    password: str | None = None
    keepalive_s: int = Field(default=30, ge=5, le=3600)

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        parse_mqtt_url(value)  # ValueError -> pydantic error naming the key
        return value

    @property
    def effective_client_id(self) -> str:
        return self.client_id or default_client_id()

    @property
    def stable_client_id(self) -> bool:
        """Whether the session is meant to be resumed by a later process."""
        return self.client_id is not None


class WebConfig(_Section):
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=1, le=65535)
    public_url: str | None = Field(
        default=None, description="base URL of the console in links; default http://host:port"
    )

    @property
    def base_url(self) -> str:
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")


class CentralConfig(_Section):
    database_url: str = "sqlite:///var/central/central.db"
    mqtt: MqttConfig = Field(default_factory=MqttConfig)
    evidence_dir: Path = Path("var/central/evidence")
    web: WebConfig = Field(default_factory=WebConfig)
    time_zone: str = "Asia/Ho_Chi_Minh"

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        try:
            url = make_url(value)
        except ArgumentError:
            raise ValueError(
                "expected a SQLAlchemy URL, e.g. sqlite:///var/central/central.db or postgresql+psycopg://user@host/db"
            ) from None
        if url.get_backend_name() not in ("sqlite", "postgresql"):
            raise ValueError(f"only sqlite and postgresql are supported (got {url.get_backend_name()!r})")
        if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
            path = Path(url.database)
            if not path.is_absolute():
                url = url.set(database=str(REPO_ROOT / path))
            return url.render_as_string(hide_password=False)
        if url.drivername == "postgresql":
            # psycopg 3 is the driver we ship; SQLAlchemy 2.0 reads a bare "postgresql://" as psycopg2.
            url = url.set(drivername="postgresql+psycopg")
            return url.render_as_string(hide_password=False)
        return value

    @field_validator("evidence_dir")
    @classmethod
    def _evidence_dir(cls, value: Path) -> Path:
        return value if value.is_absolute() else REPO_ROOT / value

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


def load_central_config(path: Path | str | None = DEFAULT_CONFIG_PATH) -> CentralConfig:
    """Load and validate; `path=None` means defaults only. Raises ConfigError with file + key path."""
    cfg = CentralConfig() if path is None else load_config(path, CentralConfig)
    return _apply_env(cfg, str(path) if path is not None else "defaults")
