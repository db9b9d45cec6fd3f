"""What the edge sees, frame by frame: a debug video and a trace of one camera's analysis.

`edge analyze VIDEO --config CAMERA.yaml --out DIR --debug-video out.mp4 --trace out.jsonl` hooks a
`DebugRecorder` into the analyzer (`CameraAnalyzer.on_frame`): after the rules of each analysed
frame it draws the frame with the scene (zones, lines with their forward side, lanes), the
detections (class, confidence), the tracks (id, a short trail of ground points), each signal head's
reading with the lit share of every lamp, and each rule's live state (`debug_state()`, the optional
`edge.rules.base.Debuggable`: dwell timers, line sides, helmet votes, static-change candidates), and
writes it as H.264 (yuv420p, `+faststart`: plays in a browser) with PyAV's bundled x264. The trace
has one record per analysed frame: t, the signal readings and the rules' states (JSON lines, or CSV
with a `.csv` name).

Only reads what it is handed: events are the same with and without it.
"""

from __future__ import annotations

import csv
import json
from collections import deque
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path
from typing import IO, Any

import cv2
import numpy as np

from edge.config import CameraConfig
from edge.detections import Detections, TrackedObjects
from edge.frames import Frame
from edge.geometry import PolygonZone, scale_points
from edge.rules import Rule, Violation
from edge.rules.base import rule_debug_state
from edge.rules.signals import SignalBoard, signal_board

TRAIL_POINTS = 12  # ground points of a track's trail
EVENT_SHOW_SECONDS = 2.0  # an event stays in the panel this long
DWELL_SHOWN_FROM = 1.0  # dwell timers are drawn from this many seconds on

# BGR
ZONE_COLORS = {
    "no_stopping": (0, 140, 255),
    "no_parking": (0, 90, 255),
    "sidewalk": (255, 160, 0),
    "littering": (200, 80, 255),
}
ZONE_DEFAULT = (0, 220, 255)
LINE_COLOR = (255, 0, 255)
LANE_COLOR = (80, 220, 80)
DETECTION_COLOR = (200, 200, 200)
LAMP_COLORS = {"red": (40, 40, 235), "yellow": (0, 210, 255), "green": (60, 210, 60), "unknown": (170, 170, 170)}
STATE_COLOR = (0, 255, 255)  # rule-state annotations
EVENT_COLOR = (40, 40, 235)
# Rules' names on the object tags (the panel says them in full).
SHORT_NAMES = {"illegal_stopping": "stopped", "stop_line": "past line", "pedestrian_on_carriageway": "on road",
               "lane": "wrong lane", "speeding": "over limit"}
PALETTE = [(255, 128, 0), (0, 200, 120), (255, 0, 128), (0, 160, 255), (200, 200, 0), (160, 80, 255), (0, 255, 200),
           (255, 80, 80)]


def signal_readings(board: SignalBoard | None) -> dict[str, dict[str, Any]]:
    """Each head's reading as plain data: state (after hysteresis), since (camera seconds), this
    frame's own verdict, and per lamp the lit share of its disc (its lit blob against the lamp's
    expected size: the number the reader judges, whatever the box's size)."""
    if board is None:
        return {}
    return {
        head_id: {
            "state": r.state.value,
            "since": None if r.since is None else round(r.since, 3),
            "frame": r.frame.value,
            "lit": {c: round(v, 4) for c, v in r.lit.items()},
        }
        for head_id, r in board.readings.items()
    }


def frame_record(frame: Frame, rules: Sequence[Rule], violations: Sequence[Violation]) -> dict[str, Any]:
    """One analysed frame's trace record (JSON-able)."""
    states = [s for s in (rule_debug_state(r) for r in rules) if s is not None]
    return {
        "frame": frame.index,
        "t": round(frame.pts, 3),
        "signals": signal_readings(signal_board(list(rules))),
        "rules": states,
        "events": [
            {"type": v.type.value, "phase": v.phase, "tracks": [o.track_id for o in v.offenders]} for v in violations
        ],
    }


