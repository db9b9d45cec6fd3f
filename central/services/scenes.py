"""Camera scenes at central: the config versions of every camera, their reference frames, the drawing.

The camera configs live on the edge. A node (`edge.scene_sync`) reports each camera's running
config (without `camera.source`: an RTSP URL carries the camera's password) and a reference frame
when it starts and whenever its config changes; an admin edits the scene in the console and saves a
new version; the node fetches it, validates it, applies it between two frames and reports back
(`applied`, or `refused` with the error, the old config still running). Nothing is overwritten:
every version is a row with who made it and when, and its state. A console version records the
uploaded frame it was drawn on (`frame_sha256`): the node fetches that picture with the version
and makes it the camera's `scene.reference_image` (`edge.scene_sync`).

Validation is the edge's own (`edge.config`, the pure config and rule-registry modules), so the
console shows the errors `check-config` prints. The drawing is `edge.scene_drawing`'s, imported
when a drawing is asked for (it needs OpenCV; central imports without it).
"""

from __future__ import annotations

import hashlib
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import yaml
from sqlalchemy import BigInteger, Index, Integer, LargeBinary, String, Text, UniqueConstraint, func, select
from sqlalchemy.orm import Mapped, Session, mapped_column, sessionmaker

from central.db import Base, BigId, UtcDateTime, session_scope, utcnow
from contract.configfile import ConfigError

Origin = Literal["edge", "console"]
# edge: what a node reported it runs; console: pending until the node says applied or refused.
STATES = ("running", "pending", "applied", "refused")
MAX_FRAME_BYTES = 4 * 1024 * 1024
# The node's own bound (edge.debug_video.MAX_RECORD_SECONDS, which it enforces too): said here first.
MAX_DEBUG_SECONDS = 120
MAX_YAML_BYTES = 256 * 1024


class SceneFrameRow(Base):
    __tablename__ = "scene_frames"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    node: Mapped[str] = mapped_column(String(64))
    camera: Mapped[str] = mapped_column(String(64))
    jpeg: Mapped[bytes] = mapped_column(LargeBinary)
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    received_at: Mapped[datetime] = mapped_column(UtcDateTime)


class SceneVersionRow(Base):
    __tablename__ = "scene_versions"
    __table_args__ = (
        UniqueConstraint("node", "camera", "version", name="uq_scene_version"),
        Index("ix_scene_versions_camera", "node", "camera"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    node: Mapped[str] = mapped_column(String(64))
    camera: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer)
    yaml: Mapped[str] = mapped_column(Text)
    origin: Mapped[str] = mapped_column(String(16))
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    frame_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    state: Mapped[str] = mapped_column(String(16))
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    state_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)


class DebugRecordingRow(Base):
    """A node's debug video of one camera (asked for from the console or on MQTT), kept at
    `<evidence_dir>/debug/<node>/<camera>/<sha256>.mp4`; not evidence: no event refers to it."""

    __tablename__ = "debug_recordings"
    __table_args__ = (Index("ix_debug_recordings_camera", "node", "camera"),)

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    node: Mapped[str] = mapped_column(String(64))
    camera: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)
    path: Mapped[str] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(UtcDateTime)


def recordings(s: Session, node: str, camera: str) -> list[DebugRecordingRow]:
    return list(
        s.scalars(
            select(DebugRecordingRow)
            .where(DebugRecordingRow.node == node, DebugRecordingRow.camera == camera)
            .order_by(DebugRecordingRow.received_at.desc())
        )
    )


class SceneError(ValueError):
    """A config or frame central will not store; the message says why."""


@dataclass(frozen=True)
class Checked:
    yaml: str
    errors: list[str]
    config: dict[str, Any] | None  # the parsed config (source removed) when it is a mapping

    @property
    def ok(self) -> bool:
        return not self.errors


def _without_source(data: dict[str, Any]) -> dict[str, Any]:
    camera = data.get("camera")
    if isinstance(camera, dict) and "source" in camera:
        data = {**data, "camera": {k: v for k, v in camera.items() if k != "source"}}
    return data


def to_yaml(config: dict[str, Any]) -> str:
    return yaml.safe_dump(config, sort_keys=False, allow_unicode=True, default_flow_style=None, width=120)


