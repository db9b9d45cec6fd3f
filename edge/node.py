"""The live edge node: one thread per camera (source -> analyzer), an evidence worker (evidence ->
outbox), one publisher.

Cameras never wait on each other, on the disk or on the network: a camera thread only analyses
and hands what it decided to the evidence worker (`edge.runtime.evidence_worker`: JPEGs, clips,
evidence files and the outbox, bounded and never blocking); the publisher drains the outbox when
the broker is there. A camera thread that crashes is restarted with backoff
(`edge.runtime.supervisor`), and its health says `restarting` (or `failed` when it gives up).

Status and health are the contract's types (`contract.status`): the node status every
`status_interval_s`, and each camera's health at every state change and again, with live
counters, with every node status.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections import deque
from datetime import UTC, datetime
from pathlib import Path

from contract.mqtt import Will
from contract.status import CameraHealth, NodeStatus
from contract.topics import camera_health_topic, event_topic, evidence_topic, node_status_topic
from edge.analyze import make_detector
from edge.config import CameraConfig, NodeConfig, camera_detector, mqtt_client_id
from edge.data import default_node_state_dir, video_path
from edge.debug_video import MAX_RECORD_SECONDS, DebugTap, record_seconds
from edge.inference import InferencePool
from edge.motion import motion_gate_for
from edge.outbox import Outbox, OutboxMessage, UploadItem
from edge.pipeline import EventRecord
from edge.publisher import MqttPublisher
from edge.retention import RetentionWorker
from edge.runtime.analyzer import LiveAnalyzer, PendingEvent
from edge.runtime.evidence_worker import EvidenceWorker
from edge.runtime.supervisor import RestartPolicy, Supervisor, SupervisorState
from edge.scene_sync import SceneSync, apply_saved
from edge.signal_feed import SignalFeed
from edge.sources import SourceHealth, open_source
from edge.streams import MainStreamFrames, RecordStream, TwoStreamAnalyzer
from edge.uploader import EvidenceUploader
from pipelines.clips import ClipRecorder, PacketRing

log = logging.getLogger("edge.node")

# Counters of a camera's earlier runs (before a restart): health counts from the worker's start.
_CARRIED = ("reconnects", "frames_decoded", "frames_delivered", "slots_missed", "analysed_frames", "frames_gated")


def _utc(ts: float | None = None) -> datetime:
    return datetime.fromtimestamp(time.time() if ts is None else ts, UTC)


class CameraWorker(threading.Thread):
    """One camera: source -> analyzer on this thread, supervised (restarted after a crash)."""

    METRICS_WINDOW_S = 10.0

    def __init__(self, node: EdgeNode, camera: CameraConfig) -> None:
        super().__init__(name=f"camera-{camera.camera.id}", daemon=True)
        self.node = node
        self.camera = camera
        self.events = 0
        self.source = None
        self.recorder: ClipRecorder | None = None
        self.analyzer: LiveAnalyzer | None = None
        self.started_at = time.time()
        self._lock = threading.Lock()  # source/analyzer swap at a restart vs. health readers
        self._carried = dict.fromkeys(_CARRIED, 0)
        self._last_frame_wall: float | None = None  # of an earlier run (before a restart)
        # (wall time the analysis of a frame ended, its lag behind the frame's arrival): the last minute.
        self._analysed: deque[tuple[float, float]] = deque()
        self._overloaded = False
        self._camera_moved = False  # as last published
        # The first frame analysed (after a start or a new config): the scene's reference picture.
        self.reference_frame = None
        self._next_camera: CameraConfig | None = None  # a new config, taken between two frames
        self._reconfigured = threading.Event()
        # Records the debug stream (edge.debug_video) when asked over MQTT: nothing until then.
        self.debug = DebugTap(camera, node.state_dir / "debug" / camera.camera.id)
        self.supervisor = Supervisor(
            self.name, self._run_once, node.stopping, policy=node.restart_policy, on_state=self._on_supervisor
        )

    # -- health ------------------------------------------------------------------------------------
    def metrics(self) -> dict:
        """How well this camera keeps up: analysed fps against its target over the last 10 s and
        the lag of analysis behind the camera."""
        now = time.time()
        recent = [(t, lag) for t, lag in list(self._analysed) if now - t <= self.METRICS_WINDOW_S]
        lags = sorted(lag for _, lag in recent)
        return {
            "analysis_fps_target": self.camera.camera.analysis_fps,
            "analysis_fps": round(len(recent) / self.METRICS_WINDOW_S, 2),
            "lag_ms_p50": round(1000 * lags[len(lags) // 2], 1) if lags else None,
            "lag_ms_max": round(1000 * lags[-1], 1) if lags else None,
        }

    def overloaded(self, m: dict) -> bool | None:
        """Below 95% of its rate or lagging > 1 s; None while there is not enough history."""
        if time.time() - self.started_at < 2 * self.METRICS_WINDOW_S:
            return None
        return m["analysis_fps"] < 0.95 * m["analysis_fps_target"] or (m["lag_ms_p50"] or 0) > 1000

    def health(self, source_health: SourceHealth | None = None) -> CameraHealth:
        """This camera's health now: live counters (all runs since the node started), not a snapshot."""
        with self._lock:
            src, analyzer, recorder = self.source, self.analyzer, self.recorder
            h = source_health or (src.health if src is not None else SourceHealth())
            counts = dict(self._carried)
        counts["reconnects"] += h.reconnects
        counts["frames_decoded"] += h.frames_decoded
        counts["frames_delivered"] += h.frames_delivered
        counts["slots_missed"] += h.slots_missed
        if analyzer is not None:
            counts["analysed_frames"] += analyzer.stats.frames
            counts["frames_gated"] += analyzer.stats.gated
        sup = self.supervisor
        state, error = h.state, h.last_error
        if sup.state in ("restarting", "failed"):
            state, error = sup.state, sup.last_error
        m = self.metrics()
        last_frame = h.last_frame_wall_time or self._last_frame_wall
        return CameraHealth(
            node=self.node.config.node.id,
            camera=self.camera.camera.id,
            state=state,
            at=_utc(),
            restarts=sup.restarts,
            last_frame_at=_utc(last_frame) if last_frame is not None else None,
            # Overload is about keeping up with a stream: a camera that is down is not overloaded.
            overloaded=state == "streaming" and bool(self.overloaded(m)),
            # The registration lost the reference view (camera knocked, PTZ on another preset).
            camera_moved=analyzer is not None and analyzer.camera_moved,
            last_error=error[:2000] if error else None,
            events=self.events,
            clip_buffer_bytes=recorder.ring.nbytes if recorder is not None else None,
            clip_buffer_seconds=round(recorder.ring.span, 2) if recorder is not None else None,
            **counts,
            **m,
        )

    def _note_analysed(self, frame_wall: float) -> None:
        now = time.time()
        self._analysed.append((now, now - frame_wall))
        while self._analysed and now - self._analysed[0][0] > 60:
            self._analysed.popleft()

    def reconfigure(self, camera: CameraConfig, timeout: float = 30.0) -> bool:
        """Run `camera` (a validated config of this camera) from the next frame on: its rules are
        rebuilt between two frames, on the camera thread. True once taken, False if no frame came
        within `timeout` (it is still taken at the next frame)."""
        self._reconfigured.clear()
        self._next_camera = camera
        if not self.is_alive():
            self._take_config(None)
            return True
        return self._reconfigured.wait(timeout)

    def _take_config(self, analyzer: LiveAnalyzer | None) -> None:
        new, self._next_camera = self._next_camera, None
        if new is None:
            return
        self.camera = new
        self.debug.camera = new  # a recording started from now on draws the new scene
        if analyzer is not None:
            # The tracker and clip buffer carry on; the rules (zones, lines, timers) start afresh,
            # registered to the new scene's reference picture when it has another one.
            analyzer.use_camera(new)
        self.reference_frame = None
        self._reconfigured.set()

    # -- the worker --------------------------------------------------------------------------------
    def run(self) -> None:
        self.supervisor.run()

    def _run_once(self) -> None:
        cam = self.camera.camera
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
        # A two-stream camera (camera.record_source): analysed on its sub-stream, clips and
        # snapshots from the main stream, which is parsed only (edge/streams.py).
        two_streams = bool(cam.record_source)
        analyzer = (TwoStreamAnalyzer if two_streams else LiveAnalyzer)(
            self.node.config.node.id,
            self.camera,
            self.node.inference.for_detector(camera_detector(self.node.config.detector, self.camera)),
            clips=recorder,
            event_first=True,
            motion=motion_gate_for(self.camera),
        )
        uri = cam.source or ""
        live: dict = {}
        if uri.lower().startswith(("rtsp://", "rtsps://")):
            live = {"platform": self.node.config.platform, "decoder_threads": self.node.config.decoder_threads or None}
        else:  # a file stands in for a camera: looped at its own pace
            uri = str(video_path(uri))
            live = {"loop": True, "realtime": True}
        analyzer.on_frame = self._on_frame
        with self._lock:
            self.recorder, self.analyzer = recorder, analyzer
        evidence = self.node.evidence
        crashed = False
        record: RecordStream | None = None
        try:
            source = open_source(
                uri, cam.analysis_fps, on_health=self._on_health,
                on_packet=recorder.add if recorder and not two_streams else None, **live,
            )
            with self._lock:
                self.source = source
            if two_streams and isinstance(analyzer, TwoStreamAnalyzer):
                # Snapshots need the main stream's packets even with clips off: a few seconds of its own.
                ring = recorder.ring if recorder is not None else PacketRing(3.0, 32 * 1024 * 1024)
                analyzer.main_frames = MainStreamFrames(ring)
                record = RecordStream(
                    cam.record_source or "", ring.add, lambda: getattr(source, "clock_offset", None),
                    on_reset=ring.clear,
                ).start()
            if recorder is not None:
                recorder.rotation = getattr(source, "rotation", 0.0)  # files only; cameras send upright
            for frame in source.frames():
                if self.node.stopping.is_set():
                    break
                if self._next_camera is not None:
                    self._take_config(analyzer)
                if self.reference_frame is None:
                    self.reference_frame = frame.image.copy()
                if self.node.signal_feed is not None:
                    self.node.signal_feed.apply(cam.id, analyzer.rules, frame.pts, frame.wall_time)
                decided = analyzer.process(frame, datetime.fromtimestamp(frame.wall_time, UTC))
                if decided:
                    # Evidence, clips and the outbox are the evidence worker's: this thread analyses.
                    evidence.put(cam.id, decided)
                    self.events += sum(isinstance(p, PendingEvent) for p in decided)
                self._note_analysed(frame.wall_time)
                if analyzer.camera_moved != self._camera_moved:
                    # One notice per transition (the registrar logs it), and the health at once.
                    self._camera_moved = analyzer.camera_moved
                    self.node.publish_health(self.health())
        except BaseException:
            crashed = True
            raise
        finally:
            # Stopping or crashed: events still waiting for post-event footage go out with what there
            # is; a stream that ended (not a crash: the rules' state is then suspect) also sends the
            # acts its rules still hold.
            final = analyzer.finish(flush_rules=not crashed)
            self.events += sum(isinstance(p, PendingEvent) for p in final)
            evidence.put(cam.id, final)
            if record is not None:
                record.stop()
            self._finish_debug(self.debug.close)
            if crashed:
                self._fold_counters()

    def _on_frame(self, frame, detections, tracks, rules, violations) -> None:  # type: ignore[no-untyped-def]
        self._finish_debug(lambda: self.debug(frame, detections, tracks, rules, violations))

    def _finish_debug(self, step) -> None:  # type: ignore[no-untyped-def]
        before = len(self.debug.written)
        step()
        for path in self.debug.written[before:]:
            self.node.debug_recorded(self.camera.camera.id, path)

    def _fold_counters(self) -> None:
        """A crashed run: keep its counters for the next run's health (they count from the start)."""
        with self._lock:
            if self.source is not None:
                h = self.source.health
                for k in ("reconnects", "frames_decoded", "frames_delivered", "slots_missed"):
                    self._carried[k] += getattr(h, k)
                self._last_frame_wall = h.last_frame_wall_time or self._last_frame_wall
            if self.analyzer is not None:
                self._carried["analysed_frames"] += self.analyzer.stats.frames
                self._carried["frames_gated"] += self.analyzer.stats.gated
            self.source = self.analyzer = self.recorder = None

    def _on_health(self, health: SourceHealth) -> None:
        data = self.health(health)
        log.info("camera health", extra={"fields": data.model_dump(mode="json", exclude={"schema_", "node"})})
        self.node.publish_health(data)
        if health.state in ("stalled", "reconnecting") and self.analyzer is not None:
            # The camera is gone for now: events waiting for post-event footage must not wait
            # for it to come back; they go out with the clip there is.
            self.node.evidence.put(self.camera.camera.id, self.analyzer.finish())

    def _on_supervisor(self, state: SupervisorState, error: str | None) -> None:
        self.node.publish_health(self.health())

    def stop(self) -> None:
        src = self.source
        if src is not None:
            src.stop()