class TraceWriter:
    """Trace records to a JSON-lines file, or a CSV file when its name ends in .csv (one column
    per head's state and lamp share; the rules' states as one JSON column)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self.csv = path.suffix.lower() == ".csv"
        self._file: IO[str] = open(path, "w", encoding="utf-8", newline="")  # noqa: SIM115 (closed in close)
        self._writer: Any = None
        self._columns: list[tuple[str, str | None]] = []  # (head, None: its state | a lamp: its lit share)

    def write(self, record: dict[str, Any]) -> None:
        if not self.csv:
            self._file.write(json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n")
            return
        signals = record["signals"]
        if self._writer is None:
            self._writer = csv.writer(self._file)
            for head, r in signals.items():
                self._columns.append((head, None))
                if "frame" in r:
                    self._columns.append((head, "frame"))
                self._columns += [(head, lamp) for lamp in r["lit"]]
            names = [
                f"{h}.state" if lamp is None else f"{h}.frame" if lamp == "frame" else f"{h}.lit.{lamp}"
                for h, lamp in self._columns
            ]
            self._writer.writerow(["frame", "t", *names, "events", "rules"])
        row: list[Any] = [record["frame"], record["t"]]
        for head, lamp in self._columns:
            r = signals.get(head, {})
            if lamp is None or lamp == "frame":
                row.append(r.get("state" if lamp is None else "frame", ""))
            else:
                row.append(r.get("lit", {}).get(lamp, ""))
        row.append(json.dumps(record["events"], separators=(",", ":")))
        row.append(json.dumps(record["rules"], ensure_ascii=False, separators=(",", ":")))
        self._writer.writerow(row)

    def close(self) -> None:
        self._file.close()


class H264Writer:
    """Frames to a browser-playable MP4: H.264 High, yuv420p, moov atom first (`+faststart`), each
    frame at its own time (pts in ms from the first frame; analysed frames may be irregular)."""

    def __init__(self, path: Path, fps: float = 25.0, crf: int = 23) -> None:
        self.path = path
        self.fps = fps
        self.crf = crf
        self._out: Any = None
        self._stream: Any = None
        self._t0: float | None = None
        self._last_pts = -1
        self.frames = 0
        self._tmp = path.with_name(path.name + ".part")

    def _open(self, w: int, h: int) -> None:
        import av

        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._out = av.open(str(self._tmp), "w", format="mp4", options={"movflags": "+faststart"})
        stream = self._out.add_stream("libx264", rate=Fraction(self.fps).limit_denominator(1000))
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        # Milliseconds for the encoder too (not 1/fps): frames closer than 1/fps must not collide.
        stream.time_base = stream.codec_context.time_base = Fraction(1, 1000)
        stream.options = {"crf": str(self.crf), "preset": "veryfast", "profile": "high"}
        self._stream = stream

    def write(self, image: np.ndarray, t: float) -> None:
        import av

        h, w = image.shape[:2]
        image = image[: h - h % 2, : w - w % 2]  # yuv420p needs even sizes
        if self._out is None:
            self._open(image.shape[1], image.shape[0])
            self._t0 = t
        assert self._t0 is not None
        pts = max(self._last_pts + 1, round((t - self._t0) * 1000))
        self._last_pts = pts
        vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="bgr24")
        vf.pts, vf.time_base = pts, Fraction(1, 1000)
        for packet in self._stream.encode(vf.reformat(format="yuv420p")):
            self._out.mux(packet)
        self.frames += 1

    def close(self) -> None:
        if self._out is None:
            return
        for packet in self._stream.encode(None):
            self._out.mux(packet)
        self._out.close()
        self._out = None
        self._tmp.replace(self.path)


def _color(track_id: int) -> tuple[int, int, int]:
    return PALETTE[track_id % len(PALETTE)]


class DebugOverlay:
    """Draws one analysed frame with the scene, the detections, the tracks and the rules' states."""

    def __init__(self, camera: CameraConfig) -> None:
        self.camera = camera
        self._size: tuple[int, int] | None = None
        self.zones: list[PolygonZone] = []
        self.lines: list[tuple[str, np.ndarray, np.ndarray]] = []
        self.lanes: list[tuple[str, np.ndarray, np.ndarray]] = []
        self.trails: dict[int, deque[tuple[int, int]]] = {}
        self._events: deque[tuple[float, str]] = deque()

    def _scene(self, w: int, h: int) -> None:
        if self._size == (w, h):
            return
        from edge.pipeline import build_zones

        self._size = (w, h)
        scene, ref = self.camera.scene, self.camera.scene.reference_size
        self.zones = build_zones(self.camera, (w, h))
        self.lines = []
        for ln in scene.lines:
            a, b = scale_points(np.asarray(ln.points, np.float32), ref, (w, h))
            self.lines.append((ln.id, a, b))
        self.lanes = []
        for lane in scene.lanes:
            poly = scale_points(np.asarray(lane.polygon, np.float32), ref, (w, h))
            arrow = scale_points(np.asarray(lane.direction, np.float32), ref, (w, h))
            self.lanes.append((lane.id, poly, arrow))

    def draw(
        self, image: np.ndarray, detections: Detections, tracks: TrackedObjects, record: dict[str, Any],
        board: SignalBoard | None,
    ) -> np.ndarray:
        img = image.copy()
        h, w = img.shape[:2]
        self._scene(w, h)
        self.scale = max(0.4, min(w, h) / 900)
        self.thick = max(2, round(min(w, h) / 200))
        self._draw_scene(img)
        self._draw_detections(img, detections, tracks)
        self._draw_tracks(img, tracks)
        self._draw_signals(img, board)
        panel = self._draw_rule_states(img, record)
        self._draw_panel(img, record, panel)
        return img

    # -- text -------------------------------------------------------------------------------
    def _text(self, img: np.ndarray, text: str, org: tuple[int, int], color: tuple[int, int, int],
              scale: float | None = None, bg: tuple[int, int, int] | None = (0, 0, 0)) -> int:
        """Text with a dark backing box at org (its top-left); returns the box's height."""
        s = scale or self.scale
        th_px = max(1, round(s * 2))
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, s, th_px)
        # Kept inside the frame: a tag under a box at the bottom edge goes just above it.
        x = min(max(0, org[0]), max(0, img.shape[1] - tw - 4))
        y = min(max(0, org[1]), max(0, img.shape[0] - th - base - 4))
        if bg is not None:
            cv2.rectangle(img, (x, y), (x + tw + 4, y + th + base + 4), bg, -1)
        cv2.putText(img, text, (x + 2, y + th + 2), cv2.FONT_HERSHEY_SIMPLEX, s, color, th_px, cv2.LINE_AA)
        return th + base + 4

    # -- scene ------------------------------------------------------------------------------
    def _draw_scene(self, img: np.ndarray) -> None:
        fill = img.copy()
        for z in self.zones:
            cv2.fillPoly(fill, [z.polygon.astype(np.int32)], ZONE_COLORS.get(z.kind, ZONE_DEFAULT))
        cv2.addWeighted(fill, 0.15, img, 0.85, 0, dst=img)
        for z in self.zones:
            pts = z.polygon.astype(np.int32)
            color = ZONE_COLORS.get(z.kind, ZONE_DEFAULT)
            cv2.polylines(img, [pts], True, color, self.thick, cv2.LINE_AA)
            x, y = pts.min(axis=0)
            self._text(img, z.id, (int(x) + 2, int(y) + 2), color, self.scale * 0.8)
        for lane_id, poly, arrow in self.lanes:
            cv2.polylines(img, [poly.astype(np.int32)], True, LANE_COLOR, 1, cv2.LINE_AA)
            la, lb = (int(arrow[0][0]), int(arrow[0][1])), (int(arrow[1][0]), int(arrow[1][1]))
            cv2.arrowedLine(img, la, lb, LANE_COLOR, self.thick, cv2.LINE_AA, tipLength=0.15)
            self._text(img, lane_id, (la[0] + 2, la[1] + 2), LANE_COLOR, self.scale * 0.8)
        for line_id, a, b in self.lines:
            pa, pb = (int(a[0]), int(a[1])), (int(b[0]), int(b[1]))
            cv2.line(img, pa, pb, LINE_COLOR, self.thick + 1, cv2.LINE_AA)
            cv2.circle(img, pa, self.thick + 2, LINE_COLOR, -1)  # a: where the line starts
            d = b - a
            # Towards the line's right of a->b (DirectedLine.side > 0): where "forward" crossings go.
            n = np.array([-d[1], d[0]], np.float32) / max(float(np.linalg.norm(d)), 1e-6)
            mid = (a + b) / 2
            tip = mid + n * max(18.0, 0.06 * min(img.shape[:2]))
            cv2.arrowedLine(img, (int(mid[0]), int(mid[1])), (int(tip[0]), int(tip[1])), LINE_COLOR, self.thick,
                            cv2.LINE_AA, tipLength=0.35)
            self._text(img, f"{line_id} (fwd)", (int(tip[0]) + 4, int(tip[1]) - 8), LINE_COLOR, self.scale * 0.8)

    # -- objects ----------------------------------------------------------------------------
    def _draw_detections(self, img: np.ndarray, dets: Detections, tracks: TrackedObjects) -> None:
        """Every detection as a thin box; labelled (class, confidence) when no track carries it (a
        track's label says both)."""
        from edge.geometry import box_iou

        for i in range(len(dets)):
            x1, y1, x2, y2 = (int(v) for v in dets.xyxy[i])
            cv2.rectangle(img, (x1, y1), (x2, y2), DETECTION_COLOR, 1)
            if any(box_iou(dets.xyxy[i], tracks.xyxy[k]) > 0.7 for k in range(len(tracks))):
                continue
            self._text(img, f"{dets.class_name(i)} {float(dets.confidence[i]):.2f}", (x1, y2 + 1), DETECTION_COLOR,
                       self.scale * 0.6, None)

    def _draw_tracks(self, img: np.ndarray, tracks: TrackedObjects) -> None:
        live = set()
        ground = tracks.ground_points() if len(tracks) else np.zeros((0, 2), np.float32)
        for i in range(len(tracks)):
            tid = int(tracks.track_id[i])
            live.add(tid)
            trail = self.trails.setdefault(tid, deque(maxlen=TRAIL_POINTS))
            trail.append((int(ground[i][0]), int(ground[i][1])))
            color = _color(tid)
            x1, y1, x2, y2 = (int(v) for v in tracks.xyxy[i])
            cv2.rectangle(img, (x1, y1), (x2, y2), color, self.thick)
            if len(trail) > 1:
                cv2.polylines(img, [np.array(trail, np.int32)], False, color, self.thick, cv2.LINE_AA)
            label = f"#{tid} {tracks.class_name(i)} {float(tracks.confidence[i]):.2f}"
            self._text(img, label, (x1, y1 - round(20 * self.scale) - 4), (255, 255, 255), self.scale * 0.6, color)
        self.trails = {k: v for k, v in self.trails.items() if k in live}

    def _draw_signals(self, img: np.ndarray, board: SignalBoard | None) -> None:
        if board is None:
            return
        for head_id, head in board.heads.items():
            r = board.readings[head_id]
            for color, (x1, y1, x2, y2) in head.lamp_boxes:
                lit = r.lit.get(color, 0.0)
                cv2.rectangle(img, (x1, y1), (x2, y2), LAMP_COLORS[color], 2 if r.state.value == color else 1)
                self._text(img, f"{lit:.2f}", (x2 + 3, y1), LAMP_COLORS[color], self.scale * 0.55)
            if head.lamp_boxes:
                x1 = min(b[1][0] for b in head.lamp_boxes)
                y1 = min(b[1][1] for b in head.lamp_boxes)
                since = "" if r.since is None else f" {max(0.0, board.t - r.since):.1f}s"
                self._text(img, f"{head_id}: {r.state.value}{since}", (x1 - 4, y1 - round(30 * self.scale) - 4),
                           LAMP_COLORS.get(r.state.value, LAMP_COLORS["unknown"]), self.scale * 0.8)

    # -- rule states ------------------------------------------------------------------------
    def _tag(self, img: np.ndarray, box: list[float] | None, text: str, color: tuple[int, int, int] = STATE_COLOR,
             row: int = 0, outline: bool = False) -> None:
        if box is None:
            return
        x1, y1, x2, y2 = (int(v) for v in box)
        if outline:
            cv2.rectangle(img, (x1, y1), (x2, y2), color, self.thick)
        self._text(img, text, (x1, y2 + 2 + row * round(26 * self.scale)), color, self.scale * 0.7)

    def _side_marker(self, img: np.ndarray, box: list[float] | None, beyond: bool) -> None:
        """A line side at the ground point: filled past the line (the controlled direction's side),
        hollow before it."""
        if box is None:
            return
        p = (int((box[0] + box[2]) / 2), int(box[3]))
        r = self.thick + 3
        cv2.circle(img, p, r, LINE_COLOR, -1 if beyond else self.thick, cv2.LINE_AA)

    def _draw_rule_states(self, img: np.ndarray, record: dict[str, Any]) -> list[str]:
        """Annotations at the objects each rule follows; returns one panel line per rule."""
        lines: list[str] = []
        for row, st in enumerate(record["rules"]):
            name = st.get("rule", "?")
            if "dwell" in st:
                for d in st["dwell"]:
                    if d.get("seconds") is None or (d["seconds"] < DWELL_SHOWN_FROM and not d.get("reported")):
                        continue  # a timer just started (passing traffic): in the trace, not on the picture
                    flag = " !" if d.get("reported") else (" moving" if d.get("moving") else "")
                    label = SHORT_NAMES.get(name, name[:10])
                    self._tag(img, d.get("box"), f"{label} {d['seconds']:.1f}/{d['limit']:g}s{flag}", row=row)
                top = max((d["seconds"] or 0.0 for d in st["dwell"]), default=0.0)
                lines.append(f"{name}: {len(st['dwell'])} timing, longest {top:.1f}s")
            elif "sides" in st:
                crossed = 0
                for d in st["sides"]:
                    crossed += bool(d["crossed"])
                    if not d.get("seen", True):
                        continue  # lost a moment ago: remembered, not on this frame
                    self._side_marker(img, d["box"], d["side"] == st.get("want", 1))
                    if d["crossed"]:
                        self._tag(img, d["box"], f"crossed {st['line']}{' (reported)' if d['reported'] else ''}",
                                  EVENT_COLOR if d["reported"] else STATE_COLOR, row=row)
                lines.append(f"{name}: {st['signal']}={st['signal_state']}, {len(st['sides'])} sides, {crossed} crossed")
            elif "votes" in st:
                for d in st["votes"]:
                    self._tag(img, d["box"], f"helmet: {d['with']} with / {d['without']} bare ({d['checks']})", row=row)
                lines.append(f"{name}: {len(st['votes'])} motorcycles voting")
            elif "occupants" in st:
                for d in st["occupants"]:
                    self._tag(img, d["box"], f"{d['kind'][:6]} {d['seconds']:.0f}/{d['limit']:g}s", (255, 160, 0),
                              outline=d["kind"] == "static_object")
                inc = ", ".join(i["zone"] for i in st["incidents"]) or "none"
                lines.append(f"{name}: {len(st['occupants'])} occupants, incidents: {inc}")
            elif "entered" in st:
                for d in st["entered"]:
                    self._tag(img, d["box"], f"entered {d['line']} {d['seconds']:.1f}/{d['limit']:g}s", row=row)
                lines.append(f"{name}: {len(st['entered'])} vehicles entered")
            elif "items" in st:
                for d in st["items"]:
                    away = "" if d["owner_away"] is None else f" #{d['owner']} away {d['owner_away']:.1f}/{d['left_seconds']:g}s"
                    self._tag(img, d["box"], f"{d['class'][:10]} {d['seconds']:.1f}s{away}", (200, 80, 255), outline=True)
                lines.append(f"{name}: {len(st['items'])} candidate objects")
            else:
                lines.append(f"{name}: {json.dumps(st, separators=(',', ':'))[:60]}")
        return lines

    def _draw_panel(self, img: np.ndarray, record: dict[str, Any], rule_lines: list[str]) -> None:
        t = record["t"]
        for e in record["events"]:
            self._events.append((t, f"EVENT {e['type']} {e['phase']} " + " ".join(f"#{x}" for x in e["tracks"])))
        while self._events and t - self._events[0][0] > EVENT_SHOW_SECONDS:
            self._events.popleft()
        s = self.scale * 0.75
        y = 4
        y += self._text(img, f"t={t:.2f}s  frame {record['frame']}", (4, y), (255, 255, 255), s)
        for head_id, r in record["signals"].items():
            lit = " ".join(f"{c[0]}={v:.2f}" for c, v in r["lit"].items())
            frame = f" (frame: {r['frame']})" if r.get("frame", r["state"]) != r["state"] else ""
            y += self._text(img, f"{head_id}: {r['state']}{frame}  {lit}", (4, y),
                            LAMP_COLORS.get(r["state"], LAMP_COLORS["unknown"]), s)
        for line in rule_lines:
            y += self._text(img, line, (4, y), STATE_COLOR, s)
        for _, text in self._events:
            y += self._text(img, text, (4, y), (255, 255, 255), s, EVENT_COLOR)


