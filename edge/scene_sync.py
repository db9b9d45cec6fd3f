"""A live node's camera configs and central's console: report what runs, apply what an admin saved.

Over HTTP to central (`upload.url`, HTTP Basic with the node's upload token, as evidence uploads;
the node connects, so it works behind NAT):

- each camera's running config (without `camera.source`: an RTSP URL carries the camera's
  password) and a reference frame (the first frame the camera analysed, as the edge sees it) go
  to `PUT /api/v1/scenes/<camera>` when the node starts and whenever that camera's config changes;
- every `interval_s` the node asks `GET /api/v1/scenes` for versions an admin saved in the scene
  editor. A new version is validated as `check-config --camera` validates it (and its model files
  must exist here); a bad one is refused, the error reported back, and the old config keeps
  running. A good one is written atomically to `<state_dir>/scenes/<camera>.yaml` (the previous
  one kept as `<camera>.prev.yaml`), handed to the camera thread, which rebuilds that camera's
  rules between two frames (no restart), and reported `applied`.
- a version comes with the frame it was drawn on (`frame`: its sha256): the node fetches it
  (`GET /api/v1/scenes/<camera>/frames/<sha256>`, the same token), checks that it hashes to that
  sha256 and decodes, writes it beside the scene (`<camera>.ref-<sha256[:16]>-<w>x<h>.jpg`, in
  one rename; scaled to `scene.reference_size` if the frame had another size, as the editor showed it) and
  names it `scene.reference_image` in the written config: frames are then registered to the
  picture the admin drew on (edge.registration), from the swap on. A picture central does not
  have, or one that does not verify, refuses the version like an invalid scene (the old config
  and its reference keep running): a scene judged against another reference than the one it was
  drawn on puts its lines and boxes where they were not drawn. Central not reached is retried.

The saved file is read again when the node starts (`apply_saved`): an edit survives a restart,
on top of the camera's own file (the node config's `source` and `id` still win).
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import re
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import yaml

from contract.configfile import ConfigError
from edge.config import CameraConfig, camera_run_problems, load_camera_config

if TYPE_CHECKING:
    from edge.node import CameraWorker

log = logging.getLogger("edge.scene_sync")


def _chunks(path: Path, size: int = 256 * 1024) -> Iterator[bytes]:
    with open(path, "rb") as f:
        while chunk := f.read(size):
            yield chunk


MAX_PICTURE_BYTES = 8 * 1024 * 1024
_SHA256 = re.compile(r"[0-9a-f]{64}")


def picture_name(camera_id: str, sha256: str, size: tuple[int, int]) -> str:
    """The file beside `<camera>.yaml` that holds the frame `sha256` a console version was drawn
    on, at the scene's reference `size` (width, height)."""
    return f"{camera_id}.ref-{sha256[:16]}-{size[0]}x{size[1]}.jpg"


def running_yaml(camera: CameraConfig, scenes_folder: Path | None = None) -> str:
    """The config as central gets it: what the file set, without the source. A reference picture
    that is the node's copy of a console version's frame (in `scenes_folder`) is not said either:
    central knows that version's picture by its sha256, the path is the node's."""
    data = camera.model_dump(mode="json", exclude_unset=True)
    data.get("camera", {}).pop("source", None)
    data.get("camera", {}).pop("record_source", None)  # the main stream's URL carries the password too
    ref = camera.scene.reference_image
    if scenes_folder is not None and ref is not None and ref.resolve().parent == scenes_folder.resolve():
        data.get("scene", {}).pop("reference_image", None)
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, default_flow_style=None, width=120)


def with_reference_image(text: str, picture: str | None) -> str:
    """`text` (a camera config mapping) with `scene.reference_image: picture` (None: without one)."""
    data = yaml.safe_load(text)
    if not isinstance(data, dict):
        return text
    scene = {k: v for k, v in (data.get("scene") or {}).items() if k != "reference_image"}
    data["scene"] = scene if picture is None else {**scene, "reference_image": picture}
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, default_flow_style=None, width=120)