def check(config: dict[str, Any] | str, name: str) -> Checked:
    """Validate a camera config (a mapping, or YAML text) as `check-config --camera` does; the
    errors name `name` (e.g. `node-1/cam-1.yaml`) and each key path. `camera.source` is dropped:
    central never holds a camera's URL (it has the camera's password); the node keeps its own."""
    from edge.config import load_camera_config  # the pure config + rule registry modules

    if isinstance(config, str):
        if len(config.encode()) > MAX_YAML_BYTES:
            return Checked(config, [f"{name}: larger than {MAX_YAML_BYTES // 1024} kB"], None)
        try:
            data = yaml.safe_load(config)
        except yaml.YAMLError as e:
            return Checked(config, [f"{name}: not valid YAML: {e}"], None)
    else:
        data = config
    if not isinstance(data, dict):
        return Checked(config if isinstance(config, str) else "", [f"{name}: a camera config is a mapping"], None)
    data = _without_source(data)
    text = to_yaml(data)
    with tempfile.TemporaryDirectory(prefix="scene-check-") as tmp:
        path = Path(tmp) / "camera.yaml"
        path.write_text(text, encoding="utf-8")
        try:
            load_camera_config(path)
            errors: list[str] = []
        except ConfigError as e:
            errors = [line.strip().replace(str(path), name) for line in str(e).splitlines() if line.strip()]
    return Checked(text, errors, data)


def _jpeg_size(jpeg: bytes) -> tuple[int, int]:
    """Width and height from a baseline or progressive JPEG's SOF marker (no image library)."""
    if not jpeg.startswith(b"\xff\xd8"):
        raise SceneError("the reference frame is not a JPEG")
    i = 2
    while i + 9 < len(jpeg):
        if jpeg[i] != 0xFF:
            i += 1
            continue
        marker = jpeg[i + 1]
        if marker in (0xC0, 0xC1, 0xC2):
            h = int.from_bytes(jpeg[i + 5 : i + 7], "big")
            w = int.from_bytes(jpeg[i + 7 : i + 9], "big")
            return w, h
        i += 2 + int.from_bytes(jpeg[i + 2 : i + 4], "big")
    raise SceneError("the reference frame's JPEG has no size")


def newest_yaml(s: Session, cameras: set[str] | None = None) -> list[tuple[str, str, str]]:
    """(node, camera, YAML) of every camera's newest scene version (only `cameras`' ids if given)."""
    newest = select(SceneVersionRow.node, SceneVersionRow.camera, func.max(SceneVersionRow.version).label("v"))
    if cameras is not None:
        newest = newest.where(SceneVersionRow.camera.in_(cameras))
    sub = newest.group_by(SceneVersionRow.node, SceneVersionRow.camera).subquery()
    rows = s.execute(
        select(SceneVersionRow.node, SceneVersionRow.camera, SceneVersionRow.yaml).join(
            sub,
            (SceneVersionRow.node == sub.c.node)
            & (SceneVersionRow.camera == sub.c.camera)
            & (SceneVersionRow.version == sub.c.v),
        )
    ).all()
    return [(n, c, y) for n, c, y in rows]


def latest(s: Session, node: str, camera: str) -> SceneVersionRow | None:
    return s.scalars(
        select(SceneVersionRow)
        .where(SceneVersionRow.node == node, SceneVersionRow.camera == camera)
        .order_by(SceneVersionRow.version.desc())
        .limit(1)
    ).first()


def latest_frame(s: Session, node: str, camera: str) -> SceneFrameRow | None:
    return s.scalars(
        select(SceneFrameRow)
        .where(SceneFrameRow.node == node, SceneFrameRow.camera == camera)
        .order_by(SceneFrameRow.received_at.desc())
        .limit(1)
    ).first()


def versions(s: Session, node: str, camera: str) -> list[SceneVersionRow]:
    return list(
        s.scalars(
            select(SceneVersionRow)
            .where(SceneVersionRow.node == node, SceneVersionRow.camera == camera)
            .order_by(SceneVersionRow.version.desc())
        )
    )


def version(s: Session, node: str, camera: str, number: int) -> SceneVersionRow | None:
    return s.scalars(
        select(SceneVersionRow).where(
            SceneVersionRow.node == node, SceneVersionRow.camera == camera, SceneVersionRow.version == number
        )
    ).first()


def cameras(s: Session) -> list[dict[str, Any]]:
    """Every camera with a version: its latest one (number, origin, state, who, when)."""
    newest = (
        select(SceneVersionRow.node, SceneVersionRow.camera, func.max(SceneVersionRow.version).label("v"))
        .group_by(SceneVersionRow.node, SceneVersionRow.camera)
        .subquery()
    )
    rows = s.scalars(
        select(SceneVersionRow)
        .join(
            newest,
            (SceneVersionRow.node == newest.c.node)
            & (SceneVersionRow.camera == newest.c.camera)
            & (SceneVersionRow.version == newest.c.v),
        )
        .order_by(SceneVersionRow.node, SceneVersionRow.camera)
    )
    return [_summary(r) for r in rows]


def _summary(r: SceneVersionRow) -> dict[str, Any]:
    return {
        "node": r.node, "camera": r.camera, "version": r.version, "origin": r.origin, "state": r.state,
        "created_by": r.created_by, "created_at": r.created_at, "error": r.error, "state_at": r.state_at,
    }


