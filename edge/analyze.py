"""Offline analysis of a video file: as fast as possible, on the video's own timestamps.

Deterministic: the same file and config give the same events (ids included), so results can be
compared across runs and versions.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import av

from edge.config import CameraConfig, ClipsConfig, DetectorConfig, camera_detector
from edge.detector import DetectorError, YoloDetector
from edge.motion import motion_gate_for
from edge.pipeline import CameraAnalyzer, EventRecord
from edge.sources import VideoFileSource
from pipelines.clips import ClipRecorder

log = logging.getLogger("edge.detector")

# Never a default any more (a file without a creation time is not silently placed in 1970): callers
# that want the old placement, e.g. for labels counted from the first frame, pass it as start_time.
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class AnalysisSummary:
    video: str
    frames: int
    events: int
    seconds: float
    video_seconds: float

    @property
    def analysed_fps(self) -> float:
        return self.frames / self.seconds if self.seconds else 0.0


class StartTimeError(ValueError):
    """The time of a video's first frame is unknown: no creation_time tag and no start time given."""


def creation_time(video: Path) -> datetime | None:
    """The file's creation_time tag (UTC), or None when it has none (or it cannot be read)."""
    try:
        with av.open(str(video)) as c:
            tag = c.metadata.get("creation_time")
        if tag:
            return datetime.fromisoformat(tag.replace("Z", "+00:00")).astimezone(UTC)
    except (av.FFmpegError, ValueError, OSError):
        pass
    return None


def file_mtime(video: Path) -> datetime:
    """The file's modification time (UTC): a start time a user may choose for a file without a tag."""
    return datetime.fromtimestamp(video.stat().st_mtime, UTC)


def recording_start(video: Path, start_time: datetime | None = None) -> datetime:
    """The time of the video's first frame: `start_time` if given, else the file's creation_time tag.
    Never 'now' (determinism) and never silently the Unix epoch: without either, StartTimeError."""
    if start_time is not None:
        return start_time
    tag = creation_time(video)
    if tag is None:
        raise StartTimeError(
            f"{video.name} has no creation_time tag, so the time of its first frame is unknown: give a start time"
        )
    return tag


def make_detector(cfg: DetectorConfig) -> YoloDetector:
    """The detector a config names: a file (EDGE_DATA_DIR/weights or a path) or a registered model or
    variant (models/registry.yaml, models/variants.yaml; sha256 checked before loading)."""
    import models

    try:
        path = models.resolve(cfg.model)
    except (FileNotFoundError, ValueError) as e:
        raise DetectorError(str(e)) from None
    backend, precision = engine_for(cfg, path)
    return YoloDetector(
        path,
        input_size=cfg.input_size,
        long_side=cfg.long_side,
        confidence=cfg.confidence,
        iou=cfg.iou,
        providers=cfg.providers,
        threads=cfg.threads,
        backend=backend,
        precision=precision,
    )


def engine_for(cfg: DetectorConfig, path: Path) -> tuple[str, str]:
    """(backend, precision) to open: the config's, or with `backend: auto` the choice of
    edge.detect.choice (logged once per model and outcome, with why)."""
    if cfg.backend != "auto":
        return cfg.backend, cfg.precision
    if cfg.providers:  # execution providers are ONNX Runtime's: naming them chooses it
        return "onnxruntime", cfg.precision
    return auto_engine(path, cfg.precision)


def auto_engine(path: Path, precision: str = "auto") -> tuple[str, str]:
    """`backend: auto` for a model file (the detector's, or a crop model's: helmet, plate)."""
    from edge.detect.choice import choose_for

    choice = choose_for(path, precision)
    if (path.name, choice.why) not in _LOGGED_CHOICES:
        _LOGGED_CHOICES.add((path.name, choice.why))
        log.info(
            "detector backend auto for %s: %s",
            path.name,
            choice.why,
            extra={"fields": {"backend": choice.backend, "precision": choice.precision, "model": path.name}},
        )
    return choice.backend, choice.precision


_LOGGED_CHOICES: set[tuple[str, str]] = set()


def analyze_video(
    video: Path,
    camera: CameraConfig,
    out_dir: Path,
    *,
    node_id: str = "offline",
    detector_config: DetectorConfig | None = None,
    start_time: datetime | None = None,
    clips: ClipsConfig | None = None,
    detector: YoloDetector | None = None,
    debug_video: Path | None = None,
    trace: Sequence[Path] = (),
) -> AnalysisSummary:
    """`detector` (one already made) takes the place of `detector_config`'s. Without `start_time` the
    file's creation_time tag is the time of the first frame; a file without one raises StartTimeError."""
    base = recording_start(video, start_time)  # before any model is loaded: fail fast
    # The camera's own `detector:` (its model choice) over the node's, as on a node.
    detector = detector or make_detector(camera_detector(detector_config or DetectorConfig(), camera))
    clips = clips or ClipsConfig()
    recorder = None
    if clips.enabled:
        # The same packets a camera would send: the clip is cut from the file's own H.264.
        recorder = ClipRecorder(
            out_dir / "clips",
            pre_s=clips.pre_seconds,
            post_s=clips.post_seconds,
            max_bytes=int(clips.max_buffer_mb * 1024 * 1024),
            name=camera.camera.id,
        )
    analyzer = CameraAnalyzer(
        node_id, camera, detector, deterministic_ids=True, clips=recorder, motion=motion_gate_for(camera)
    )
    debug = None
    if debug_video is not None or trace:
        # What the analysis saw on each frame (edge.debug_video); the events are the same without it.
        from edge.debug_video import DebugRecorder

        debug = DebugRecorder(camera, debug_video, trace)
        analyzer.on_frame = debug
    out_dir.mkdir(parents=True, exist_ok=True)
    events_path = out_dir / "events.jsonl"
    source = VideoFileSource(video, camera.camera.analysis_fps, on_packet=recorder.add if recorder else None)
    if recorder is not None:
        recorder.rotation = source.rotation
    t0 = time.perf_counter()
    last_pts = 0.0
    n_events = 0
    with open(events_path.with_suffix(".jsonl.part"), "w", encoding="utf-8") as out:

        def emit(records: list[EventRecord]) -> None:
            nonlocal n_events
            for rec in records:
                folder = out_dir / "evidence" / rec.event.id
                for ev in rec.evidence:
                    ev.write(folder)
                out.write(rec.event.to_json() + "\n")
                n_events += 1

        for frame in source.frames():
            last_pts = frame.pts
            emit(analyzer.process(frame, base + timedelta(seconds=frame.pts)))
        # The acts the rules still hold (a crossing in the last seconds), and events still waiting
        # for their clip's post-event footage.
        emit(analyzer.finish(flush_rules=True))
    if debug is not None:
        debug.close()
    events_path.with_suffix(".jsonl.part").replace(events_path)
    elapsed = time.perf_counter() - t0
    summary = AnalysisSummary(str(video), analyzer.stats.frames, n_events, elapsed, last_pts)
    (out_dir / "summary.json").write_text(
        json.dumps({**summary.__dict__, "analysed_fps": round(summary.analysed_fps, 2)}, indent=2), encoding="utf-8"
    )
    return summary