def validate(text: str, running: CameraConfig, name: str, base: Path | None = None) -> CameraConfig:
    """`text` (a camera config from central) as this node would run it: its own source and id
    kept; raises ConfigError with `check-config`'s lines (naming `name`), or a run problem. A
    relative `scene.reference_image` is a file in `base` (the folder of the scene's file)."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ConfigError(f"{name}: not valid YAML: {e}") from None
    if not isinstance(data, dict) or not isinstance(data.get("camera"), dict):
        raise ConfigError(f"{name}: not a camera config (no camera: mapping)")
    scene = data.get("scene")
    ref = scene.get("reference_image") if isinstance(scene, dict) else None
    if base is not None and isinstance(scene, dict) and isinstance(ref, str) and not Path(ref).is_absolute():
        scene["reference_image"] = str((base / ref).resolve())
    if data["camera"].get("id") != running.camera.id:
        raise ConfigError(f"{name}: camera.id: {data['camera'].get('id')!r} is not this camera ({running.camera.id!r})")
    data["camera"]["source"] = running.camera.source
    data["camera"].pop("record_source", None)
    if running.camera.record_source:
        data["camera"]["record_source"] = running.camera.record_source
    with tempfile.TemporaryDirectory(prefix="scene-") as tmp:
        path = Path(tmp) / "camera.yaml"
        path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
        try:
            camera = load_camera_config(path)
        except ConfigError as e:
            raise ConfigError(str(e).replace(str(path), name)) from None
        problems = [p.replace(str(path), name) for p in camera_run_problems(path, camera, source_key="node")]
    if problems:
        raise ConfigError("\n".join(problems))
    return camera


def _synced_temp(folder: Path, prefix: str, suffix: str, data: bytes) -> str:
    """`data` in a new temporary file in `folder`, on disk (fsync) before anyone renames it in."""
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=prefix, suffix=suffix)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return tmp


def write_atomically(folder: Path, camera_id: str, text: str, version: int) -> Path:
    """`<camera>.yaml` replaced in one rename (a crash leaves the old or the new, never half), the
    previous kept as `<camera>.prev.yaml`."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{camera_id}.yaml"
    body = f"# scene version {version} from central's console\n{text}"
    tmp = _synced_temp(folder, f".{camera_id}.", ".yaml", body.encode("utf-8"))
    try:
        if target.exists():
            os.replace(target, folder / f"{camera_id}.prev.yaml")
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    (folder / f"{camera_id}.version").write_text(str(version), encoding="utf-8")
    return target


def write_picture(folder: Path, camera_id: str, data: bytes, sha256: str, reference_size: tuple[int, int],
                  name: str) -> Path:
    """The frame a console version was drawn on, checked (it hashes to `sha256`, it decodes) and
    written in one rename as `picture_name(...)`; a frame of another size than
    `reference_size` is scaled to it (the editor showed it so, and the scene scales so to any
    stream). ConfigError (naming `name`'s scene.reference_image) when it does not verify."""
    import cv2  # the node has OpenCV; importing this module must not need it
    import numpy as np

    key = f"{name}: scene.reference_image"
    got = hashlib.sha256(data).hexdigest()
    if got != sha256:
        raise ConfigError(f"{key}: the picture central sent is not the frame {sha256} it was drawn on (sha256 {got})")
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise ConfigError(f"{key}: the frame {sha256} it was drawn on is not a picture OpenCV can read")
    h, w = image.shape[:2]
    rw, rh = reference_size
    if (w, h) != (rw, rh):
        small = w * h > rw * rh
        image = cv2.resize(image, (rw, rh), interpolation=cv2.INTER_AREA if small else cv2.INTER_LINEAR)
        ok, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 95])
        if not ok:
            raise ConfigError(f"{key}: the frame {sha256} could not be scaled to {rw}x{rh}")
        data = jpeg.tobytes()
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / picture_name(camera_id, sha256, (rw, rh))
    tmp = _synced_temp(folder, f".{camera_id}.", ".jpg", data)
    try:
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def prune_pictures(folder: Path, camera_id: str) -> None:
    """Remove the camera's console pictures that neither `<camera>.yaml` nor `.prev.yaml` names."""
    keep = set()
    for f in (folder / f"{camera_id}.yaml", folder / f"{camera_id}.prev.yaml"):
        try:
            ref = ((yaml.safe_load(f.read_text(encoding="utf-8")) or {}).get("scene") or {}).get("reference_image")
        except (OSError, yaml.YAMLError, AttributeError):
            continue
        if isinstance(ref, str):
            keep.add(Path(ref).name)
    mine = re.compile(re.escape(camera_id) + r"\.ref-[0-9a-f]{16}-[0-9]+x[0-9]+\.jpg")
    for p in folder.iterdir() if folder.is_dir() else ():
        if mine.fullmatch(p.name) and p.name not in keep:
            p.unlink(missing_ok=True)


