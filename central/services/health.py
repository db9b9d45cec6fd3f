"""Nodes and cameras as the health page, /api/health and /metrics show them.

The edge publishes typed messages (`contract.status`: `NodeStatus` on `<prefix>/<node>/status`,
`CameraHealth` on `<prefix>/<node>/<camera>/health`, and each camera's health again inside every
node status). Older nodes sent untyped dicts (and a bare `offline` as their last will): those are
still read, field by field, so an upgrade of central never blanks the page of a node not yet
upgraded. A message that claims a schema but does not validate is logged by the ingester and read
the same tolerant way.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any, Literal

from pydantic import ValidationError
from sqlalchemy.orm import Session

from central import queries
from central.config import CentralConfig
from central.db import utcnow
from central.logs import kv
from contract.status import CAMERA_HEALTH_SCHEMA_ID, NODE_STATUS_SCHEMA_ID, CameraHealth, NodeStatus

log = logging.getLogger(__name__)

ONLINE_WITHIN_S = 120  # a node reports every 10 s; 2 min of silence = gone (health.node_offline_after_s)
STALE_AFTER_S = 60  # health.camera_stale_after_s

# What is wrong with a camera, worst first, in the words an operator reads (vi, en).
ALARMS: dict[str, tuple[str, str]] = {
    "offline": ("Mất kết nối với nút biên", "its edge node is offline"),
    "stale": ("Không nhận được trạng thái", "no health report lately"),
    "down": ("Mất hình ảnh", "no picture (stream stalled, reconnecting or failed)"),
    "camera_moved": ("Camera bị lệch khỏi góc đặt", "the camera has moved off its commissioned view"),
    "overloaded": ("Quá tải phân tích", "analysis overloaded (frames skipped)"),
}
DOWN_STATES = frozenset({"stalled", "reconnecting", "failed", "ended"})

StatusKind = Literal["status", "health"]
_MODELS: dict[str, tuple[type[NodeStatus] | type[CameraHealth], str]] = {
    "status": (NodeStatus, NODE_STATUS_SCHEMA_ID),
    "health": (CameraHealth, CAMERA_HEALTH_SCHEMA_ID),
}


class InvalidStatus(ValueError):
    """A status message that claims the typed contract and does not meet it."""


def parse_typed(kind: StatusKind, value: Any) -> NodeStatus | CameraHealth | None:
    """The typed message, or None for an older untyped one (no `schema` field, or not a dict).
    Raises InvalidStatus when it names a schema and does not validate against it."""
    if not isinstance(value, dict) or "schema" not in value:
        return None
    model, schema_id = _MODELS[kind]
    if value["schema"] != schema_id:
        raise InvalidStatus(f"schema {value['schema']!r} is not {schema_id!r}")
    try:
        return model.model_validate(value, context={"wire": True})
    except ValidationError as e:
        first = e.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"]) or "(message)"
        raise InvalidStatus(f"{where}: {first['msg']} ({e.error_count()} problem(s))") from None


def check_status(kind: StatusKind, value: Any, *, node: str, camera: str | None = None) -> str:
    """The ingester's check of a status/health message: "typed" (valid), "untyped" (an older
    node's dict or word) or "invalid" (claims the contract and breaks it, or names another
    node/camera than its topic). An invalid one is logged, never fatal: it is stored as received
    and read field by field."""
    try:
        typed = parse_typed(kind, value)
    except InvalidStatus as e:
        log.warning(kv("status_invalid", kind=kind, node=node, camera=camera, reason=str(e)))
        return "invalid"
    if typed is None:
        return "untyped"
    if typed.node != node or (isinstance(typed, CameraHealth) and typed.camera != camera):
        log.warning(kv("status_invalid", kind=kind, node=node, camera=camera, reason="topic/payload node or camera mismatch"))
        return "invalid"
    return "typed"


def _values(kind: StatusKind, payload: Any) -> tuple[dict[str, Any], bool]:
    """A stored payload as plain values, and whether it was a valid typed message."""
    try:
        typed = parse_typed(kind, payload)
    except InvalidStatus:
        typed = None
    if typed is not None:
        return typed.model_dump(mode="json", by_alias=True), True
    if isinstance(payload, dict):
        return payload, False
    return {"state": str(payload)}, False  # a bare last will ('offline')


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def _age_s(now: datetime, value: Any) -> float | None:
    at = _time(value)
    if at is None or at.tzinfo is None:
        return None
    return round((now - at).total_seconds(), 1)


def _camera(
    node: str, camera: str, sources: list[tuple[dict[str, Any], bool, datetime]], last_event: datetime | None, now: datetime
) -> dict[str, Any]:
    """One camera from what was said about it (its health topic, its node's status): the newest
    message's values win (a typed message carries every field; an older node's partial dict
    only overrides what it has)."""

    def freshness(src: tuple[dict[str, Any], bool, datetime]) -> datetime:
        at = _time(src[0].get("at"))
        return at if at is not None and at.tzinfo is not None else src[2]

    p: dict[str, Any] = {}
    typed = False
    updated_at: datetime | None = None
    for values, is_typed, received in sorted(sources, key=freshness):
        p.update(values)
        typed = typed or is_typed
        updated_at = max(updated_at, received) if updated_at else received
    fps = p.get("fps") or p.get("analysis_fps")
    return {
        "node": node,
        "camera": camera,
        "state": p.get("state", "unknown"),
        "fps": fps,
        "updated_at": updated_at.isoformat() if updated_at else None,
        "last_event_at": last_event.isoformat() if last_event else None,
        "typed": typed,
        "at": p.get("at"),
        "analysis_fps": p.get("analysis_fps", fps),
        "analysis_fps_target": p.get("analysis_fps_target"),
        "last_frame_at": p.get("last_frame_at"),
        "last_frame_age_s": _age_s(now, p.get("last_frame_at")),
        "lag_ms_p50": p.get("lag_ms_p50"),
        "lag_ms_max": p.get("lag_ms_max"),
        "overloaded": p.get("overloaded"),
        "reconnects": p.get("reconnects"),
        "restarts": p.get("restarts"),
        "camera_moved": p.get("camera_moved"),
        "frames_decoded": p.get("frames_decoded"),
        "analysed_frames": p.get("analysed_frames"),
        "slots_missed": p.get("slots_missed"),
        "frames_gated": p.get("frames_gated"),
        "events": p.get("events"),
        "last_error": p.get("last_error"),
    }


def camera_alarm(camera: dict[str, Any], node_online: bool | None, stale_after_s: float) -> str | None:
    """The worst of ALARMS that holds for `camera` (None: healthy, or nothing known yet)."""
    if node_online is False:
        return "offline"
    updated = _time(camera.get("updated_at"))
    if updated is not None and (utcnow() - updated).total_seconds() > stale_after_s:
        return "stale"
    if camera.get("state") in DOWN_STATES:
        return "down"
    if camera.get("camera_moved"):
        return "camera_moved"
    if camera.get("overloaded"):
        return "overloaded"
    return None


def health_notices(data: dict[str, Any]) -> list[dict[str, Any]]:
    """One operator notice per camera with an alarm, worst first (the banner on console pages)."""
    order = list(ALARMS)
    out = [
        {"node": c["node"], "camera": c["camera"], "alarm": c["alarm"], "vi": ALARMS[c["alarm"]][0], "en": ALARMS[c["alarm"]][1]}
        for c in data["cameras"]
        if c.get("alarm")
    ]
    return sorted(out, key=lambda n: (order.index(n["alarm"]), n["node"], n["camera"]))


def health_data(s: Session, *, node_offline_after_s: float = ONLINE_WITHIN_S, camera_stale_after_s: float = STALE_AFTER_S) -> dict[str, Any]:
    """Every node (online = says so and was heard within `node_offline_after_s`) and every camera
    (from its health messages, its node's status and its last stored event), each camera with its
    alarm (camera_alarm)."""
    now = utcnow()
    last_event = queries.last_event_per_camera(s)
    nodes = []
    said: dict[tuple[str, str], list[tuple[dict[str, Any], bool, datetime]]] = {}
    for row in queries.node_status_rows(s):
        p, typed = _values("status", row.payload)
        age = (now - row.updated_at).total_seconds()
        state = p.get("state", "unknown")
        nodes.append(
            {
                "node": row.node,
                "state": state,
                "online": state == "online" and age < node_offline_after_s,
                "updated_at": row.updated_at.isoformat(),
                "age_s": round(age),
                "outbox_backlog": p.get("outbox_backlog"),
                "outbox_oldest_s": p.get("outbox_oldest_s"),
                "uptime_s": p.get("uptime_s"),
                "typed": typed,
                "at": p.get("at"),
                "published": p.get("published"),
                "held_no_subscriber": p.get("held_no_subscriber"),
                "disk_full": p.get("disk_full"),
                "cameras": len(p["cameras"]) if isinstance(p.get("cameras"), dict) else None,
            }
        )
        cams = p.get("cameras")
        if state == "online" and isinstance(cams, dict):
            for cam, values in cams.items():
                if isinstance(values, dict):
                    said.setdefault((row.node, str(cam)), []).append((values, typed, row.updated_at))
    for cam_row in queries.camera_health_rows(s):
        p, typed = _values("health", cam_row.payload)
        said.setdefault((cam_row.node, cam_row.camera), []).append((p, typed, cam_row.updated_at))
    cameras = [_camera(n, c, said[(n, c)], last_event.get((n, c)), now) for n, c in sorted(said)]
    for (n, c), t in sorted(last_event.items()):
        if (n, c) not in said:
            cameras.append(_camera(n, c, [], t, now))
    online = {n["node"]: n["online"] for n in nodes}
    for cam in cameras:
        # Known only from its events (no health message ever): nothing to judge it by.
        heard = cam["updated_at"] is not None
        cam["alarm"] = camera_alarm(cam, online.get(cam["node"]), camera_stale_after_s) if heard else None
        cam["updated_age_s"] = _age_s(now, cam["updated_at"])
    return {"nodes": nodes, "cameras": cameras, "at": now.isoformat()}


def configured_health(s: Session, config: CentralConfig) -> dict[str, Any]:
    """health_data with the deployer's `health:` times."""
    h = config.health
    return health_data(s, node_offline_after_s=h.node_offline_after_s, camera_stale_after_s=h.camera_stale_after_s)