class DebugRecorder:
    """The analyzer's `on_frame` hook: a debug video and/or traces of every analysed frame."""

    def __init__(
        self, camera: CameraConfig, video: Path | None = None, traces: Sequence[Path] = (), fps: float | None = None
    ) -> None:
        self.overlay = DebugOverlay(camera)
        self.video = H264Writer(video, fps or camera.camera.analysis_fps or 25.0) if video is not None else None
        self.traces = [TraceWriter(p) for p in traces]
        self.frames = 0

    def __call__(
        self, frame: Frame, detections: Detections, tracks: TrackedObjects, rules: list[Rule],
        violations: list[Violation],
    ) -> None:
        record = frame_record(frame, rules, violations)
        for trace in self.traces:
            trace.write(record)
        if self.video is not None:
            image = self.overlay.draw(frame.image, detections, tracks, record, signal_board(rules))
            self.video.write(image, frame.pts)
        self.frames += 1

    def close(self) -> None:
        if self.video is not None:
            self.video.close()
        for trace in self.traces:
            trace.close()


MAX_RECORD_SECONDS = 120.0


def record_seconds(payload: bytes | str) -> float:
    """The seconds a debug-record request asks for: `{"seconds": N}` (or a bare number), 0 < N <= 120.
    Raises ValueError otherwise."""
    try:
        data = json.loads(payload)
    except (ValueError, TypeError):
        raise ValueError("debug record: payload must be JSON, e.g. {\"seconds\": 30}") from None
    seconds = data.get("seconds") if isinstance(data, dict) else data
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not 0 < seconds <= MAX_RECORD_SECONDS:
        raise ValueError(f"debug record: seconds must be a number in (0, {MAX_RECORD_SECONDS:g}]")
    return float(seconds)


