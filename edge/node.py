"""The live edge node: one thread per camera (source -> analyzer -> outbox), one publisher.

Cameras never wait on each other or on the network: a camera thread only writes to the local
outbox; the publisher drains it when the broker is there.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import deque
from dataclasses import asdict, is_dataclass
from datetime import UTC, datetime

from contract.topics import camera_health_topic, event_topic, evidence_topic, node_status_topic
from edge.analyze import make_detector
from edge.config import CameraConfig, NodeConfig, mqtt_client_id
from edge.data import default_node_state_dir, video_path
from edge.inference import InferencePool
from edge.motion import motion_gate_for
from edge.outbox import Outbox, OutboxMessage, UploadItem
from edge.pipeline import CameraAnalyzer, EventRecord
from edge.publisher import MqttPublisher
from edge.retention import RetentionWorker
from edge.signal_feed import SignalFeed
from edge.sources import open_source
from edge.uploader import EvidenceUploader
from pipelines.clips import ClipRecorder

log = logging.getLogger("edge.node")


def _now_iso() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


class CameraWorker(threading.Thread):
    def __init__(self, node: EdgeNode, camera: CameraConfig) -> None:
        super().__init__(name=f"camera-{camera.camera.id}", daemon=True)
        self.node = node
        self.camera = camera
        self.health: dict = {"state": "starting"}
        self.events = 0
        self.source = None
        self.recorder: ClipRecorder | None = None
        self.analyzer: CameraAnalyzer | None = None
        # (wall time the analysis of a frame ended, its lag behind the frame's arrival): the last minute.
        self._analysed: deque[tuple[float, float]] = deque()
        self._overloaded = False

    METRICS_WINDOW_S = 10.0

    def metrics(self) -> dict:
        """How well this camera keeps up: analysed fps against its target over the last 10 s, the
        lag of analysis behind the camera, slots missed (frames dropped under overload)."""
        now = time.time()
        recent = [(t, lag) for t, lag in list(self._analysed) if now - t <= self.METRICS_WINDOW_S]
        target = self.camera.camera.analysis_fps
        lags = sorted(lag for _, lag in recent)
        out: dict = {
            "analysis_fps_target": target,
            "analysis_fps": round(len(recent) / self.METRICS_WINDOW_S, 2),
            "lag_ms_p50": round(1000 * lags[len(lags) // 2], 1) if lags else None,
            "lag_ms_max": round(1000 * lags[-1], 1) if lags else None,
        }
        if self.source is not None:
            out["slots_missed"] = self.source.health.slots_missed
        if self.analyzer is not None:
            out["frames_gated"] = self.analyzer.stats.gated
        return out

    def _note_analysed(self, frame_wall: float) -> None:
        now = time.time()
        self._analysed.append((now, now - frame_wall))
        while self._analysed and now - self._analysed[0][0] > 60:
            self._analysed.popleft()

    def run(self) -> None:
        cam = self.camera.camera
        try:
            clips = self.node.config.clips
            recorder = None
            if clips.enabled:
                # Fed with the compressed packets of the same connection that feeds detection.
                recorder = ClipRecorder(
                    self.node.clips_dir / cam.id,
                    pre_s=clips.pre_seconds,
                    post_s=clips.post_seconds,
                    max_bytes=int(clips.max_buffer_mb * 1024 * 1024),
                    name=cam.id,
                )
            self.recorder = recorder
            analyzer = CameraAnalyzer(
                self.node.config.node.id,
                self.camera,
                self.node.inference,
                clips=recorder,
                event_first=True,
                motion=motion_gate_for(self.camera),
            )
            self.analyzer = analyzer
            uri = cam.source or ""
            live: dict = {}
            if uri.lower().startswith(("rtsp://", "rtsps://")):
                live = {"platform": self.node.config.platform, "decoder_threads": self.node.config.decoder_threads or None}
            else:  # a file stands in for a camera: looped at its own pace
                uri = str(video_path(uri))
                live = {"loop": True, "realtime": True}
            self.source = open_source(
                uri,
                cam.analysis_fps,
                on_health=self._on_health,
                on_packet=recorder.add if recorder else None,
                **live,
            )
            if recorder is not None:
                recorder.rotation = getattr(self.source, "rotation", 0.0)  # files only; cameras send upright
            for frame in self.source.frames():
                if self.node.stopping.is_set():
                    break
                if self.node.signal_feed is not None:
                    self.node.signal_feed.apply(cam.id, analyzer.rules, frame.pts, frame.wall_time)
                for rec in analyzer.process(frame, datetime.fromtimestamp(frame.wall_time, UTC)):
                    self.node.submit(rec)
                    self.events += not rec.republish
                self._note_analysed(frame.wall_time)
                self.health["analysed_frames"] = analyzer.stats.frames
                if recorder is not None:
                    self.health["clip_buffer"] = {"bytes": recorder.ring.nbytes, "seconds": round(recorder.ring.span, 2)}
            # Stopping: events still waiting for post-event footage go out with what there is.
            for rec in analyzer.finish():
                self.node.submit(rec)
                self.events += not rec.republish
        except Exception:
            log.exception("camera worker failed", extra={"fields": {"camera": cam.id}})
            self.health = {"state": "failed", "at": _now_iso()}
            self.node.publish_health(cam.id, self.health)

    def _on_health(self, health) -> None:
        data = asdict(health) if is_dataclass(health) else dict(health)
        data["at"] = _now_iso()
        self.health = data
        log.info("camera health", extra={"fields": {"camera": self.camera.camera.id, **data}})
        self.node.publish_health(self.camera.camera.id, data)
        if data.get("state") in ("stalled", "reconnecting") and self.analyzer is not None:
            # The camera is gone for now: events waiting for post-event footage must not wait
            # for it to come back; they go out with the clip there is. (Called on this thread.)
            for rec in self.analyzer.finish():
                self.node.submit(rec)
                self.events += not rec.republish

    def stop(self) -> None:
        if self.source is not None:
            self.source.stop()


class EdgeNode:
    def __init__(self, config: NodeConfig, cameras: list[CameraConfig]) -> None:
        self.config = config
        self.cameras = cameras
        self.prefix = config.mqtt.topic_prefix
        node_id = config.node.id
        self.state_dir = config.node.state_dir or default_node_state_dir(node_id)
        self.evidence_dir = self.state_dir / "evidence"
        self.outbox = Outbox(self.state_dir / "outbox.sqlite3")
        self.status_topic = node_status_topic(self.prefix, node_id)
        self.publisher = MqttPublisher(
            self.outbox,
            config.mqtt.url,
            mqtt_client_id(config),
            will=(self.status_topic, json.dumps({"node": node_id, "state": "offline"}).encode()),
            # A node logs in as its node id: the broker's ACL lets it publish under that id only.
            username=config.mqtt.username or (node_id if config.mqtt.secret() else None),
            password=config.mqtt.secret(),
            keepalive_s=config.mqtt.keepalive_s,
            ca_file=str(config.mqtt.ca_file) if config.mqtt.ca_file else None,
        )
        self.clips_dir = self.state_dir / "clips"
        # Clips go to central over HTTP (MQTT payloads stay small); without `upload` they stay here.
        self.uploader = None
        if config.upload is not None:
            self.uploader = EvidenceUploader(
                self.outbox,
                config.upload.url,
                node_id,
                config.upload.token,
                timeout_s=config.upload.timeout_s,
                backoff_max_s=config.upload.retry_max_s,
            )
        self.retention = RetentionWorker(
            [self.evidence_dir, self.clips_dir],
            int(config.retention.quota_mb * 1024 * 1024),
            self.outbox.undelivered_paths,
            self.outbox.forget_uploads,
            config.retention.check_interval_s,
        )
        # Signal heads fed by a controller over MQTT (`source: controller`): one subscriber per node.
        self.signal_feed: SignalFeed | None = None
        if any(h.source == "controller" for c in cameras for h in c.scene.signals):
            self.signal_feed = SignalFeed(
                config.mqtt.url,
                mqtt_client_id(config) + "-signals",
                self.prefix,
                node_id,
                username=config.mqtt.username or (node_id if config.mqtt.secret() else None),
                password=config.mqtt.secret(),
                ca_file=str(config.mqtt.ca_file) if config.mqtt.ca_file else None,
            )
        self.stopping = threading.Event()
        # One pool of model sessions for all cameras (edge/inference.py), not one per camera.
        self.inference = InferencePool(
            lambda: make_detector(config.detector), config.inference.workers or None, config.inference.max_batch
        )
        self.workers = [CameraWorker(self, c) for c in cameras]
        self.started_at = time.time()

    def submit(self, rec: EventRecord) -> None:
        """Evidence to disk, then evidence + event into the outbox in one transaction."""
        ev = rec.event
        folder = self.evidence_dir / ev.camera / ev.id
        small = [f for f in rec.evidence if f.path is None]
        for f in small:
            f.write(folder)
        # Snapshots and crops (tens of kB) ride MQTT with the event; clips (MB) are files the
        # uploader sends over HTTP: the outbox holds only their path and sha256.
        messages = [OutboxMessage(evidence_topic(self.prefix, ev.node, ev.camera, f.sha256), f.data) for f in small]
        messages.append(OutboxMessage(event_topic(self.prefix, ev.node, ev.camera, ev.type.value), ev.to_json().encode()))
        uploads = []
        if self.uploader is not None:
            uploads = [
                UploadItem(f.sha256, str(f.path), f.size, f.media_type) for f in rec.evidence if f.path is not None
            ]
        self.outbox.put(messages, uploads)
        self.publisher.notify()
        if uploads and self.uploader is not None:
            self.uploader.notify()
        if rec.republish:
            log.info("event clip", extra={"fields": {"event_id": ev.id, "camera": ev.camera,
                                                     "clip": [f.sha256 for f in rec.evidence]}})
            return
        log.info(
            "event",
            extra={"fields": {"event_id": ev.id, "camera": ev.camera, "type": ev.type.value,
                              "zone": ev.zone.id if ev.zone else None, "details": ev.details}},
        )

    def publish_health(self, camera_id: str, health: dict) -> None:
        payload = json.dumps({"node": self.config.node.id, "camera": camera_id, **health}, default=str).encode()
        self.publisher.publish_state(camera_health_topic(self.prefix, self.config.node.id, camera_id), payload)

    def status(self) -> dict:
        return {
            "node": self.config.node.id,
            "state": "online",
            "at": _now_iso(),
            "uptime_s": round(time.time() - self.started_at, 1),
            "outbox_backlog": self.outbox.backlog(),
            "outbox_oldest_s": self.outbox.oldest_age(),
            "published": self.publisher.acked,
            "held_no_subscriber": self.publisher.unheard,
            "uploads": self.uploader.status() if self.uploader else None,
            # Loud on purpose: undelivered evidence is never deleted, so a full disk needs a person.
            "disk_full": self.retention.status.disk_full,
            "storage": self.retention.status.as_dict(),
            "inference": self.inference.stats.snapshot(),
            "cameras": {w.camera.camera.id: {"events": w.events, **w.health, **w.metrics()} for w in self.workers},
        }

    def run(self) -> None:
        self.publisher.start()
        if self.uploader is not None:
            self.uploader.start()
        self.retention.start()
        if self.signal_feed is not None:
            self.signal_feed.start()
        for w in self.workers:
            w.start()
        log.info("edge node started", extra={"fields": {"node": self.config.node.id, "cameras": len(self.workers)}})
        while True:
            status = self.status()
            self._say_overload(status["cameras"])
            self.publisher.publish_state(self.status_topic, json.dumps(status, default=str).encode())
            if self.stopping.wait(self.config.status_interval_s):
                break
            if not any(w.is_alive() for w in self.workers):
                log.error("all camera workers have ended")
                break

    def _say_overload(self, cameras: dict) -> None:
        """A camera analysed below 95% of its rate (or lagging > 1 s) is overloaded: log it once
        when it starts and once when it ends; the status carries it all the time."""
        for w in self.workers:
            m = cameras.get(w.camera.camera.id, {})
            if m.get("analysis_fps") is None or time.time() - self.started_at < 2 * w.METRICS_WINDOW_S:
                continue  # not enough history yet
            lagging = (m.get("lag_ms_p50") or 0) > 1000
            over = m["analysis_fps"] < 0.95 * m["analysis_fps_target"] or lagging
            m["overloaded"] = over
            if over != w._overloaded:
                w._overloaded = over
                (log.warning if over else log.info)(
                    "camera overloaded: analysis frames dropped" if over else "camera keeps up again",
                    extra={"fields": {"camera": w.camera.camera.id, **m}},
                )

    def stop(self) -> None:
        self.stopping.set()
        for w in self.workers:
            w.stop()
        for w in self.workers:
            w.join(timeout=5)
        self.inference.close()
        self.retention.stop()
        if self.signal_feed is not None:
            self.signal_feed.stop()
        if self.uploader is not None:
            self.uploader.stop()
        offline = json.dumps({"node": self.config.node.id, "state": "offline", "at": _now_iso()}).encode()
        self.publisher.stop(final_state=(self.status_topic, offline))
        self.outbox.close()

