"""Status contract v1: what an edge node says about itself and its cameras on the retained topics.

- `NodeStatus` (`ioc.node_status/1`) on `<prefix>/<node>/status`: published every
  `status_interval_s` while the node runs (`state: online`, every field present), once with
  `state: offline` when it stops, and as the broker's last will (`state: offline`, no `at`: the
  broker sends it when the node vanished, at a time the node cannot know). Offline messages carry
  only `schema`, `node`, `state` and (on a clean stop) `at`; the other fields keep their defaults.
- `CameraHealth` (`ioc.camera_health/1`) on `<prefix>/<node>/<camera>/health`: published at every
  state change of the camera (starting, streaming, stalled, reconnecting, ended, failed,
  restarting) and again with live values with every node status, so `at` and the counters are
  never older than one status interval while the node is up.

Both are strict (unknown fields are refused) and frozen, like the event contract; times are UTC.
`python -m edge schema node_status|camera_health` prints their JSON Schema.
"""

from __future__ import annotations

from typing import Annotated, Any, Final, Literal

from pydantic import ConfigDict, Field, ValidationInfo, model_validator

from contract.events import Identifier, UtcTime, _Strict

NODE_STATUS_SCHEMA_ID: Final = "ioc.node_status/1"
CAMERA_HEALTH_SCHEMA_ID: Final = "ioc.camera_health/1"

CameraState = Literal["starting", "streaming", "stalled", "reconnecting", "ended", "failed", "restarting"]
NodeState = Literal["online", "offline"]

Count = Annotated[int, Field(strict=True, ge=0)]
Seconds = Annotated[float, Field(ge=0)]


def _require_schema_on_the_wire(data: Any, info: ValidationInfo, schema_id: str) -> Any:
    if info.context and info.context.get("wire") and isinstance(data, dict) and "schema" not in data:
        raise ValueError(f"schema: field required on the wire (this is {schema_id!r})")
    return data