def apply_saved(folder: Path, cameras: list[CameraConfig]) -> list[CameraConfig]:
    """The cameras with the scene versions saved here earlier (a restart keeps the console's edit);
    a saved file that no longer validates is logged and skipped (the camera's own file runs)."""
    out = []
    for cam in cameras:
        saved = folder / f"{cam.camera.id}.yaml"
        if saved.is_file():
            try:
                cam = validate(saved.read_text(encoding="utf-8"), cam, str(saved), base=folder)
                log.info("scene from the console", extra={"fields": {"camera": cam.camera.id, "file": str(saved)}})
            except ConfigError as e:
                log.error("saved scene not usable, the camera's own config runs",
                          extra={"fields": {"camera": cam.camera.id, "error": str(e)}})
        out.append(cam)
    return out


def saved_version(folder: Path, camera_id: str) -> int:
    try:
        return int((folder / f"{camera_id}.version").read_text(encoding="utf-8").strip())
    except (OSError, ValueError):
        return 0


class SceneSync(threading.Thread):
    def __init__(
        self, workers: list[CameraWorker], folder: Path, url: str, node_id: str, token: str, *,
        interval_s: float = 10.0, timeout_s: float = 30.0, stopping: threading.Event | None = None,
    ) -> None:
        super().__init__(name="scene-sync", daemon=True)
        self.workers = {w.camera.camera.id: w for w in workers}
        self.folder = folder
        self.interval_s = interval_s
        self.stopping = stopping or threading.Event()
        self._wake = threading.Event()
        self._client = httpx.Client(
            base_url=url.rstrip("/"), auth=(node_id, token), timeout=httpx.Timeout(timeout_s, connect=10.0),
            headers={"User-Agent": f"ioc-edge/{node_id}"},
        )
        self.reported: dict[str, tuple[int, bool]] = {}  # camera -> (id of the config sent, with a frame)
        self.applied = {cam: saved_version(folder, cam) for cam in self.workers}
        self.refused: dict[tuple[str, int], str] = {}  # (camera, version) -> the node's error
        self.errors = 0
        self._debug_lock = threading.Lock()
        self.debug_videos: list[tuple[str, Path, str, int]] = []  # (camera, file, sha256, size) to send
        self.debug_sent: list[str] = []

    def upload_debug(self, camera: str, path: Path, sha256: str, size: int) -> None:
        """Send a finished debug video to central (for the console to link), retried until it is there."""
        with self._debug_lock:
            self.debug_videos.append((camera, path, sha256, size))
        self._wake.set()

    def stop(self) -> None:
        self.stopping.set()
        self._wake.set()
        self.join(timeout=5)
        self._client.close()

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                self.sync_once()
            except httpx.HTTPError as e:
                self.errors += 1
                log.warning("central not reached for scenes; retried", extra={"fields": {"error": str(e)}})
            except Exception:  # a bad answer must not end the thread: said, retried
                self.errors += 1
                log.exception("scene sync failed; retried")
            self._wake.wait(self.interval_s)
            self._wake.clear()

    def sync_once(self) -> None:
        with self._debug_lock:
            videos = list(self.debug_videos)
        for camera, path, sha256, size in videos:
            if path.is_file():
                r = self._client.put(
                    f"/api/v1/scenes/{camera}/debug/{sha256}", content=_chunks(path),
                    headers={"Content-Type": "video/mp4", "Content-Length": str(size)},
                )
                if r.status_code in (411, 413, 422):  # the file itself is refused: retrying cannot help
                    log.error("central refused the debug video", extra={"fields": {"file": str(path), "detail": r.text[:300]}})
                else:
                    r.raise_for_status()
                    self.debug_sent.append(sha256)
            with self._debug_lock:
                self.debug_videos.remove((camera, path, sha256, size))
        for cam_id, worker in self.workers.items():
            cam, frame = worker.camera, worker.reference_frame
            sent = self.reported.get(cam_id)
            # At start, once the first frame is there, and after every change of config.
            if sent is None or sent[0] != id(cam) or (frame is not None and not sent[1]):
                self._report(cam_id, cam, frame)
        r = self._client.get("/api/v1/scenes")
        r.raise_for_status()
        for cam_id, want in (r.json().get("cameras") or {}).items():
            worker = self.workers.get(cam_id)
            number = int(want["version"])
            if worker is None or number <= self.applied.get(cam_id, 0) or (cam_id, number) in self.refused:
                continue
            self._apply(worker, number, str(want["yaml"]), str(want.get("by", "")), want.get("frame"))

    def _report(self, cam_id: str, cam: CameraConfig, frame: Any, **outcome: Any) -> None:
        body: dict[str, Any] = {"yaml": running_yaml(cam, self.folder), **outcome}
        if frame is not None:
            import cv2  # the node has OpenCV; importing this module must not need it

            ok, jpeg = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 90])
            if ok:
                body["frame_jpeg_b64"] = base64.b64encode(jpeg.tobytes()).decode()
        r = self._client.put(f"/api/v1/scenes/{cam_id}", json=body)
        if r.status_code >= 400:
            log.error("central refused the scene report",
                      extra={"fields": {"camera": cam_id, "status": r.status_code, "detail": r.text[:500]}})
            r.raise_for_status()
        self.reported[cam_id] = (id(cam), frame is not None)

    def _picture(self, cam_id: str, frame: Any, reference_size: tuple[int, int], name: str) -> Path:
        """The node's copy of the frame a version was drawn on (fetched once). ConfigError when
        central does not have it or it does not verify (the version is refused); httpx.HTTPError
        when central is not reached or fails (tried again at the next sync)."""
        sha = frame.get("sha256") if isinstance(frame, dict) else None
        if not isinstance(sha, str) or not _SHA256.fullmatch(sha):
            raise ConfigError(f"{name}: scene.reference_image: central named no sha256 for the frame it was drawn on")
        local = self.folder / picture_name(cam_id, sha, reference_size)
        if local.is_file():  # written by write_picture, after it verified
            return local
        # The URL is built here, not taken from the answer: the token goes to central only.
        r = self._client.get(f"/api/v1/scenes/{cam_id}/frames/{sha}")
        if r.status_code in (404, 410):
            raise ConfigError(f"{name}: scene.reference_image: central has no frame {sha} (HTTP {r.status_code}): "
                              "the picture the scene was drawn on cannot be fetched")
        r.raise_for_status()
        if len(r.content) > MAX_PICTURE_BYTES:
            raise ConfigError(f"{name}: scene.reference_image: the frame {sha} is larger than "
                              f"{MAX_PICTURE_BYTES // (1024 * 1024)} MB")
        return write_picture(self.folder, cam_id, r.content, sha, reference_size, name)

    def _refuse(self, worker: CameraWorker, number: int, by: str, error: str) -> None:
        cam_id = worker.camera.camera.id
        self.refused[(cam_id, number)] = error
        log.error("scene version refused, the old config keeps running",
                  extra={"fields": {"camera": cam_id, "version": number, "by": by, "error": error}})
        self._report(cam_id, worker.camera, None, refused=number, error=error)

    def _apply(self, worker: CameraWorker, number: int, text: str, by: str, frame: Any = None) -> None:
        cam_id = worker.camera.camera.id
        name = f"{cam_id}.yaml (version {number})"
        try:
            if frame is not None:
                # The picture it was drawn on becomes the camera's reference view, named relative
                # to the written file (beside it); any other reference_image in the text gives way.
                new = validate(with_reference_image(text, None), worker.camera, name, base=self.folder)
                picture = self._picture(cam_id, frame, new.scene.reference_size, name)
                text = with_reference_image(text, picture.name)
            new = validate(text, worker.camera, name, base=self.folder)
        except ConfigError as e:
            prune_pictures(self.folder, cam_id)
            self._refuse(worker, number, by, str(e))
            return
        if saved_version(self.folder, cam_id) != number:  # tried before: keep the .prev of the old one
            write_atomically(self.folder, cam_id, text, number)
            prune_pictures(self.folder, cam_id)
        if not worker.reconfigure(new, timeout=30):
            # The camera thread is not taking frames (reconnecting): asked again at the next sync.
            log.warning("scene version written; the camera has not taken it yet",
                        extra={"fields": {"camera": cam_id, "version": number}})
            return
        self.applied[cam_id] = number
        log.info("scene version applied", extra={"fields": {"camera": cam_id, "version": number, "by": by,
                                                            "reference_image": str(new.scene.reference_image)}})
        self._report(cam_id, worker.camera, worker.reference_frame, applied=number)