def _add_version(
    s: Session, node: str, camera: str, text: str, origin: Origin, by: str, state: str, frame: str | None
) -> SceneVersionRow:
    current = latest(s, node, camera)
    row = SceneVersionRow(
        node=node, camera=camera, version=(current.version + 1) if current else 1, yaml=text, origin=origin,
        created_by=by, created_at=utcnow(), frame_sha256=frame, state=state, state_at=utcnow(),
    )
    s.add(row)
    s.flush()
    return row


def report(
    sessions: sessionmaker[Session],
    node: str,
    camera: str,
    config_yaml: str,
    *,
    frame_jpeg: bytes | None = None,
    applied: int | None = None,
    refused: int | None = None,
    error: str | None = None,
) -> dict[str, Any]:
    """What a node says about one camera: the config it runs now (a new version when it differs
    from the latest), a reference frame, and the outcome of a console version it fetched."""
    if frame_jpeg is not None and len(frame_jpeg) > MAX_FRAME_BYTES:
        raise SceneError(f"reference frame larger than {MAX_FRAME_BYTES // (1024 * 1024)} MB")
    checked = check(config_yaml, f"{node}/{camera}.yaml")
    if checked.config is None:
        raise SceneError("; ".join(checked.errors))
    with session_scope(sessions) as s:
        frame_sha = None
        if frame_jpeg is not None:
            w, h = _jpeg_size(frame_jpeg)
            frame_sha = hashlib.sha256(frame_jpeg).hexdigest()
            if s.get(SceneFrameRow, frame_sha) is None:
                s.add(SceneFrameRow(sha256=frame_sha, node=node, camera=camera, jpeg=frame_jpeg, width=w, height=h,
                                    received_at=utcnow()))
        for number, state in ((applied, "applied"), (refused, "refused")):
            if number is None:
                continue
            row = version(s, node, camera, number)
            if row is None or row.origin != "console":
                raise SceneError(f"{node}/{camera}: no console version {number} to be {state}")
            row.state, row.state_at = state, utcnow()
            row.error = (error or "")[:4000] if state == "refused" else None
        # Compared with what the node last ran (not with an admin's version still pending: the
        # node's report of its old config must not bury it). A config changed on the node itself
        # is a new version, which supersedes a pending one.
        current = s.scalars(
            select(SceneVersionRow)
            .where(SceneVersionRow.node == node, SceneVersionRow.camera == camera,
                   SceneVersionRow.state.in_(("running", "applied")))
            .order_by(SceneVersionRow.version.desc())
            .limit(1)
        ).first()
        same = current is not None and yaml.safe_load(current.yaml) == checked.config
        if same and current is not None:
            if frame_sha and current.frame_sha256 is None:
                current.frame_sha256 = frame_sha
            row = current
        else:
            if frame_sha is None:
                known = latest_frame(s, node, camera)
                frame_sha = known.sha256 if known is not None else None
            row = _add_version(s, node, camera, checked.yaml, "edge", f"node {node}", "running", frame_sha)
        return {"version": row.version, "state": row.state}


def frame_of(s: Session, node: str, camera: str, sha256: str) -> SceneFrameRow | None:
    """The uploaded frame `sha256` when it is one of this camera's: sent by its node for it, or the
    picture a version of it was drawn on (frames are kept once by content, whoever sent them first)."""
    frame = s.get(SceneFrameRow, sha256)
    if frame is None:
        return None
    if (frame.node, frame.camera) == (node, camera):
        return frame
    drawn_on = s.scalars(
        select(SceneVersionRow.id).where(
            SceneVersionRow.node == node, SceneVersionRow.camera == camera, SceneVersionRow.frame_sha256 == sha256
        ).limit(1)
    ).first()
    return frame if drawn_on is not None else None


def _without_reference_image(config: dict[str, Any]) -> dict[str, Any]:
    scene = config.get("scene")
    if isinstance(scene, dict) and "reference_image" in scene:
        config = {**config, "scene": {k: v for k, v in scene.items() if k != "reference_image"}}
    return config


