"""Camera scenes: the drawing of each camera (operators, admins), the scene editor (admins) and the
nodes' side of it (`/api/v1/scenes`, HTTP Basic with the node's upload token, as evidence uploads).

How the versions flow: `central.services.scenes`."""

# No `from __future__ import annotations`: FastAPI must see the real types of the dependencies.
import base64
import binascii
import hmac
from pathlib import Path
from typing import Annotated, Any

import yaml
from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from fastapi.security import HTTPBasic, HTTPBasicCredentials
from pydantic import BaseModel, Field

from central import auth
from central.db import session_scope, utcnow
from central.services import scenes
from central.services.access import REVIEWERS
from central.web.deps import Csrf, Ctx, require

router = APIRouter()

ReviewerPage = Annotated[auth.SessionInfo, Depends(require(*REVIEWERS, page=True))]
Reviewer = Annotated[auth.SessionInfo, Depends(require(*REVIEWERS))]
AdminPage = Annotated[auth.SessionInfo, Depends(require("admin", page=True))]
Admin = Annotated[auth.SessionInfo, Depends(require("admin"))]
ID = r"^[a-z0-9][a-z0-9_-]{0,63}$"
_basic = HTTPBasic(auto_error=False, realm="ioc-scenes")


SHA256 = r"^[0-9a-f]{64}$"


class EditBody(BaseModel):
    config: dict[str, Any]
    base_version: int | None = None
    # The uploaded frame the editor showed (the picture the scene is drawn on); None: the latest.
    frame_sha256: str | None = Field(None, pattern=SHA256)


class NodeReportOut(BaseModel):
    version: int
    state: str


class DesiredFrame(BaseModel):
    sha256: str
    url: str  # GET with the node's token: the JPEG
    width: int | None
    height: int | None


class DesiredScene(BaseModel):
    version: int
    yaml: str
    by: str
    at: str
    frame: DesiredFrame | None = None  # the picture it was drawn on: the camera's scene.reference_image


class NodeDesiredOut(BaseModel):
    node: str
    cameras: dict[str, DesiredScene]


class SceneOut(BaseModel):
    node: str
    camera: str
    version: int
    state: str
    origin: str
    config: dict[str, Any]
    yaml: str
    frame: str | None
    frame_sha256: str | None
    frame_size: list[int] | None


class CheckOut(BaseModel):
    ok: bool
    errors: list[str]
    yaml: str | None


class DebugUploadOut(BaseModel):
    sha256: str
    size: int