class DebugTap:
    """A live camera's on_frame hook that records nothing until asked: `request(seconds)` (from any
    thread, e.g. an MQTT callback) makes the next `seconds` of analysed frames a debug video and a
    JSON-lines trace under `folder` (`<camera>-<first frame's pts>.mp4` / `.jsonl`), then it stops by
    itself. A request while recording extends nothing: one recording at a time."""

    def __init__(self, camera: CameraConfig, folder: Path) -> None:
        import threading

        self.camera = camera
        self.folder = folder
        self._lock = threading.Lock()
        self._wanted: float | None = None
        self._recorder: DebugRecorder | None = None
        self._until = 0.0
        self.written: list[Path] = []  # the videos finished so far

    def request(self, seconds: float) -> bool:
        """Ask for a recording; False when one is already asked for or under way."""
        seconds = min(float(seconds), MAX_RECORD_SECONDS)
        with self._lock:
            if self._wanted is not None or self._recorder is not None:
                return False
            self._wanted = seconds
            return True

    @property
    def recording(self) -> bool:
        return self._recorder is not None

    def __call__(
        self, frame: Frame, detections: Detections, tracks: TrackedObjects, rules: list[Rule],
        violations: list[Violation],
    ) -> None:
        if self._recorder is None:
            with self._lock:
                seconds, self._wanted = self._wanted, None
            if seconds is None:
                return
            stem = f"{self.camera.camera.id}-{frame.pts:.3f}"
            self._recorder = DebugRecorder(
                self.camera, self.folder / f"{stem}.mp4", [self.folder / f"{stem}.jsonl"]
            )
            self._until = frame.pts + seconds
        self._recorder(frame, detections, tracks, rules, violations)
        if frame.pts >= self._until:
            self.close()

    def close(self) -> None:
        """Finish a recording under way (the node stopping, or its time is up)."""
        recorder, self._recorder = self._recorder, None
        if recorder is not None:
            recorder.close()
            if recorder.video is not None:
                self.written.append(recorder.video.path)