def save(
    sessions: sessionmaker[Session], node: str, camera: str, config: dict[str, Any], by: str, base_version: int | None,
    frame_sha256: str | None = None,
) -> tuple[SceneVersionRow | None, Checked]:
    """An admin's edit: a new console version (pending until the node applies it), or the errors.
    `base_version` is the version the editor started from: another save meanwhile is a conflict.

    `frame_sha256` is the uploaded frame the editor showed: the picture the scene was drawn on
    (without it, the camera's latest frame). The node fetches it with the version and makes it
    the camera's `scene.reference_image`, so a version with a frame carries no reference_image
    of its own (a path there is one of the node's files: the picture of an older scene)."""
    with sessions() as s:
        frame = latest_frame(s, node, camera) if frame_sha256 is None else frame_of(s, node, camera, frame_sha256)
        frame_sha = frame.sha256 if frame is not None else None
    if frame_sha256 is not None and frame_sha is None:
        raise UnknownFrame(f"{node}/{camera}: no uploaded frame {frame_sha256} of this camera to draw on")
    checked = check(_without_reference_image(config) if frame_sha else config, f"{node}/{camera}.yaml")
    if not checked.ok:
        return None, checked
    cam = (checked.config or {}).get("camera") or {}
    if cam.get("id") != camera:
        return None, Checked(checked.yaml, [f"{node}/{camera}.yaml: camera.id: must stay {camera!r}"], checked.config)
    with session_scope(sessions) as s:
        current = latest(s, node, camera)
        if current is None:
            raise SceneError(f"{node}/{camera}: unknown camera (its node has not reported it)")
        if base_version is not None and current.version != base_version:
            raise SceneConflict(f"{node}/{camera}: version {current.version} was saved meanwhile (by "
                                f"{current.created_by}); reload to edit the latest")
        row = _add_version(s, node, camera, checked.yaml, "console", by, "pending", frame_sha)
        return row, checked


class SceneConflict(SceneError):
    """The editor started from an older version than the latest."""


class UnknownFrame(SceneError):
    """The frame an edit names is not one this camera's node uploaded."""


def desired(sessions: sessionmaker[Session], node: str) -> dict[str, dict[str, Any]]:
    """For a node: each camera whose latest version is an admin's one still pending."""
    with sessions() as s:
        out = {}
        for summary in cameras(s):
            if summary["node"] != node or summary["state"] != "pending":
                continue
            row = version(s, node, summary["camera"], summary["version"])
            assert row is not None
            frame = frame_of(s, node, row.camera, row.frame_sha256) if row.frame_sha256 else None
            out[row.camera] = {
                "version": row.version, "yaml": row.yaml, "by": row.created_by, "at": row.created_at.isoformat(),
                # The picture it was drawn on: the node makes it the camera's scene.reference_image.
                "frame": None if row.frame_sha256 is None else {
                    "sha256": row.frame_sha256, "url": f"/api/v1/scenes/{row.camera}/frames/{row.frame_sha256}",
                    "width": frame.width if frame is not None else None,
                    "height": frame.height if frame is not None else None,
                },
            }
        return out


def drawing_png(config_yaml: str, jpeg: bytes | None) -> bytes:
    """The scene drawn on the reference frame, as `edge draw` draws it (a grey frame of the
    reference size when no frame came yet)."""
    import cv2  # the drawing needs OpenCV; central's other pages do not
    import numpy as np

    from edge.config import CameraConfig
    from edge.scene_drawing import draw_scene

    camera = CameraConfig.model_validate(yaml.safe_load(config_yaml))
    frame = None
    if jpeg:
        frame = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    if frame is None:
        w, h = camera.scene.reference_size
        frame = np.full((h, w, 3), 96, np.uint8)
    ok, png = cv2.imencode(".png", draw_scene(frame, camera))
    if not ok:
        raise SceneError("the drawing could not be encoded")
    return png.tobytes()


def request_debug_recording(config: Any, node: str, camera: str, seconds: float, timeout_s: float = 5.0) -> str:
    """Publish `<prefix>/<node>/<camera>/debug/record` `{"seconds": N}` with central's broker
    account (allowed that topic: central.broker_security) and wait for the broker's PUBACK; the
    topic is returned. SceneError when N is out of (0, 120], or the broker is not reached or refuses."""
    import json
    import uuid

    from contract.mqtt import MqttClient

    if not 0 < seconds <= MAX_DEBUG_SECONDS:
        raise SceneError(f"debug record: seconds must be a number in (0, {MAX_DEBUG_SECONDS}]")
    topic = f"{config.mqtt.topic_prefix}/{node}/{camera}/debug/record"
    client = MqttClient(config.mqtt.client_settings(f"{config.mqtt.effective_client_id}-debug-{uuid.uuid4().hex[:8]}"))
    client.start()
    try:
        if not client.connected.wait(timeout_s):
            raise SceneError(f"the broker ({config.mqtt.url}) was not reached: {client.last_connack or 'no answer'}")
        ack = client.publish_wait(topic, json.dumps({"seconds": seconds}).encode(), qos=1, timeout=timeout_s)
        if ack is None or not ack.ok:
            raise SceneError(f"the broker did not take the request: {ack.reason if ack else 'no PUBACK'}")
        return topic
    finally:
        client.stop()