class ReportBody(BaseModel):
    yaml: str = Field(max_length=scenes.MAX_YAML_BYTES)
    frame_jpeg_b64: str | None = Field(None, max_length=scenes.MAX_FRAME_BYTES * 4 // 3 + 8)
    applied: int | None = None
    refused: int | None = None
    error: str | None = Field(None, max_length=4000)


def _node_of(request: Request, credentials: Annotated[HTTPBasicCredentials | None, Depends(_basic)]) -> str:
    tokens = request.app.state.config.uploads.nodes
    expected = tokens.get(credentials.username).encode() if credentials and credentials.username in tokens else None
    given = credentials.password.encode() if credentials else b""
    # compare_digest on a dummy as well: the timing says nothing about which node ids exist.
    if not hmac.compare_digest(given, expected or b"\0" * 32) or expected is None:
        raise HTTPException(401, "unknown node or wrong token", headers={"WWW-Authenticate": "Basic"})
    return credentials.username  # type: ignore[union-attr]


Node = Annotated[str, Depends(_node_of)]


def _check_ids(*ids: str) -> None:
    import re

    for i in ids:
        if not re.fullmatch(ID, i):
            raise HTTPException(404, "no such camera")


# ------------------------------------------------------------------------------- nodes' side


@router.put("/api/v1/scenes/{camera}", tags=["edge"], summary="A node reports a camera's running config",
            response_model=NodeReportOut)
def node_report(ctx: Ctx, camera: str, body: ReportBody, node: Node) -> dict[str, Any]:
    _check_ids(camera)
    frame = None
    if body.frame_jpeg_b64:
        try:
            frame = base64.b64decode(body.frame_jpeg_b64, validate=True)
        except (binascii.Error, ValueError):
            raise HTTPException(422, "frame_jpeg_b64: not base64") from None
    try:
        return scenes.report(ctx.sessions, node, camera, body.yaml, frame_jpeg=frame, applied=body.applied,
                             refused=body.refused, error=body.error)
    except scenes.SceneError as e:
        raise HTTPException(422, str(e)) from None


@router.get("/api/v1/scenes", tags=["edge"], summary="A node asks for the configs an admin saved for it",
            response_model=NodeDesiredOut)
def node_desired(ctx: Ctx, node: Node) -> dict[str, Any]:
    return {"node": node, "cameras": scenes.desired(ctx.sessions, node)}


@router.get("/api/v1/scenes/{camera}/frames/{sha256}", tags=["edge"],
            summary="A node fetches the frame a scene version was drawn on", response_class=Response,
            responses={200: {"content": {"image/jpeg": {}}}, 404: {"description": "not a frame of this camera"}})
def node_frame(ctx: Ctx, camera: str, sha256: str, node: Node) -> Response:
    """The JPEG the node uploaded and an admin drew the version on (`frame.url` of `GET
    /api/v1/scenes`); only the camera's own frames, to its own node. The node checks the sha256."""
    import re

    _check_ids(camera)
    if not re.fullmatch(SHA256, sha256):
        raise HTTPException(404, "not a sha256")
    with ctx.sessions() as s:
        frame = scenes.frame_of(s, node, camera, sha256)
        if frame is None:
            raise HTTPException(404, "no such frame of this camera")
        return Response(frame.jpeg, media_type="image/jpeg",
                        headers={"Cache-Control": "private, no-store", "X-Frame-Sha256": frame.sha256})


@router.put("/api/v1/scenes/{camera}/debug/{sha256}", tags=["edge"], summary="A node uploads a debug video",
            response_model=DebugUploadOut)
async def node_debug_upload(ctx: Ctx, camera: str, sha256: str, request: Request, node: Node) -> dict[str, Any]:
    """The body is the MP4; kept only if it hashes to `sha256` and has the declared length."""
    import hashlib
    import os

    from central.evidence import is_sha256, sniff_media_type

    _check_ids(camera)
    if not is_sha256(sha256):
        raise HTTPException(404, "not a sha256")
    length = request.headers.get("content-length")
    if length is None or not length.isdigit() or int(length) == 0:
        raise HTTPException(411, "Content-Length is required")
    limit = int(ctx.config.uploads.max_size_mb * 1024 * 1024)
    if int(length) > limit:
        raise HTTPException(413, f"larger than {ctx.config.uploads.max_size_mb:g} MB")
    folder = Path(ctx.config.evidence_dir) / "debug" / node / camera
    folder.mkdir(parents=True, exist_ok=True)
    target, part = folder / f"{sha256}.mp4", folder / f".{sha256}.part"
    digest, received, head = hashlib.sha256(), 0, b""
    try:
        with open(part, "wb") as f:
            async for chunk in request.stream():
                received += len(chunk)
                if received > int(length):
                    raise HTTPException(422, "body longer than Content-Length")
                head += chunk[: max(0, 16 - len(head))]
                digest.update(chunk)
                f.write(chunk)
        if received != int(length) or digest.hexdigest() != sha256:
            raise HTTPException(422, "the body is not the file its sha256 names")
        if sniff_media_type(head) != "video/mp4":
            raise HTTPException(422, "not an MP4")
        os.replace(part, target)
    finally:
        part.unlink(missing_ok=True)
    with session_scope(ctx.sessions) as s:
        if s.get(scenes.DebugRecordingRow, sha256) is None:
            s.add(scenes.DebugRecordingRow(sha256=sha256, node=node, camera=camera, size=received,
                                           path=str(target), received_at=utcnow()))
    return {"sha256": sha256, "size": received}


@router.get("/scenes/{node}/{camera}/debug/{sha256}.mp4", include_in_schema=False)
def debug_video(ctx: Ctx, node: str, camera: str, sha256: str, _info: Reviewer) -> FileResponse:
    _check_ids(node, camera)
    with ctx.sessions() as s:
        row = s.get(scenes.DebugRecordingRow, sha256)
    if row is None or (row.node, row.camera) != (node, camera) or not Path(row.path).is_file():
        raise HTTPException(404, "no such debug video")
    return FileResponse(row.path, media_type="video/mp4", headers={"Cache-Control": "private, no-store"})


# ------------------------------------------------------------------------------ the console


@router.get("/scenes", response_class=HTMLResponse, include_in_schema=False)
def scenes_page(request: Request, ctx: Ctx, _info: ReviewerPage) -> Response:
    with ctx.sessions() as s:
        rows = scenes.cameras(s)
    return ctx.render(request, "scenes.html", cameras=rows)


def _version_or_404(ctx: Ctx, node: str, camera: str, number: int | None) -> scenes.SceneVersionRow:
    _check_ids(node, camera)
    with ctx.sessions() as s:
        row = scenes.latest(s, node, camera) if number is None else scenes.version(s, node, camera, number)
    if row is None:
        raise HTTPException(404, "no such camera or version")
    return row


@router.get("/scenes/{node}/{camera}", response_class=HTMLResponse, include_in_schema=False)
def scene_page(request: Request, ctx: Ctx, node: str, camera: str, info: ReviewerPage) -> Response:
    current = _version_or_404(ctx, node, camera, None)
    with ctx.sessions() as s:
        history = scenes.versions(s, node, camera)
        videos = scenes.recordings(s, node, camera)
    return ctx.render(request, "scene.html", node=node, camera=camera, current=current, history=history,
                      can_edit=info.user.role == "admin", debug_requested=request.query_params.get("debug_requested"),
                      max_debug_s=scenes.MAX_DEBUG_SECONDS, videos=videos)


@router.get("/scenes/{node}/{camera}/drawing.png", include_in_schema=False)
def scene_drawing(ctx: Ctx, node: str, camera: str, _info: Reviewer, version: int | None = None) -> Response:
    row = _version_or_404(ctx, node, camera, version)
    with ctx.sessions() as s:
        frame = s.get(scenes.SceneFrameRow, row.frame_sha256) if row.frame_sha256 else None
        jpeg = frame.jpeg if frame is not None else None
    png = scenes.drawing_png(row.yaml, jpeg)
    return Response(png, media_type="image/png", headers={"Cache-Control": "private, no-store"})


@router.get("/scenes/{node}/{camera}/frame.jpg", include_in_schema=False)
def scene_frame(ctx: Ctx, node: str, camera: str, _info: Reviewer, sha256: str | None = None) -> Response:
    """The camera's latest uploaded frame, or the one named by `sha256` (what the editor shows)."""
    _check_ids(node, camera)
    with ctx.sessions() as s:
        frame = scenes.latest_frame(s, node, camera) if sha256 is None else scenes.frame_of(s, node, camera, sha256)
        if frame is None:
            raise HTTPException(404, "no reference frame from this camera yet")
        return Response(frame.jpeg, media_type="image/jpeg", headers={"Cache-Control": "private, no-store"})


@router.get("/scenes/{node}/{camera}/edit", response_class=HTMLResponse, include_in_schema=False)
def editor_page(request: Request, ctx: Ctx, node: str, camera: str, _info: AdminPage) -> Response:
    current = _version_or_404(ctx, node, camera, None)
    return ctx.render(request, "scene_editor.html", node=node, camera=camera, current=current)


@router.get("/api/scenes/{node}/{camera}", tags=["scenes"], summary="A camera's latest config version",
            response_model=SceneOut)
def api_scene(ctx: Ctx, node: str, camera: str, _info: Reviewer) -> dict[str, Any]:
    row = _version_or_404(ctx, node, camera, None)
    with ctx.sessions() as s:
        frame = scenes.latest_frame(s, node, camera)
    return {
        "node": node, "camera": camera, "version": row.version, "state": row.state, "origin": row.origin,
        "config": yaml.safe_load(row.yaml), "yaml": row.yaml,
        # The frame named by its sha256: the editor saves the version with the picture it showed.
        "frame": f"/scenes/{node}/{camera}/frame.jpg?sha256={frame.sha256}" if frame else None,
        "frame_sha256": frame.sha256 if frame else None,
        "frame_size": [frame.width, frame.height] if frame else None,
    }


@router.post("/api/scenes/{node}/{camera}/check", tags=["scenes"], summary="Validate an edited config (check-config)",
             response_model=CheckOut)
def api_check(ctx: Ctx, node: str, camera: str, body: EditBody, _info: Admin) -> dict[str, Any]:
    _check_ids(node, camera)
    checked = scenes.check(body.config, f"{node}/{camera}.yaml")
    return {"ok": checked.ok, "errors": checked.errors, "yaml": checked.yaml}


@router.post("/api/scenes/{node}/{camera}/versions", tags=["scenes"], summary="Save an edited config: a new version",
             status_code=201)
def api_save(ctx: Ctx, node: str, camera: str, body: EditBody, info: Csrf, response: Response) -> dict[str, Any]:
    if info.user.role != "admin":
        raise HTTPException(403, "only an admin edits a camera's scene")
    _check_ids(node, camera)
    try:
        row, checked = scenes.save(ctx.sessions, node, camera, body.config, info.user.username, body.base_version,
                                   frame_sha256=body.frame_sha256)
    except scenes.SceneConflict as e:
        raise HTTPException(409, str(e)) from None
    except scenes.UnknownFrame as e:
        raise HTTPException(422, str(e)) from None
    except scenes.SceneError as e:
        raise HTTPException(404, str(e)) from None
    if row is None:
        response.status_code = 422
        return {"ok": False, "errors": checked.errors, "yaml": checked.yaml}
    return {"ok": True, "version": row.version, "state": row.state, "created_by": row.created_by,
            "created_at": row.created_at.isoformat(), "yaml": row.yaml, "frame_sha256": row.frame_sha256}


@router.post("/scenes/{node}/{camera}/debug-record", include_in_schema=False)
def debug_record_form(
    ctx: Ctx, node: str, camera: str, info: Csrf, seconds: Annotated[float, Form()] = 30.0
) -> RedirectResponse:
    """The console's button: ask the node to record this camera's debug stream for `seconds`."""
    if info.user.role != "admin":
        raise HTTPException(403, "only an admin asks for a debug recording")
    _version_or_404(ctx, node, camera, None)
    try:
        scenes.request_debug_recording(ctx.config, node, camera, seconds)
    except scenes.SceneError as e:
        raise HTTPException(422 if "seconds" in str(e) else 502, str(e)) from None
    return RedirectResponse(f"/scenes/{node}/{camera}?debug_requested={seconds:g}", status_code=303)

