"""One camera's analysis: frame -> detections -> tracks -> rules -> events with evidence.

Used unchanged by `edge analyze` (a file, as fast as possible) and by the live node.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from contract.events import (
    ModelRef,
    ObjectRef,
    ViolationEvent,
    ZoneRef,
    category_of,
    new_event_id,
)
from edge.config import CameraConfig
from edge.detections import Detections, TrackedObjects
from edge.detector import YoloDetector
from edge.evidence import EvidenceFile, annotated_snapshot, encode_jpeg, evidence_image_jpeg
from edge.frames import Frame
from edge.geometry import DirectedLine, PolygonZone, scale_points
from edge.inference import InferencePool
from edge.motion import MotionGate
from edge.plate_text import object_plate
from edge.regions import regions_pass_for
from edge.registration import FrameRegistrar, Registration
from edge.roi import RoiDetector
from edge.rules import Observation, Rule, Violation
from edge.rules.base import flush_rule
from edge.rules.registry import build_rules
from edge.stationary import StationaryMemory, StationaryParams
from edge.tracking import ObjectTracker
from pipelines.clips import ClipRecorder, ClipTicket


@dataclass(frozen=True)
class EventRecord:
    event: ViolationEvent
    evidence: tuple[EvidenceFile, ...]
    # The event again, same id, now with its clip (`evidence` holds just the clip file): the
    # re-publish of one already submitted, not a new event (contract.events.merge_republished).
    republish: bool = False


@dataclass
class AnalyzerStats:
    frames: int = 0
    detections: int = 0
    events: int = 0
    detect_seconds: float = 0.0
    total_seconds: float = 0.0
    gated: int = 0  # frames whose detections were carried over (no motion since the last run)
    registration_seconds: float = 0.0  # camera motion compensation (edge.registration)
    stationary_seconds: float = 0.0  # stationary confirmation, closer looks included (edge.stationary)
    timings_ms: list[float] = field(default_factory=list)


# Called once per analysed frame, after the rules, with what they saw and decided:
# (frame, detections, tracks, rules, violations). For debug output (edge.debug_video); it must not
# change anything it is handed.
FrameHook = Callable[[Frame, Detections, TrackedObjects, list[Rule], list[Violation]], None]


def _reference_picture(camera: CameraConfig) -> np.ndarray | None:
    """The snapshot the scene was drawn on, when the config names one that can be read (check-config
    says why not; a run goes on with the first frame as its reference)."""
    path = camera.scene.reference_image
    if path is None:
        return None
    import cv2

    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        logging.getLogger("edge.registration").warning(
            "scene.reference_image %s cannot be read: the first frame is the reference", path,
            extra={"fields": {"camera": camera.camera.id}},
        )
    return image


def _map(m: np.ndarray, point: np.ndarray) -> np.ndarray:
    """A point through a 2x3 affine map."""
    return (m[:, :2] @ point + m[:, 2]).astype(np.float32)


def _map_box(m: np.ndarray, box: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
    """A small box (a lamp's) through a similarity: its centre moves, its size stays (the scale is
    within a few percent, or the camera counts as moved)."""
    x1, y1, x2, y2 = box
    cx, cy = _map(m, np.array([(x1 + x2) / 2, (y1 + y2) / 2], np.float64))
    hw, hh = (x2 - x1) / 2, (y2 - y1) / 2
    return (int(np.floor(cx - hw)), int(np.floor(cy - hh)), int(np.ceil(cx + hw)), int(np.ceil(cy + hh)))


def build_zones(camera: CameraConfig, frame_wh: tuple[int, int]) -> list[PolygonZone]:
    ref = camera.scene.reference_size
    return [
        PolygonZone(z.id, z.kind, scale_points(np.asarray(z.polygon, np.float32), ref, frame_wh))
        for z in camera.scene.zones
    ]


class CameraAnalyzer:
    def __init__(
        self,
        node_id: str,
        camera: CameraConfig,
        detector: YoloDetector | InferencePool,
        *,
        deterministic_ids: bool = False,
        clips: ClipRecorder | None = None,
        motion: MotionGate | None = None,
        event_first: bool = False,
    ) -> None:
        self.node_id = node_id
        # With clips, an event waits for its clip (pre + post seconds, longer when events share
        # one). `event_first` (live cameras) sends it at once with `evidence_pending: [clip]` and
        # again with the clip once written, so an alert is not late by the post-roll; offline
        # analysis holds it (one line per event).
        self.clips = clips
        self.event_first = event_first
        self._waiting: list[tuple[EventRecord, ClipTicket]] = []
        self.deterministic_ids = deterministic_ids
        self.camera = camera
        self.detector = detector
        # Small objects: an optional second pass over the zones and lines in tiles (edge.regions).
        self.detect = regions_pass_for(camera, detector, lambda: self._zones)
        # Only where it matters: the scene's ROI instead of the full frame (edge.roi); the motion
        # gate then looks at that crop too. Not with the regions pass, which tiles the full frame.
        self.roi: RoiDetector | None = None
        dr = camera.detection_roi
        if dr.enabled and not camera.regions_pass.enabled:
            self.roi = RoiDetector(self.detect, camera.scene, margin=dr.margin, max_area_fraction=dr.max_area_fraction)
            self.detect = self.roi
        self.motion = motion
        self._last_detections: Detections | None = None
        tc = camera.tracker
        self.tracker = ObjectTracker(
            analysis_fps=camera.camera.analysis_fps,
            lost_track_seconds=tc.lost_track_seconds,
            activation_confidence=tc.activation_confidence,
            high_confidence=tc.high_confidence,
        )
        # Parked objects the tracker never takes (recurring low-confidence detections at one place).
        self.stationary = StationaryMemory(StationaryParams.of(tc.stationary), detector) if tc.stationary.enabled else None
        self.model_ref = ModelRef(name=detector.model_name, version=detector.model_version)
        self.tz = ZoneInfo(camera.camera.timezone)
        self.rules: list[Rule] | None = None  # built on the first frame, when its size is known
        # Camera motion compensation: every analysed frame is registered to the reference view
        # (the snapshot the scene was drawn on, else the first frame analysed). The scene is mapped
        # into the frame rather than detections into the reference: tracks, rules and evidence then
        # all stay in frame pixels (boxes are drawn where the object is), and one polygon per zone
        # moves instead of every box.
        self.registrar = FrameRegistrar(name=camera.camera.id, anchor=_reference_picture(camera))
        self.registration: Registration | None = None
        self._zones: list[PolygonZone] = []
        self._zones_ref: list[np.ndarray] = []
        self._lines_ref: list[tuple[DirectedLine, np.ndarray, np.ndarray]] = []
        self._lamps_ref: list[tuple[Any, list[tuple[str, tuple[int, int, int, int]]]]] = []
        self.stats = AnalyzerStats()
        self.on_frame: FrameHook | None = None  # see FrameHook; None: nothing extra per frame
        self._last: tuple[Frame, datetime, Detections] | None = None  # the last frame analysed, for finish()

    def use_camera(self, camera: CameraConfig) -> None:
        """Run `camera` (a new config of this camera) from the next frame on: the rules are rebuilt
        then (zones, lines, timers afresh; the tracker and clip buffer carry on), the detection ROI
        follows the new scene, and a new `scene.reference_image` (the picture a console version was
        drawn on) becomes the registration's reference view."""
        old = self.camera.scene.reference_image
        self.camera = camera
        self.rules = None
        if self.roi is not None:
            self.roi = RoiDetector(self.roi._detect, camera.scene, margin=self.roi.margin,
                                   max_area_fraction=self.roi.max_area_fraction)
            self.detect = self.roi
        if camera.scene.reference_image != old:
            self.registrar.set_anchor(_reference_picture(camera))

    def process(self, frame: Frame, when: datetime) -> list[EventRecord]:
        """Analyse one frame; `when` is its UTC time (the event clock)."""
        t0 = time.perf_counter()
        if self.rules is None:
            h, w = frame.image.shape[:2]
            # On a node, secondary models (heads, plates) run on its shared inference pool too.
            crops = self.detector.crop_models if isinstance(self.detector, InferencePool) else None
            self._zones = build_zones(self.camera, (w, h))
            self._zones_ref = [z.polygon.copy() for z in self._zones]
            shared: dict[str, Any] = {}
            self.rules = build_rules(self.camera, self._zones, (w, h), crop_models=crops, shared=shared)
            # The lines and lamp boxes the rules hold, in the reference view: moved with the zones.
            self._lines_ref = [(ln, ln.a.copy(), ln.b.copy()) for ln in (shared.get("lines") or {}).values()]
            board = shared.get("signal_board")
            self._lamps_ref = [(head, list(head.lamp_boxes)) for head in board.heads.values()] if board else []
        self._register(frame)
        gate = self.motion
        watched = frame.image if self.roi is None else self.roi.crop(frame.image)
        if gate is None or gate.should_detect(watched, frame.pts) or self._last_detections is None:
            detections = self.detect(frame.image)
            self._last_detections = detections
        else:
            # Nothing moved since the detector last ran: the same objects are where they were.
            detections = self._last_detections
            self.stats.gated += 1
        t1 = time.perf_counter()
        tracks = self.tracker.update(detections)
        if self.stationary is not None:
            ts = time.perf_counter()
            tracks = self.stationary.update(detections, tracks, frame.image, frame.pts)
            self.stats.stationary_seconds += time.perf_counter() - ts
        obs = Observation(
            frame.pts, tracks, frame.image, detections, wall_time=when, tz=self.tz, registration=self.registration
        )
        violations: list[Violation] = []
        for rule in self.rules:
            violations.extend(rule.update(obs))
        records = [self._record(v, frame, when, tracks) for v in violations]
        self._last = (frame, when, tracks)
        t2 = time.perf_counter()
        s = self.stats
        s.frames += 1
        s.detections += len(detections)
        s.events += len(records)
        s.detect_seconds += t1 - t0
        s.total_seconds += t2 - t0
        if self.on_frame is not None:
            self.on_frame(frame, detections, tracks, self.rules, violations)
        return self._attach_clips(records, frame.pts)

    @property
    def camera_moved(self) -> bool:
        """The view no longer matches the reference (camera_moved health): static-change rules pause."""
        return self.registrar.moved

    def _register(self, frame: Frame) -> None:
        """Register the frame to the reference view and carry the zones along with it (in place:
        the rules hold these zone objects). A frame that cannot be registered keeps the last
        good placement; the registrar decides when that is a camera move."""
        t0 = time.perf_counter()
        reg = self.registrar.update(frame.image, frame.pts)
        self.registration = reg
        if reg.ok and reg.available:
            to_frame = None if reg.identity else np.linalg.inv(np.vstack([reg.matrix, [0.0, 0.0, 1.0]]))[:2]
            for zone, ref in zip(self._zones, self._zones_ref, strict=True):
                if to_frame is None:
                    zone.polygon[:] = ref
                else:
                    zone.polygon[:] = ref @ to_frame[:, :2].T + to_frame[:, 2]
            # Stop lines and lamp boxes too: a lamp is ~15 px, so a few pixels of sway take it out of
            # its box, and a line drawn on the reference would judge crossings in the wrong place.
            for line, a, b in self._lines_ref:
                line.a[:], line.b[:] = (a, b) if to_frame is None else (_map(to_frame, a), _map(to_frame, b))
            for head, boxes in self._lamps_ref:
                head.lamp_boxes = boxes if to_frame is None else [(c, _map_box(to_frame, box)) for c, box in boxes]
        self.stats.registration_seconds += time.perf_counter() - t0

    def _attach_clips(self, records: list[EventRecord], pts: float, force: bool = False) -> list[EventRecord]:
        if self.clips is None:
            return records
        ready: list[EventRecord] = []
        for rec in records:
            ready.extend(self._wait_for_clip(rec, self.clips.request(pts)))
        return ready + self._clips_done(force)

    def _wait_for_clip(self, rec: EventRecord, ticket: ClipTicket) -> list[EventRecord]:
        """Hold `rec` until `ticket`'s clip is written; event first: returns the copy to send now."""
        ready: list[EventRecord] = []
        if self.event_first:
            rec = EventRecord(rec.event.model_copy(update={"evidence_pending": ["clip"]}), rec.evidence)
            ready.append(rec)
        self._waiting.append((rec, ticket))
        return ready

    def _clips_done(self, force: bool = False) -> list[EventRecord]:
        """Write the clips whose footage is in (all of them with `force`); the events they complete."""
        assert self.clips is not None
        ready: list[EventRecord] = []
        self.clips.poll(force=force)
        waiting = []
        for rec, ticket in self._waiting:
            if not ticket.done:
                waiting.append((rec, ticket))
                continue
            # A failed clip does not hold the event back (the error is logged): it goes without.
            clip = ticket.clip
            files = ()
            refs = list(rec.event.evidence)
            if clip is not None:
                files = (EvidenceFile.from_file("clip", clip.media_type, clip.path, clip.sha256, clip.size),)
                refs.append(files[0].ref())
            event = rec.event.model_copy(update={"evidence": refs, "evidence_pending": []})
            if self.event_first:
                ready.append(EventRecord(event, files, republish=True))
            else:
                ready.append(EventRecord(event, (*rec.evidence, *files)))
        self._waiting = waiting
        return ready

    def finish(self, flush_rules: bool = False) -> list[EventRecord]:
        """Write the clips still waiting with the footage there is. `flush_rules` (the stream has
        ended, on the camera thread): first the acts the rules still hold, as events on the last
        frame analysed, so an act in a clip's last seconds is not lost."""
        records, pts = self._flush_rules() if flush_rules else ([], 0.0)
        if self.clips is None:
            return records
        return self._attach_clips(records, pts, force=True)

    def _flush_rules(self) -> tuple[list[EventRecord], float]:
        """The acts the rules still hold, as records of the last frame analysed (and its pts)."""
        last, self._last = self._last, None  # once: a second call flushes nothing
        if self.rules is None or last is None:
            return [], 0.0
        frame, when, tracks = last
        records = [self._record(v, frame, when, tracks) for rule in self.rules for v in flush_rule(rule, frame.pts)]
        self.stats.events += len(records)
        return records, frame.pts

    def _record(self, v: Violation, frame: Frame, when: datetime, tracks) -> EventRecord:
        return self._event(v, frame.pts, when, self._evidence(v, frame.image, when, tracks))

    def _evidence(self, v: Violation, image: np.ndarray, when: datetime, tracks) -> tuple[EvidenceFile, ...]:
        """The JPEGs of one violation: annotated and clean snapshot, the rule's crops (the costly part:
        the live node makes them on its evidence worker, edge.runtime.evidence_worker)."""
        cam = self.camera.camera
        snapshot = EvidenceFile.of("snapshot", "image/jpeg", annotated_snapshot(image, v, tracks, cam.id, when, self.tz))
        clean = EvidenceFile.of("snapshot_clean", "image/jpeg", encode_jpeg(image))
        # Crossing acts: the three moments in one picture, and its clean copy (edge.composite).
        from edge.composite import composite_jpegs  # Pillow, only for events that have moments

        made = composite_jpegs(v, cam, when, self.tz) if v.moments else None
        composite = () if made is None else (
            EvidenceFile.of("composite", "image/jpeg", made[0]), EvidenceFile.of("composite_clean", "image/jpeg", made[1])
        )
        return (snapshot, clean, *composite) + tuple(
            EvidenceFile.of(picture.kind, "image/jpeg", evidence_image_jpeg(picture), name=f"{picture.kind}-{i}")
            for i, picture in enumerate(v.images)
        )

    def _event(self, v: Violation, pts: float, when: datetime, evidence: tuple[EvidenceFile, ...]) -> EventRecord:
        """The event of violation `v` decided on the frame at `pts` (UTC `when`), with `evidence`."""
        cam = self.camera.camera
        started_at = when - timedelta(seconds=pts - v.started_at)
        seed = None
        if self.deterministic_ids:
            offenders = ",".join(str(o.track_id) for o in v.offenders)
            seed = f"{self.node_id}|{cam.id}|{v.type.value}|{v.phase}|{pts:.3f}|{offenders}".encode()
        incident = None
        if v.incident_key is not None:
            # Same incident, same id in every phase: derived from its start time and key.
            incident = new_event_id(started_at, f"{self.node_id}|{cam.id}|{v.type.value}|{v.incident_key}".encode())
        event = ViolationEvent(
            id=new_event_id(started_at, seed),
            node=self.node_id,
            camera=cam.id,
            type=v.type,
            category=category_of(v.type),
            phase=v.phase,
            incident=incident,
            started_at=started_at,
            ended_at=when - timedelta(seconds=pts - v.ended_at),
            detected_at=when,
            confidence=v.confidence,
            objects=[
                ObjectRef(class_name=o.class_name, track_id=o.track_id, box=o.box, confidence=o.confidence,
                          **object_plate(v.details, o.track_id, next((e.sha256 for e in evidence if e.kind == "plate"), None)))
                for o in v.offenders
            ],
            zone=ZoneRef(id=v.zone.id, kind=v.zone.kind) if v.zone else None,
            location=cam.location,
            evidence=[e.ref() for e in evidence],
            model=self.model_ref,
            details=dict(v.details),
        )
        return EventRecord(event, evidence)