class CameraHealth(_Strict):
    """One camera's condition as its node sees it (live values, not a snapshot of the last change)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    schema_: Literal["ioc.camera_health/1"] = Field(default=CAMERA_HEALTH_SCHEMA_ID, alias="schema")
    node: Identifier
    camera: Identifier
    state: CameraState = Field(
        description="starting | streaming | stalled (no frames for the stall timeout) | reconnecting | "
        "ended (stream over, or the node stops) | failed (the camera worker gave up) | restarting "
        "(the camera worker crashed and is restarted after a backoff)"
    )
    at: UtcTime = Field(description="when these values were read")
    reconnects: Count = Field(0, description="reconnect attempts of the source since the worker started")
    restarts: Count = Field(0, description="times the camera worker was restarted after a crash")
    last_frame_at: UtcTime | None = Field(None, description="wall time of the last decoded frame")
    frames_decoded: Count = Field(0, description="frames out of the decoder (every frame of the stream)")
    frames_delivered: Count = Field(0, description="frames handed to analysis at the analysis rate")
    analysed_frames: Count = Field(0, description="frames the analysis finished")
    slots_missed: Count = Field(0, description="analysis slots no frame filled (overload or a gap): dropped frames")
    frames_gated: Count = Field(0, description="analysed frames whose detections were carried over (no motion)")
    analysis_fps: float | None = Field(None, ge=0, description="analysed frames per second over the last 10 s")
    analysis_fps_target: float = Field(gt=0, description="the camera's configured analysis_fps")
    lag_ms_p50: float | None = Field(None, ge=0, description="median frame-arrival-to-analysed lag, last 10 s")
    lag_ms_max: float | None = Field(None, ge=0)
    overloaded: bool = Field(False, description="analysing below 95% of the target, or lagging > 1 s")
    camera_moved: bool = Field(False, description="the view no longer matches the scene's reference snapshot")
    last_error: str | None = Field(None, max_length=2000)
    events: Count = Field(0, description="events this camera produced since the node started")
    clip_buffer_bytes: Count | None = Field(None, description="bytes in the clip packet buffer (None: no clips)")
    clip_buffer_seconds: float | None = Field(None, ge=0)

    @model_validator(mode="before")
    @classmethod
    def _schema_on_the_wire(cls, data: Any, info: ValidationInfo) -> Any:
        return _require_schema_on_the_wire(data, info, CAMERA_HEALTH_SCHEMA_ID)

    def to_json(self) -> str:
        return self.model_dump_json(by_alias=True)

    @classmethod
    def from_json(cls, payload: bytes | str) -> CameraHealth:
        return cls.model_validate_json(payload, context={"wire": True})


class NodeStatus(_Strict):
    """An edge node's state, delivery backlog and cameras. Offline messages have only the head fields."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    schema_: Literal["ioc.node_status/1"] = Field(default=NODE_STATUS_SCHEMA_ID, alias="schema")
    node: Identifier
    state: NodeState
    at: UtcTime | None = Field(None, description="when the status was made; absent only in the last will")
    uptime_s: Seconds | None = None
    outbox_backlog: Count | None = Field(None, description="MQTT messages on disk not yet acknowledged by the broker")
    outbox_oldest_s: Seconds | None = Field(None, description="age of the oldest of them (None: none waiting)")
    published: Count | None = Field(None, description="outbox messages the broker acknowledged since start")
    held_no_subscriber: Count | None = Field(None, description="PUBACKs saying 'no matching subscribers' (kept, resent)")
    mqtt_connected: bool | None = Field(None, description="the publisher's broker connection")
    publishes_refused: Count | None = Field(
        None, description="PUBACKs the broker refused (e.g. not authorized): kept in the outbox and retried"
    )
    puback_timeouts: Count | None = Field(
        None, description="connections the publisher dropped because a PUBACK did not come within "
        "mqtt.puback_timeout_s (it reconnected to the next broker URL; the messages stayed in the outbox)",
    )
    subscriptions_refused: dict[str, str] = Field(
        default_factory=dict, description="topic -> reason, for subscriptions the broker refused (signal feed)"
    )
    disk_full: bool = False
    uploads: dict[str, int | str | None] | None = Field(None, description="clip upload backlog (None: no upload)")
    # Open-ended scalar maps (their keys belong to edge/retention.py and the inference backend).
    storage: dict[str, int | float | str | bool | None] = Field(default_factory=dict)
    inference: dict[str, int | float | str | bool | None] = Field(default_factory=dict)
    evidence: dict[str, int] | None = Field(
        None, description="the evidence worker: queue depth and what it dropped (see edge/runtime/evidence_worker.py)"
    )
    cameras: dict[Identifier, CameraHealth] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _schema_on_the_wire(cls, data: Any, info: ValidationInfo) -> Any:
        return _require_schema_on_the_wire(data, info, NODE_STATUS_SCHEMA_ID)

    @model_validator(mode="after")
    def _online_is_complete(self) -> NodeStatus:
        if self.state == "online":
            missing = [
                k for k in ("at", "uptime_s", "outbox_backlog", "published", "held_no_subscriber")
                if getattr(self, k) is None
            ]
            if missing:
                raise ValueError(f"an online status needs {', '.join(missing)}")
        for key, health in self.cameras.items():
            if health.camera != key or health.node != self.node:
                raise ValueError(f"cameras[{key!r}] is the health of {health.node}/{health.camera}")
        return self

    def to_json(self) -> str:
        return self.model_dump_json(by_alias=True)

    @classmethod
    def from_json(cls, payload: bytes | str) -> NodeStatus:
        return cls.model_validate_json(payload, context={"wire": True})


def _schema_of(model: type[_Strict], schema_id: str) -> dict[str, Any]:
    schema = model.model_json_schema(by_alias=True)
    schema["$id"] = schema_id
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema


def node_status_json_schema() -> dict[str, Any]:
    return _schema_of(NodeStatus, NODE_STATUS_SCHEMA_ID)


def camera_health_json_schema() -> dict[str, Any]:
    return _schema_of(CameraHealth, CAMERA_HEALTH_SCHEMA_ID)