class EdgeNode:
    def __init__(self, config: NodeConfig, cameras: list[CameraConfig]) -> None:
        self.config = config
        self.prefix = config.mqtt.topic_prefix
        node_id = config.node.id
        self.state_dir = config.node.state_dir or default_node_state_dir(node_id)
        self.scenes_dir = self.state_dir / "scenes"
        # Scene versions saved from central's console earlier: an edit survives a restart.
        cameras = apply_saved(self.scenes_dir, cameras)
        self.cameras = cameras
        self.evidence_dir = self.state_dir / "evidence"
        self.outbox = Outbox(self.state_dir / "outbox.sqlite3")
        self.status_topic = node_status_topic(self.prefix, node_id)
        # The node's ONE MQTT connection (contract.mqtt): credentials (a node logs in as its node id,
        # which the broker binds to one client id and its topics), TLS with the CA file, reason codes;
        # the signal feed and the debug-recording requests subscribe on it too.
        offline = NodeStatus(node=node_id, state="offline").to_json().encode()
        self.publisher = MqttPublisher(
            self.outbox, config.mqtt.client_settings(mqtt_client_id(config), node_id, Will(self.status_topic, offline)),
            puback_timeout_s=config.mqtt.puback_timeout_s,
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
        # On the publisher's connection: the broker binds the node's account to ONE client id.
        self.signal_feed: SignalFeed | None = None
        if any(h.source == "controller" for c in cameras for h in c.scene.signals):
            self.signal_feed = SignalFeed.on(self.publisher, self.prefix, node_id)
        # Debug recording on request (`<prefix>/<node>/<camera>/debug/record`), same connection.
        self.publisher.add_subscription(f"{self.prefix}/{node_id}/+/debug/record", self._on_debug_request)
        self.stopping = threading.Event()
        # One pool of model sessions for all cameras (edge/inference.py), not one per camera.
        self.inference = InferencePool(
            lambda: make_detector(config.detector), config.inference.workers or None, config.inference.max_batch,
            config=config.detector,
        )
        # A camera may choose its own detector model (camera config `detector:`): its sessions are made
        # now, so a model that cannot load stops the start rather than the camera later.
        for c in cameras:
            self.inference.for_detector(camera_detector(config.detector, c))
        # Everything after the decision (JPEGs, clips, evidence files, outbox), off the camera threads.
        self.evidence = EvidenceWorker(
            self.submit, threads=config.evidence.threads, max_queued=config.evidence.max_queued_frames
        )
        r = config.restart
        self.restart_policy = RestartPolicy(r.initial_s, r.max_s, r.stable_s, r.max_consecutive)
        self.workers = [CameraWorker(self, c) for c in cameras]
        # Each camera's config and reference frame to central, and the console's edits back.
        self.scene_sync: SceneSync | None = None
        if config.upload is not None:
            self.scene_sync = SceneSync(
                self.workers, self.scenes_dir, config.upload.url, node_id, config.upload.token,
                timeout_s=config.upload.timeout_s, stopping=self.stopping,
            )
        self.metrics_server = None
        self._stop_lock = threading.Lock()
        self._stopped = False
        self.started_at = time.time()

    def submit(self, rec: EventRecord) -> None:
        """Evidence to disk, then evidence + event into the outbox in one transaction (on the
        evidence worker's thread)."""
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
                              "zone": ev.zone.id if ev.zone else None, "details": ev.details,
                              "snapshots": len(small)}},
        )

    def _debug_status(self, camera: str, state: str, **fields) -> None:  # type: ignore[no-untyped-def]
        """Retained `<prefix>/<node>/<camera>/debug/status`: what became of the last request."""
        body = {"node": self.config.node.id, "camera": camera, "state": state, "at": _utc().isoformat(), **fields}
        self.publisher.publish_state(f"{self.prefix}/{self.config.node.id}/{camera}/debug/status",
                                     json.dumps(body).encode())

    def _on_debug_request(self, client, userdata, msg) -> None:  # type: ignore[no-untyped-def]
        """A request to record one camera's debug stream (MQTT network thread: no waiting here)."""
        camera = msg.topic.split("/")[-3]
        worker = next((w for w in self.workers if w.camera.camera.id == camera), None)
        if worker is None:
            log.warning("debug record for an unknown camera", extra={"fields": {"camera": camera}})
            return
        try:
            seconds = record_seconds(msg.payload)
        except ValueError as e:
            log.warning("debug record refused", extra={"fields": {"camera": camera, "error": str(e)}})
            self._debug_status(camera, "refused", error=str(e), max_seconds=MAX_RECORD_SECONDS)
            return
        if not worker.debug.request(seconds):
            self._debug_status(camera, "refused", error="a recording is already under way", seconds=seconds)
            return
        log.info("debug recording requested", extra={"fields": {"camera": camera, "seconds": seconds}})
        self._debug_status(camera, "requested", seconds=seconds)

    def debug_recorded(self, camera: str, path: Path) -> None:
        """A finished debug video: announced (retained status), and with `upload` sent to central's
        scene API for the console to link. Not through the evidence upload: central holds evidence no
        event claims only briefly, and a debug video must not take the room event evidence needs."""
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                digest.update(chunk)
        trace = path.with_suffix(".jsonl")
        size = path.stat().st_size
        self._debug_status(camera, "recorded", file=str(path), trace=str(trace) if trace.exists() else None,
                           sha256=digest.hexdigest(), size=size)
        log.info("debug recording written", extra={"fields": {"camera": camera, "file": str(path), "size": size}})
        if self.scene_sync is not None:  # for the console to link (its own store, not the evidence hold)
            self.scene_sync.upload_debug(camera, path, digest.hexdigest(), size)

    def publish_health(self, health: CameraHealth) -> None:
        topic = camera_health_topic(self.prefix, self.config.node.id, health.camera)
        self.publisher.publish_state(topic, health.to_json().encode())

    def status(self) -> NodeStatus:
        mqtt = self.publisher.status()  # the node's one connection: its subscriptions too
        return NodeStatus(
            node=self.config.node.id,
            state="online",
            at=_utc(),
            uptime_s=round(time.time() - self.started_at, 1),
            outbox_backlog=self.outbox.backlog(),
            outbox_oldest_s=self.outbox.oldest_age(),
            published=self.publisher.acked,
            held_no_subscriber=self.publisher.unheard,
            mqtt_connected=bool(mqtt.get("connected")),
            publishes_refused=int(mqtt.get("publishes_refused") or 0),
            puback_timeouts=self.publisher.puback_timeouts,
            subscriptions_refused={
                str(k): str(v) for k, v in (mqtt.get("subscriptions_refused") or {}).items()
            },
            uploads=self.uploader.status() if self.uploader else None,
            # Loud on purpose: undelivered evidence is never deleted, so a full disk needs a person.
            disk_full=self.retention.status.disk_full,
            storage=self.retention.status.as_dict(),
            inference=self.inference.stats.snapshot(),
            evidence=self.evidence.stats(),
            cameras={w.camera.camera.id: w.health() for w in self.workers},
        )

    def run(self) -> None:
        self.publisher.start()
        if self.uploader is not None:
            self.uploader.start()
        self.retention.start()
        if self.signal_feed is not None:
            self.signal_feed.start()
        self.evidence.start()
        if self.scene_sync is not None:
            self.scene_sync.start()
        if self.config.metrics is not None:
            from edge.metrics import serve_metrics

            self.metrics_server = serve_metrics(self, self.config.metrics.bind, self.config.metrics.port)
        for w in self.workers:
            w.start()
        log.info("edge node started", extra={"fields": {"node": self.config.node.id, "cameras": len(self.workers)}})
        while True:
            try:
                status = self.status()
                self._say_overload(status)
                self.publisher.publish_state(self.status_topic, status.to_json().encode())
                # Health with live values, as often as the status (state changes go out at once too).
                for health in status.cameras.values():
                    self.publish_health(health)
            except Exception:  # a status that cannot be made must not stop the node: said, retried
                log.exception("node status not published")
            if self.stopping.wait(self.config.status_interval_s):
                break
            if not any(w.is_alive() for w in self.workers):
                log.error("all camera workers have ended")
                break

    def _say_overload(self, status: NodeStatus) -> None:
        """A camera analysed below 95% of its rate (or lagging > 1 s) is overloaded: log it once
        when it starts and once when it ends; the status and health carry it all the time."""
        for w in self.workers:
            h = status.cameras.get(w.camera.camera.id)
            if h is None or w.overloaded(h.model_dump()) is None:
                continue  # not enough history yet
            if h.overloaded != w._overloaded:
                w._overloaded = h.overloaded
                (log.warning if h.overloaded else log.info)(
                    "camera overloaded: analysis frames dropped" if h.overloaded else "camera keeps up again",
                    extra={"fields": {"camera": h.camera, "analysis_fps": h.analysis_fps,
                                      "analysis_fps_target": h.analysis_fps_target, "lag_ms_p50": h.lag_ms_p50,
                                      "slots_missed": h.slots_missed}},
                )

    def stop(self) -> None:
        with self._stop_lock:
            if self._stopped:
                return
            self._stopped = True
        self.stopping.set()
        for w in self.workers:
            w.stop()
        for w in self.workers:
            w.join(timeout=5)
        # What the cameras decided is written before the outbox closes (their last clips too).
        self.evidence.close(timeout=30)
        self.inference.close()
        if self.metrics_server is not None:
            self.metrics_server.close()
        self.retention.stop()
        if self.signal_feed is not None:
            self.signal_feed.stop()
        if self.uploader is not None:
            self.uploader.stop()
        if self.scene_sync is not None and self.scene_sync.is_alive():
            self.scene_sync.stop()
        for w in self.workers:
            self.publish_health(w.health())  # final: ended (retained for whoever looks later)
        offline = NodeStatus(node=self.config.node.id, state="offline", at=_utc()).to_json().encode()
        self.publisher.stop(final_state=(self.status_topic, offline))
        self.outbox.close()
