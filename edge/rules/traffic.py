"""Traffic rules: red light, stop line, wrong way, lane class, forbidden turn, speeding.

All of them follow vehicles through `VehicleMotion`, which stitches a track that breaks and resumes
(occlusion in dense motorbike traffic, an id switch) back onto the same vehicle by place and time,
so one act makes one event, and lets a rider bound to a two-wheeler stand in for it when its box
drops (occlusion, frame edge, detector miss). Crossings are judged on the box's ground-contact
point (bottom centre) moving between two analysed frames, against the drawn line: geometry, not
the tracker's ids.

Signal-dependent rules accuse nobody while the signal is unknown.
"""

from __future__ import annotations

import dataclasses
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

import numpy as np
from pydantic import Field, field_validator

from contract.events import Category
from edge.crops import cut
from edge.detections import VEHICLES
from edge.geometry import DirectedLine, PolygonZone, box_iou, scale_points
from edge.rules.base import (
    BuildContext,
    Moment,
    Observation,
    Offender,
    Overlay,
    RuleSpec,
    Texts,
    Violation,
    ViolationKind,
    box_tuple,
    debug_box,
    register,
)
from edge.rules.signals import SignalBoard, SignalReading, SignalState, camera_signal_board
from edge.scene import VEHICLE_CLASSES, GroundCalibration, LaneConfig, LaneId, LineId, SignalId, ZoneId, _Model

RED_LIGHT = ViolationKind(
    "red_light",
    Category.TRAFFIC,
    title=Texts("Vượt đèn đỏ", "Running a red light"),
    subject=Texts("phương tiện", "a vehicle"),
    lead=Texts(
        "Camera {camera} ghi nhận {subject} vượt qua vạch dừng khi đèn tín hiệu màu đỏ tại {place}.",
        "Camera {camera} recorded {subject} crossing the stop line on a red signal at {place}.",
    ),
)
STOP_LINE = ViolationKind(
    "stop_line",
    Category.TRAFFIC,
    title=Texts("Dừng xe vượt quá vạch dừng", "Stopping past the stop line"),
    subject=Texts("phương tiện", "a vehicle"),
    lead=Texts(
        "Camera {camera} ghi nhận {subject} dừng chờ đèn đỏ vượt quá vạch dừng, lấn vạch người đi bộ tại {place}.",
        "Camera {camera} recorded {subject} waiting at a red light past the stop line or on the crosswalk at {place}.",
    ),
)
WRONG_WAY = ViolationKind(
    "wrong_way",
    Category.TRAFFIC,
    title=Texts("Đi ngược chiều", "Wrong-way driving"),
    subject=Texts("phương tiện", "a vehicle"),
    lead=Texts(
        "Camera {camera} ghi nhận {subject} đi ngược chiều của làn đường tại {place}.",
        "Camera {camera} recorded {subject} driving against the direction of the lane at {place}.",
    ),
)
LANE = ViolationKind(
    "lane",
    Category.TRAFFIC,
    title=Texts("Đi sai làn đường", "Wrong lane"),
    subject=Texts("phương tiện", "a vehicle"),
    lead=Texts(
        "Camera {camera} ghi nhận {subject} đi vào làn đường không dành cho loại phương tiện này tại {place}.",
        "Camera {camera} recorded {subject} in a lane not allowed to its vehicle class at {place}.",
    ),
)
FORBIDDEN_TURN = ViolationKind(
    "forbidden_turn",
    Category.TRAFFIC,
    title=Texts("Chuyển hướng sai quy định", "Forbidden turn"),
    subject=Texts("phương tiện", "a vehicle"),
    lead=Texts(
        "Camera {camera} ghi nhận {subject} chuyển hướng tại nơi cấm rẽ tại {place}.",
        "Camera {camera} recorded {subject} making a forbidden turn at {place}.",
    ),
)
SPEEDING = ViolationKind(
    "speeding",
    Category.TRAFFIC,
    title=Texts("Chạy quá tốc độ quy định", "Speeding"),
    subject=Texts("phương tiện", "a vehicle"),
    lead=Texts(
        "Camera {camera} ghi nhận {subject} chạy quá tốc độ cho phép tại {place}.",
        "Camera {camera} recorded {subject} exceeding the speed limit at {place}.",
    ),
)


_SIGNAL_HELP = (
    "the signal head controlling it (scene.signals), or a list of heads showing the same phase (both poles): "
    "red when at least one reads red and none reads green or yellow, unknown when they disagree"
)


class _SignalHeads(_Model):
    """`signal`: one head's id (as in v0.1) or a list of them."""

    signal: SignalId | list[SignalId] = Field(description=_SIGNAL_HELP)

    @field_validator("signal")
    @classmethod
    def _heads(cls, v: str | list[str]) -> str | list[str]:
        if isinstance(v, list) and (not v or len(set(v)) != len(v)):
            raise ValueError("a list of signal heads must name at least one head, each once")
        return v

    @property
    def heads(self) -> list[str]:
        return [self.signal] if isinstance(self.signal, str) else list(self.signal)


class RedLightConfig(_SignalHeads):
    line: LineId = Field(description="the stop line (scene.lines)")
    direction: Literal["forward", "backward"] = Field("forward", description="controlled crossing direction of the line")
    vehicle_classes: list[str] = Field(default_factory=lambda: list(VEHICLE_CLASSES), min_length=1)
    grace_seconds: float = Field(0.0, ge=0, description="crossings this soon after the red began are forgiven")


class StopLineConfig(_SignalHeads):
    line: LineId
    zone: ZoneId = Field(description="the area just beyond the stop line (scene.zones)")
    still_seconds: float = Field(1.0, gt=0, description="at rest in the zone this long while red")
    still_tolerance: float = Field(0.2, gt=0, le=2, description="movement allowed, as a share of the box height")
    vehicle_classes: list[str] = Field(default_factory=lambda: list(VEHICLE_CLASSES), min_length=1)


class WrongWayConfig(_Model):
    lanes: list[LaneId] = Field(min_length=1)
    min_distance: float = Field(0.08, gt=0, description="against the lane, as a share of the frame height")
    min_seconds: float = Field(1.0, gt=0)
    max_angle_deg: float = Field(50, gt=0, le=90, description="how far from straight against the lane still counts")
    vehicle_classes: list[str] = Field(default_factory=lambda: list(VEHICLE_CLASSES), min_length=1)
    riders: bool = Field(
        False,
        description="also bind riders to bikes only the detector sees, no track follows (distant riders);"
        " camera-wide: the traffic rules share one motion model",
    )


class LaneRuleConfig(_Model):
    lanes: list[LaneId] = Field(min_length=1, description="lanes with allowed_classes")
    min_seconds: float = Field(1.0, gt=0)


class TurnConfig(_Model):
    entry: LineId
    exit: LineId
    entry_direction: Literal["forward", "backward", "any"] = "any"
    exit_direction: Literal["forward", "backward", "any"] = "any"


class ForbiddenTurnConfig(_Model):
    turns: list[TurnConfig] = Field(min_length=1)
    max_seconds: float = Field(15.0, gt=0, description="entry to exit within this time")
    vehicle_classes: list[str] = Field(default_factory=lambda: list(VEHICLE_CLASSES), min_length=1)


class SpeedingConfig(_Model):
    limit_kmh: float = Field(gt=0)
    tolerance_kmh: float = Field(5.0, ge=0)
    window_seconds: float = Field(1.0, gt=0, description="speed measured over this span of the track")
    min_seconds: float = Field(0.5, ge=0, description="over the limit this long")
    zone: ZoneId | None = Field(None, description="measure only inside this zone")
    vehicle_classes: list[str] = Field(default_factory=lambda: list(VEHICLE_CLASSES), min_length=1)


HISTORY_SECONDS = 6.0
SAME_VEHICLE_IOU = 0.5
BIKES = ("motorcycle", "bicycle")
RIDE_SECONDS = 2.0  # a person's recent sightings over a two-wheeler, kept to tell whether they move together
TOGETHER = 0.35  # rider and bike moved alike: their steps differ by less than this share of the bike's height
MOVED = 0.25  # ... and the bike moved at least this share of its height (a parked bike binds nobody)
UNTRACKED_BIKE_CONFIDENCE = 0.45


@dataclass
class Vehicle:
    vid: int
    track_id: int
    class_name: str
    box: np.ndarray
    point: np.ndarray
    first_t: float
    last_t: float
    history: deque = field(default_factory=lambda: deque())  # (t, point (2,), box (4,))
    confidences: list[float] = field(default_factory=list)
    best_crop: np.ndarray | None = None  # the vehicle where its box was largest (for plates)
    best_area: float = 0.0
    maybe_same_as: set[int] = field(default_factory=set)  # lost vehicles it may be (see continues)
    # The person track standing in for it on this frame (its own box dropped: occlusion, frame
    # edge, detector miss); its box is then the one predicted from the rider's. None: seen itself.
    rider: int | None = None

    def previous(self) -> tuple[float, np.ndarray] | None:
        """The ground point on the frame before the current one."""
        if len(self.history) < 2:
            return None
        t, p, _ = self.history[-2]
        return t, p

    def at(self, t: float) -> tuple[float, np.ndarray, np.ndarray]:
        """The history entry closest to (and not after) time t, else the oldest."""
        best = self.history[0]
        for entry in self.history:
            if entry[0] <= t:
                best = entry
            else:
                break
        return best

    def velocity(self, span: float = 1.0) -> np.ndarray:
        """Ground-point pixels per second over the last `span` seconds of the path."""
        t0, p0, _ = self.at(self.last_t - span)
        dt = self.last_t - t0
        return (self.point - p0) / dt if dt > 0 else np.zeros(2, np.float32)

    @property
    def confidence(self) -> float:
        return round(float(np.mean(self.confidences[-20:])), 4) if self.confidences else 0.0

    def offender(self) -> Offender:
        return Offender(self.track_id, self.class_name, box_tuple(self.box), self.confidence)


@dataclass
class _Seat:
    """What one person track has shown of riding."""

    # (t, which bike (its vehicle id, -1 for a detection no track follows), person ground point,
    # bike ground point, bike box), over the last RIDE_SECONDS
    seen: deque = field(default_factory=deque)
    last_t: float = 0.0  # the person track last seen (a lost track found again keeps its binding)
    vid: int | None = None  # the vehicle it is bound to (they moved together)
    cls: str = "motorcycle"
    rel: np.ndarray | None = None  # the bike's box minus the person's ground point, in person-box heights


def seated(person: np.ndarray, bike: np.ndarray) -> bool:
    """A person's lower body over a two-wheeler's box: the bike's centre under them, their feet
    between the bike's top and its wheels, their head above the bike's top."""
    x1, y1, x2, y2 = (float(v) for v in person)
    bx1, by1, bx2, by2 = (float(v) for v in bike)
    h, bh = y2 - y1, by2 - by1
    cx = (bx1 + bx2) / 2
    return x1 <= cx <= x2 and by1 < y2 and by2 > y2 - 0.3 * h and y2 <= by2 + 0.15 * bh and y1 < by1


def _bottom_centre(box: np.ndarray) -> np.ndarray:
    return np.array([(box[0] + box[2]) / 2, box[3]], np.float32)


class VehicleMotion:
    """Vehicles of the current frame with their recent ground-point paths, track breaks stitched,
    and riders carrying their vehicle.

    A person seen over a two-wheeler and moving with it is bound to it (`seated`, then their steps
    agree over RIDE_SECONDS). When the vehicle's own box drops (occlusion, frame edge, detector
    miss) the rider's track stands in for it: the same vehicle id, its box predicted from the
    rider's by the offset learned while both were seen (`Vehicle.rider` names the person). One
    vehicle per bike: two riders on it stand in once. A person never seen riding is never a vehicle.
    A person over a bike that no track follows (distant riders) is bound to a vehicle of its own.

    Shared by all traffic rules of a camera; `update` is idempotent per frame time.
    """

    def __init__(
        self, *, stitch_seconds: float = 2.0, stitch_distance: float = 0.8, keep_crops: bool = False,
        riders: bool = True, untracked_bikes: bool = False,
    ) -> None:
        self.keep_crops = keep_crops
        self.riders = riders
        # Bikes the detector sees but no track follows can bind riders too (distant riders): off by
        # default, as the detector also calls a walker's legs a motorbike at low confidence.
        self.untracked_bikes = untracked_bikes
        self._seats: dict[int, _Seat] = {}  # person track id -> its riding
        self.stitch_seconds = stitch_seconds
        self.stitch_distance = stitch_distance  # share of the box height
        self.vehicles: dict[int, Vehicle] = {}
        self.current: list[Vehicle] = []
        self._by_track: dict[int, int] = {}
        self._next_vid = 1
        self._t: float | None = None
        self._relevant: tuple[float | None, set[int]] = (None, set())

    def update(self, obs: Observation) -> list[Vehicle]:
        if self._t is not None and obs.t == self._t:
            return self.current
        t = self._t = obs.t
        tracks = obs.tracks
        ground = tracks.ground_points() if len(tracks) else np.zeros((0, 2), np.float32)
        current: list[Vehicle] = []
        taken: set[int] = set()
        fresh: list[int] = []
        for i in range(len(tracks)):
            if tracks.class_name(i) not in VEHICLES:
                continue
            vid = self._by_track.get(int(tracks.track_id[i]))
            if vid is None or vid not in self.vehicles:
                fresh.append(i)
                continue
            if _kind(tracks.class_name(i)) != _kind(self.vehicles[vid].class_name):
                # A car's track that goes on as a motorbike (or back) has jumped to another vehicle
                # passing close by: that is a new vehicle, and the old one is lost here.
                fresh.append(i)
                continue
            taken.add(vid)
            current.append(self._advance(self.vehicles[vid], tracks, i, ground[i], t))
        for i in fresh:
            tid = int(tracks.track_id[i])
            cls = tracks.class_name(i)
            vid = self._stitch(ground[i], tracks.xyxy[i], t, taken, _kind(cls))
            if vid is None:
                vid = self._new(tid, cls, tracks.xyxy[i], ground[i], t)
            taken.add(vid)
            self._by_track[tid] = vid
            current.append(self._advance(self.vehicles[vid], tracks, i, ground[i], t))
        if self.riders:
            current += self._ride(obs, ground, t, current, taken)
        for vid in [v for v, veh in self.vehicles.items() if t - veh.last_t > HISTORY_SECONDS]:
            del self.vehicles[vid]
        live = set(self.vehicles)
        self._by_track = {k: v for k, v in self._by_track.items() if v in live}
        self.current = current
        if self.keep_crops and obs.image is not None:
            for veh in current:
                area = float((veh.box[2] - veh.box[0]) * (veh.box[3] - veh.box[1]))
                if area > veh.best_area:
                    veh.best_area, veh.best_crop = area, cut(obs.image, veh.box, margin=0.1)
        return current

    def relevant(self) -> set[int]:
        """The vehicle ids a rule still needs to remember: those followed now or lately, and those a
        followed vehicle may be (`maybe_same_as`). Rules cut their 'reported' sets to these, so the
        sets stay as small as the scene, not as long as the camera has run."""
        if self._relevant[0] != self._t or self._t is None:
            ids = set(self.vehicles)
            for veh in self.vehicles.values():
                ids |= veh.maybe_same_as
            self._relevant = (self._t, ids)
        return self._relevant[1]

    def continues(self, veh: Vehicle, reported: set[int]) -> bool:
        """Is this vehicle perhaps one of `reported`, lost by the tracker and found again under a new
        id too late or too far for stitching? Rules use it so one act never makes two events."""
        return bool(veh.maybe_same_as & reported)

    def _lookalikes(self, point: np.ndarray, box: np.ndarray, t: float, horizon: float = 5.0) -> set[int]:
        """Vehicles lost within `horizon` seconds that are where this new one is (or would be by now)."""
        size = max(float(box[3] - box[1]), 8.0)
        out = set()
        for vid, old in self.vehicles.items():
            if old.last_t >= t or t - old.last_t > horizon:
                continue
            predicted = old.point + old.velocity() * (t - old.last_t)
            d = min(float(np.linalg.norm(point - predicted)), float(np.linalg.norm(point - old.point)))
            if d <= 1.5 * size:
                out.add(vid)
                out |= old.maybe_same_as
        return out

    def by_track(self, track_id: int) -> Vehicle | None:
        vid = self._by_track.get(track_id)
        return self.vehicles.get(vid) if vid is not None else None

    def _new(self, tid: int, cls: str, box: np.ndarray, point: np.ndarray, t: float) -> int:
        vid = self._next_vid
        self._next_vid += 1
        self.vehicles[vid] = Vehicle(vid, tid, cls, box.copy(), point.copy(), t, t)
        self.vehicles[vid].maybe_same_as = self._lookalikes(point, box, t)
        return vid

    def _ride(self, obs: Observation, ground: np.ndarray, t: float, current: list[Vehicle], taken: set[int]) -> list[Vehicle]:
        """Bind the people riding two-wheelers to them, and let a bound rider stand in for its
        vehicle when the vehicle's own box is missing on this frame."""
        tracks, dets = obs.tracks, obs.detections
        bikes: list[tuple[np.ndarray, np.ndarray, int | None, str]] = [
            (veh.box, veh.point, veh.vid, veh.class_name) for veh in current if veh.class_name in BIKES
        ]
        if dets is not None:
            # A walker's legs are at times called a motorbike (0.26-0.53 on the synthetic scenes):
            # by default a bike no track follows binds only when the detector is sure of it.
            least = 0.0 if self.untracked_bikes else UNTRACKED_BIKE_CONFIDENCE
            for k in range(len(dets)):
                if float(dets.confidence[k]) < least:
                    continue
                if dets.class_name(k) in BIKES and not any(box_iou(dets.xyxy[k], v.box) >= 0.5 for v in current):
                    bikes.append((dets.xyxy[k], _bottom_centre(dets.xyxy[k]), None, dets.class_name(k)))
        vehicle_boxes = [veh.box for veh in current]
        out: list[Vehicle] = []
        for i in range(len(tracks)):
            if tracks.class_name(i) != "person":
                continue
            tid = int(tracks.track_id[i])
            pbox, pg = tracks.xyxy[i], ground[i]
            ph = max(1.0, float(pbox[3] - pbox[1]))
            seat = self._seats.setdefault(tid, _Seat())
            seat.last_t = t
            under = [b for b in bikes if seated(pbox, b[0])]
            bike_box: np.ndarray | None = None
            if under:
                box, point, vid, cls = min(under, key=lambda b: abs(float(b[1][0]) - float(pg[0])))
                seat.seen.append((t, -1 if vid is None else vid, pg.copy(), point.copy(), box.copy()))
                while seat.seen and t - seat.seen[0][0] > RIDE_SECONDS:
                    seat.seen.popleft()
                if vid is not None and vid != seat.vid and _together(seat.seen):
                    seat.vid, seat.cls, seat.rel = vid, cls, None  # rides this tracked bike
                elif vid is None and seat.vid is None and _together(seat.seen):
                    seat.vid, seat.cls = self._untracked(seat, cls, tid, t), cls  # a bike no track follows
                if seat.vid is not None and (vid is None or vid == seat.vid):
                    rel = (box - np.tile(pg, 2)) / ph
                    seat.rel = rel if seat.rel is None else 0.7 * seat.rel + 0.3 * rel
                if vid is not None:
                    continue  # over a bike seen on this frame: that bike is the vehicle, not the person
                bike_box = box
            veh = self.vehicles.get(seat.vid) if seat.vid is not None else None
            if veh is None or seat.rel is None or veh.vid in taken:
                continue  # not a rider, or its vehicle is seen (or stood in for by its other rider)
            area = max(1.0, float((pbox[2] - pbox[0]) * ph))
            if max((_inter(pbox, b) / area for b in vehicle_boxes), default=0.0) >= 0.3:
                continue  # behind another vehicle: where its own bike is cannot be told
            box = bike_box if bike_box is not None else (np.tile(pg, 2) + seat.rel * ph).astype(np.float32)
            taken.add(veh.vid)
            out.append(self._stand_in(veh, tid, box, seat.cls, float(tracks.confidence[i]), t))
        self._seats = {k: v for k, v in self._seats.items() if t - v.last_t <= HISTORY_SECONDS}
        return out

    def _untracked(self, seat: _Seat, cls: str, tid: int, t: float) -> int:
        """The vehicle of a rider over a bike no track follows: the one a fellow rider of the same
        bike already has, else a new one whose path starts where the bike was first seen under them
        (one bike, one vehicle)."""
        box = seat.seen[-1][4]
        for other in self._seats.values():
            veh = self.vehicles.get(other.vid) if other.vid is not None else None
            if veh is not None and veh.rider is not None and t - veh.last_t <= 0.5 and box_iou(veh.box, box) >= 0.3:
                return veh.vid
        first = next(s for s in seat.seen if s[1] == -1)
        vid = self._new(tid, cls, first[4], first[3], first[0])
        veh = self.vehicles[vid]
        veh.history.extend((s[0], s[3].copy(), s[4]) for s in seat.seen if s[1] == -1 and s[0] < t)
        veh.last_t = veh.history[-1][0] if veh.history else first[0]
        return vid

    def _stand_in(self, veh: Vehicle, tid: int, box: np.ndarray, cls: str, confidence: float, t: float) -> Vehicle:
        veh.rider = tid
        veh.class_name = cls
        veh.box = np.asarray(box, np.float32).copy()
        veh.point = _bottom_centre(veh.box)
        veh.last_t = t
        veh.history.append((t, veh.point.copy(), veh.box))
        while veh.history and t - veh.history[0][0] > HISTORY_SECONDS:
            veh.history.popleft()
        veh.confidences.append(confidence)
        return veh

    def _advance(self, veh: Vehicle, tracks, i: int, point: np.ndarray, t: float) -> Vehicle:
        veh.rider = None
        veh.track_id = int(tracks.track_id[i])
        veh.class_name = tracks.class_name(i)
        veh.box = tracks.xyxy[i].copy()
        veh.point = point.copy()
        veh.last_t = t
        veh.history.append((t, point.copy(), veh.box))
        while veh.history and t - veh.history[0][0] > HISTORY_SECONDS:
            veh.history.popleft()
        veh.confidences.append(float(tracks.confidence[i]))
        return veh

    def _stitch(self, point: np.ndarray, box: np.ndarray, t: float, taken: set[int], kind: str) -> int | None:
        """A vehicle of the same kind lost a moment ago whose last place is near this new track's:
        the same one."""
        height = float(box[3] - box[1])
        best, best_d = None, self.stitch_distance * max(height, 8.0)
        for vid, veh in self.vehicles.items():
            if vid in taken or veh.last_t >= t or t - veh.last_t > self.stitch_seconds:
                continue
            if _kind(veh.class_name) != kind:
                continue
            # Where it would be now at its recent velocity: a rider hidden for a second moved on.
            d = float(np.linalg.norm(point - (veh.point + veh.velocity() * (t - veh.last_t))))
            if d <= best_d:
                best, best_d = vid, d
        return best


def _together(seen: deque) -> bool:
    """Over the sightings of the same bike as the latest: the bike moved, and the person with it."""
    key = seen[-1][1]
    same = [s for s in seen if s[1] == key]
    if len(same) < 2:
        return False
    heights = [float(s[4][3] - s[4][1]) for s in same]
    for k in range(1, len(same)):
        (_, _, p0, b0, _), (_, _, p1, b1, _) = same[k - 1], same[k]
        if float(np.linalg.norm((b1 - b0) - (p1 - p0))) > TOGETHER * max(heights[k - 1], heights[k]):
            return False
    return float(np.linalg.norm(same[-1][3] - same[0][3])) >= MOVED * max(heights)


def _kind(class_name: str) -> str:
    """Two-wheelers and four-wheelers: the detector may flip car/truck or motorcycle/bicycle on one
    vehicle, never one into the other."""
    return "two" if class_name in ("motorcycle", "bicycle", "person") else "four"


def _inter(a: np.ndarray, b: np.ndarray) -> float:
    return max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(0.0, min(a[3], b[3]) - max(a[1], b[1]))


def _area(b: np.ndarray) -> float:
    return max(1.0, float((b[2] - b[0]) * (b[3] - b[1])))


def _line(line_id: str, points: np.ndarray) -> DirectedLine:
    return DirectedLine(line_id, points[0].astype(np.float32), points[1].astype(np.float32))


def _vehicle_ref(motion: VehicleMotion, vid: int) -> dict:
    """A vehicle in a rule's debug state: its id, its track id and last box, whether seen on this frame."""
    veh = motion.vehicles.get(vid)
    if veh is None:
        return {"vehicle": vid, "track": None, "box": None, "seen": False}
    return {"vehicle": vid, "track": veh.track_id, "box": debug_box(veh.box), "seen": veh.last_t == motion._t}


def _timer(motion: VehicleMotion, vid: int, since: float, limit: float, reported: bool, **extra) -> dict:
    """A per-vehicle timer in a rule's debug state: seconds since `since` (camera clock) against `limit`."""
    t = motion._t if motion._t is not None else since
    return {**_vehicle_ref(motion, vid), **extra, "seconds": round(t - since, 2), "limit": limit, "reported": reported}


def _line_overlay(line: DirectedLine) -> tuple[str, tuple[float, float], tuple[float, float]]:
    return (line.id, (float(line.a[0]), float(line.a[1])), (float(line.b[0]), float(line.b[1])))


class LineSides:
    """Which side of a line each vehicle is on, with a dead band: a box bottom jittering on the line
    while the vehicle waits there crosses nothing. A crossing is a change of confident side within
    the segment's span."""

    def __init__(self, line: DirectedLine, margin: float = 0.08, min_margin_px: float = 2.0) -> None:
        self.line = line
        self.margin = margin  # share of the box height
        self.min_margin_px = min_margin_px
        self.sides: dict[int, int] = {}
        d = line.b - line.a
        self._len = float(np.linalg.norm(d))
        self._u = d / max(self._len, 1e-6)

    def update(self, veh: Vehicle) -> int:
        """+1 crossed forward now, -1 backward, 0 no crossing."""
        rel = veh.point - self.line.a
        along = float(rel @ self._u)
        signed = float(self.line.side(veh.point[None, :])[0]) / max(self._len, 1e-6)
        band = max(self.min_margin_px, self.margin * float(veh.box[3] - veh.box[1]))
        if abs(signed) < band:
            return 0
        side = 1 if signed > 0 else -1
        before = self.sides.get(veh.vid)
        self.sides[veh.vid] = side
        if before is None or before == side or not (-band <= along <= self._len + band):
            return 0
        return side

    def side(self, vid: int) -> int | None:
        return self.sides.get(vid)

    def depth(self, veh: Vehicle) -> float:
        """Signed distance (pixels) of the ground point from the line, positive on the +1 side."""
        return float(self.line.side(veh.point[None, :])[0]) / max(self._len, 1e-6)

    def clear_of(self, veh: Vehicle) -> int:
        """The side the vehicle is on now beyond the dead band (+1 / -1), 0 while on the line."""
        d = self.depth(veh)
        band = max(self.min_margin_px, self.margin * float(veh.box[3] - veh.box[1]))
        return 0 if abs(d) < band else (1 if d > 0 else -1)

    def forget(self, live: set[int]) -> None:
        self.sides = {k: v for k, v in self.sides.items() if k in live}


def _signal_details(reading: SignalReading, t: float, board: SignalBoard, heads: list[str]) -> dict[str, float | int | str | bool]:
    out: dict[str, float | int | str | bool] = {
        "signal": "+".join(heads),
        "signal_state": reading.state.value,
        "red_seconds": round(reading.seconds_in_state(t), 2) if reading.state is SignalState.RED else 0.0,
    }
    if len(heads) > 1:  # which head read what: the red came from these
        out["signal_heads"] = ", ".join(f"{h}={board.reading(h).state.value}" for h in heads)
    return out


def _signal_overlay(board: SignalBoard, heads: list[str], reading: SignalReading, line: DirectedLine) -> Overlay:
    """The line and the head(s) read: those reading the verdict's colour (all when none does)."""
    used = [h for h in heads if board.reading(h).state is reading.state] or heads
    return Overlay(
        lines=(_line_overlay(line),),
        signal_id="+".join(used),
        signal_state=reading.state.value,
        signal_boxes=tuple(box for h in used for box in board.heads[h].lamp_boxes),
    )


# ------------------------------------------------------------------------------ act moments
# The composite evidence of a crossing (edge.composite) shows three moments: before the line with
# the signal, at the line, past it. The frames are kept when they happen, as downscaled copies
# shared by every vehicle and rule that keeps a moment of the same frame (one copy per frame):
# "before" frames are taken on a fixed MOMENT_STEP grid of the camera clock so that all vehicles
# approaching the line share them, "at" frames only for a crossing judged an offence.
# Worst case per camera with the red-light and stop-line rules: <= MAX_BEFORE_FRAMES "before"
# frames (the rules share them: same grid, same copy) + one "at" frame per pending act (<=
# MAX_PENDING per rule) + the current frame, each <= MOMENT_LONG_SIDE px wide (800x450x3 = 1.1 MB):
# about 55 MB if every slot is full at once, 3-6 MB in ordinary traffic (a few acts at a time).
MOMENT_LONG_SIDE = 800
MOMENT_STEP = 0.5  # seconds between "before" frames
BEFORE_KEPT = 3  # "before" moments per vehicle (the newest)
BEFORE_KEEP_SECONDS = 2.0  # a vehicle unseen this long forgets its "before" moments
BEFORE_LEAD = 0.4  # the "before" moment shown is at least this long before the crossing when one is
PAST_DEPTH = 1.0  # "past the line": the ground point this many box heights beyond it ...
PAST_SECONDS = 1.0  # ... or this long after the crossing, whichever comes first
# A crossing on red under a lit green arrow waits until the vehicle's path says which way it went:
# TURN_TRAVEL box heights from the crossing, or TURN_SECONDS (then judged on the path so far).
TURN_TRAVEL = 2.0
TURN_SECONDS = 4.0
TURN_MIN_TRAVEL = 0.75  # less travel than this (box heights) when it must be judged: in doubt
TURN_ANGLE_DEG = 35.0  # off the straight-ahead direction by more than this: a turn


def movement(line: DirectedLine, want: int, origin: np.ndarray, point: np.ndarray, height: float,
             min_travel: float) -> str | None:
    """Which way a vehicle went after crossing `line` in direction `want`: "straight", "left" or
    "right" (the driver's), or None when it has not gone far enough to tell. Straight ahead is
    the line's normal toward the crossing side; the driver's right is that turned a quarter
    clockwise in image coordinates (y down), whichever way the camera faces the traffic."""
    d = line.b - line.a
    forward = want * np.array([-d[1], d[0]], np.float64) / max(float(np.hypot(*d)), 1e-9)
    right = np.array([-forward[1], forward[0]])
    travel = (np.asarray(point, np.float64) - np.asarray(origin, np.float64))
    if float(np.hypot(*travel)) < min_travel * max(height, 1.0):
        return None
    angle = float(np.degrees(np.arctan2(travel @ right, travel @ forward)))
    if angle > TURN_ANGLE_DEG:
        return "right"
    if angle < -TURN_ANGLE_DEG:
        return "left"
    return "straight"
MAX_PENDING = 16  # acts waiting for their "past" moment per rule; beyond that they go out at once
MAX_BEFORE_FRAMES = 16  # distinct "before" frames per rule (a queue waiting on the line holds one each)


class MomentFrames:
    """The downscaled copy of the current frame that moments refer to, made at most once per frame
    (on the first ask) and shared by the rules of a camera."""

    def __init__(self, long_side: int = MOMENT_LONG_SIDE) -> None:
        self.long_side = long_side
        self._last: tuple[float, np.ndarray, float] | None = None

    def get(self, obs: Observation) -> tuple[np.ndarray | None, float]:
        if obs.image is None:
            return None, 1.0
        if self._last is not None and self._last[0] == obs.t:
            return self._last[1], self._last[2]
        h, w = obs.image.shape[:2]
        k = min(1.0, self.long_side / max(h, w))
        if k < 1.0:
            import cv2  # only when pixels come in: rule modules stay pure at import

            # Bilinear: on the camera thread, ~6x cheaper than INTER_AREA for 1080p -> 800 px.
            small = cv2.resize(obs.image, (round(w * k), round(h * k)), interpolation=cv2.INTER_LINEAR)
        else:
            small = obs.image.copy()  # the pipeline's frame is not ours to hold
        self._last = (obs.t, small, k)
        return small, k


def _moment(label, veh: Vehicle, obs: Observation, frames: MomentFrames, reading: SignalReading | None) -> Moment:
    image, k = frames.get(obs)
    state = reading.state.value if reading is not None else None
    red = round(reading.seconds_in_state(obs.t), 2) if reading is not None and reading.state is SignalState.RED else None
    return Moment(label, obs.t, box_tuple(veh.box), image, k, obs.utc_at(obs.t), state, red)


class BeforeMoments:
    """Per vehicle on the approach side of a line, its newest few "before" moments (grid frames)."""

    def __init__(self, frames: MomentFrames) -> None:
        self.frames = frames
        self.kept: dict[int, deque[Moment]] = {}

    def sample(self, veh: Vehicle, obs: Observation, reading: SignalReading | None) -> None:
        kept = self.kept.setdefault(veh.vid, deque(maxlen=BEFORE_KEPT))
        if kept and int(kept[-1].t // MOMENT_STEP) == int(obs.t // MOMENT_STEP):
            return
        kept.append(_moment("before", veh, obs, self.frames, reading))

    def pick(self, vid: int, t: float, state: str | None) -> Moment | None:
        """The moment to show: the newest at least BEFORE_LEAD before `t` showing `state` (the signal
        the act was judged on), else the newest with that lead, else the oldest kept."""
        kept = list(self.kept.pop(vid, ()))
        led = [m for m in kept if t - m.t >= BEFORE_LEAD]
        same = [m for m in led if m.signal_state == state]
        return same[-1] if same else led[-1] if led else kept[0] if kept else None

    def forget(self, t: float, seen: set[int]) -> None:
        """Once per frame: vehicles unseen for BEFORE_KEEP_SECONDS go; one no longer sampled (it
        waits on the line) keeps only its newest moment, the last frame it was clear of the line;
        past MAX_BEFORE_FRAMES distinct frames, the oldest frame goes for everyone."""
        kept = {}
        for vid, dq in self.kept.items():
            if not dq or (vid not in seen and t - dq[-1].t > BEFORE_KEEP_SECONDS):
                continue
            if len(dq) > 1 and t - dq[-1].t > MOMENT_STEP * 2:
                dq = deque([dq[-1]], maxlen=BEFORE_KEPT)
            kept[vid] = dq
        frames = {id(m.image): m.t for dq in kept.values() for m in dq if m.image is not None}
        while len(frames) > MAX_BEFORE_FRAMES:
            oldest = min(frames, key=frames.__getitem__)
            del frames[oldest]
            kept = {vid: d for vid, d in ((v, deque((m for m in dq if id(m.image) != oldest), maxlen=BEFORE_KEPT))
                                          for v, dq in kept.items()) if d}
        self.kept = kept


@dataclass
class _PendingAct:
    """An act judged at the crossing, waiting for its "past the line" moment."""

    violation: Violation
    crossed_t: float
    offender: Offender
    past: Moment | None = None
    # A crossing on a red ball while green arrows were lit: decided by where the vehicle goes.
    arrows: frozenset[str] = frozenset()
    origin: np.ndarray | None = None  # its ground point at the crossing
    height: float = 0.0  # its box height there
    point: np.ndarray | None = None  # its ground point when last seen


# Lane, wrong-way and turn acts are judged after the fact (a second of riding against the lane,
# min_seconds in a lane, the exit line of a turn): their "before" moment is a vehicle's place in an
# earlier grid frame, found through its path history (its box on every frame it was seen), so the
# camera keeps GRID_KEPT grid frames for those rules together and nothing per vehicle until an
# entry (lane, turn) is noted. Worst case on top of the above: GRID_KEPT frames + the grid frames
# of entries still open (a turn's max_seconds at two a second) + MAX_PENDING "at" frames per rule.
GRID_KEPT = 6  # the last 3 s of grid frames
ENTRY_LOOKBACK = 1.0  # an entry's grid frame is at most this old, else the entry has none


class GridFrames:
    """The first analysed frame of each MOMENT_STEP cell, the newest GRID_KEPT of them, as the
    shared downscaled copies of MomentFrames."""

    def __init__(self, frames: MomentFrames, keep: int = GRID_KEPT) -> None:
        self.frames = frames
        self.kept: deque[tuple[float, np.ndarray | None, float, datetime | None]] = deque(maxlen=keep)

    def update(self, obs: Observation) -> None:
        """Once per frame per rule (the rules of a camera share it: the first call does it)."""
        if self.kept and int(self.kept[-1][0] // MOMENT_STEP) == int(obs.t // MOMENT_STEP):
            return
        image, k = self.frames.get(obs)
        self.kept.append((obs.t, image, k, obs.utc_at(obs.t)))

    def moments(self, label, veh: Vehicle, until: float) -> list[Moment]:
        """The vehicle in each kept grid frame up to `until` that it was seen on, oldest first."""
        boxes = {e[0]: e[2] for e in veh.history}
        return [Moment(label, t, box_tuple(boxes[t]), img, k, utc)
                for t, img, k, utc in self.kept if t <= until and t in boxes]

    def entry(self, veh: Vehicle, t: float) -> Moment | None:
        """The vehicle entering at `t` (a lane, a turn's entry line): the newest grid frame before
        it that shows the vehicle, else the current frame when it is a grid frame; none older
        than ENTRY_LOOKBACK."""
        seen = [m for m in self.moments("before", veh, t) if t - m.t <= ENTRY_LOOKBACK]
        earlier = [m for m in seen if m.t < t]
        return earlier[-1] if earlier else seen[-1] if seen else None


def _gone_beyond(at: np.ndarray, toward: np.ndarray) -> Callable[[Vehicle], bool]:
    """Past: the ground point PAST_DEPTH box heights from `at` in the unit direction `toward`."""

    def done(v: Vehicle) -> bool:
        return float((v.point - at) @ toward) >= PAST_DEPTH * float(v.box[3] - v.box[1])

    return done


class PendingActs:
    """Acts judged, waiting for their "past" moment: released when `done` says the vehicle is past
    (checked on each later frame it is seen), PAST_SECONDS after the act, or when it is lost. The
    event keeps the act's times; its offender is where the vehicle was last seen."""

    def __init__(self, frames: MomentFrames) -> None:
        self.frames = frames
        self.acts: dict[tuple[int, str], tuple[_PendingAct, Callable[[Vehicle], bool]]] = {}

    def hold(self, key: tuple[int, str], violation: Violation, veh: Vehicle, t: float,
             done: Callable[[Vehicle], bool], out: list[Violation]) -> None:
        if len(self.acts) >= MAX_PENDING:
            out.append(violation)  # more acts at once than memory allows: this one without "past"
        else:
            self.acts[key] = (_PendingAct(violation, t, veh.offender()), done)

    def see(self, veh: Vehicle, obs: Observation, out: list[Violation]) -> bool:
        """A later frame of `veh`: its "past" moment so far; True when it had a pending act."""
        keys = [k for k in self.acts if k[0] == veh.vid]
        for key in keys:
            act, done = self.acts[key]
            act.offender = veh.offender()
            act.past = _moment("past", veh, obs, self.frames, None)
            if done(veh):
                out.append(self._release(key))
        return bool(keys)

    def expire(self, t: float, live: set[int], out: list[Violation]) -> None:
        for key in [k for k, (act, _) in self.acts.items() if t - act.crossed_t >= PAST_SECONDS or k[0] not in live]:
            out.append(self._release(key))

    def flush(self) -> list[Violation]:
        """Every act still held, as it stands (end of the stream)."""
        return [self._release(key) for key in list(self.acts)]

    def _release(self, key: tuple[int, str]) -> Violation:
        act, _ = self.acts.pop(key)
        v = act.violation
        past = (act.past,) if act.past is not None else ()
        return dataclasses.replace(v, offenders=(act.offender,), moments=v.moments + past)


class _HoldsActs:
    """A rule whose acts wait in `self.pending` for their "past" moment: released at the stream's end."""

    pending: PendingActs

    def flush(self, t: float) -> list[Violation]:
        return self.pending.flush()


class RedLightRule:
    """A vehicle's ground point crosses the stop line in the controlled direction while the head is red.

    The act is judged at the crossing; its event goes out once the vehicle is past the line
    (PAST_DEPTH box heights beyond it, or PAST_SECONDS later, or lost), with the moments before,
    at and past the line for the composite evidence. `started_at`/`ended_at` stay the crossing's.
    """

    def __init__(
        self, config: RedLightConfig, line: DirectedLine, board: SignalBoard, motion: VehicleMotion,
        frames: MomentFrames | None = None,
    ) -> None:
        self.config = config
        self.line = line
        self.board = board
        self.heads = config.heads
        self.motion = motion
        self.want = 1 if config.direction == "forward" else -1
        self.classes = set(config.vehicle_classes)
        self.sides = LineSides(line)
        self.crossed_at: dict[int, float] = {}  # vid -> time of its first forward crossing
        self.decided: set[int] = set()  # vehicles whose first crossing was judged (either way)
        self.reported: list[tuple[np.ndarray, float]] = []  # (box, t) of offenders, for stop_line
        self.reported_vids: set[int] = set()
        self.frames = frames if frames is not None else MomentFrames()
        self.before = BeforeMoments(self.frames)
        self.pending: dict[int, _PendingAct] = {}  # vid -> act waiting for its "past" moment

    def update(self, obs: Observation) -> list[Violation]:
        vehicles = self.motion.update(obs)
        self.board.update(obs.t, obs.image)
        reading = self.board.combined(self.heads)
        out: list[Violation] = []
        for veh in vehicles:
            crossing = self.sides.update(veh)
            if veh.vid in self.pending:
                act = self.pending[veh.vid]
                act.offender = veh.offender()
                act.past = _moment("past", veh, obs, self.frames, reading)
                act.point = veh.point.copy()
                if act.arrows:
                    went = movement(self.line, self.want, act.origin, act.point, act.height, TURN_TRAVEL)  # type: ignore[arg-type]
                    if went is not None:
                        self._decide_turn(veh.vid, went, out)
                elif self.want * self.sides.depth(veh) >= PAST_DEPTH * float(veh.box[3] - veh.box[1]):
                    out.append(self._release(veh.vid))
                continue
            if veh.vid in self.decided or veh.class_name not in self.classes:
                continue
            if crossing != self.want:
                if crossing == 0 and self.sides.clear_of(veh) == -self.want:  # not on the line: before it
                    self.before.sample(veh, obs, reading)
                continue
            self.decided.add(veh.vid)
            self.crossed_at[veh.vid] = obs.t
            red = reading.state is SignalState.RED
            if not red or reading.seconds_in_state(obs.t) < self.config.grace_seconds:
                self.before.kept.pop(veh.vid, None)
                continue  # crossed on green / yellow / unknown, or within the grace: not an offence
            self.reported.append((veh.box.copy(), obs.t))
            self.reported_vids.add(veh.vid)
            prev_t = veh.previous()[0]  # type: ignore[index]
            before = self.before.pick(veh.vid, obs.t, reading.state.value)
            at = _moment("at", veh, obs, self.frames, reading)
            violation = Violation(
                type=RED_LIGHT.id,
                started_at=prev_t,
                ended_at=obs.t,
                confidence=veh.confidence,
                offenders=(veh.offender(),),
                details={**_signal_details(reading, obs.t, self.board, self.heads), "line": self.line.id},
                overlay=_signal_overlay(self.board, self.heads, reading, self.line),
                moments=tuple(m for m in (before, at) if m is not None),
            )
            if reading.arrows:
                # A green arrow was lit: the act is one only if the vehicle did not take its movement.
                if len(self.pending) < MAX_PENDING:  # else in doubt: nothing
                    self.pending[veh.vid] = _PendingAct(
                        violation, obs.t, veh.offender(), arrows=reading.arrows, origin=veh.point.copy(),
                        height=float(veh.box[3] - veh.box[1]), point=veh.point.copy(),
                    )
            elif len(self.pending) >= MAX_PENDING:
                out.append(violation)  # more acts at once than memory allows: this one without "past"
            else:
                self.pending[veh.vid] = _PendingAct(violation, obs.t, veh.offender())
        live = set(self.motion.vehicles)
        for vid, act in list(self.pending.items()):
            if act.arrows:
                if obs.t - act.crossed_t >= TURN_SECONDS or vid not in live:
                    went = movement(self.line, self.want, act.origin, act.point, act.height, TURN_MIN_TRAVEL)  # type: ignore[arg-type]
                    self._decide_turn(vid, went, out)
            elif obs.t - act.crossed_t >= PAST_SECONDS or vid not in live:
                out.append(self._release(vid))
        self.before.forget(obs.t, {veh.vid for veh in vehicles})
        self.reported = [(b, t) for b, t in self.reported if obs.t - t < 30.0]
        self.sides.forget(live)
        self.crossed_at = {k: v for k, v in self.crossed_at.items() if k in live}
        self.decided &= live
        self.reported_vids &= self.motion.relevant()
        return out

    def flush(self, t: float) -> list[Violation]:
        """End of the stream: the acts still waiting for their "past" moment go out without it;
        those waiting to see whether the vehicle took a green arrow's movement are judged on the
        path so far."""
        out: list[Violation] = []
        for vid, act in list(self.pending.items()):
            if act.arrows:
                went = movement(self.line, self.want, act.origin, act.point, act.height, TURN_MIN_TRAVEL)  # type: ignore[arg-type]
                self._decide_turn(vid, went, out)
            else:
                out.append(self._release(vid))
        return out

    def _decide_turn(self, vid: int, went: str | None, out: list[Violation]) -> None:
        """A crossing under a lit green arrow: the vehicle took a permitted movement (or its path
        says too little): no act; it went another way: the red-light act, saying so."""
        act = self.pending[vid]
        if went is None or went in act.arrows:
            del self.pending[vid]
            return
        v = self._release(vid)
        details = {**v.details, "movement": went, "green_arrows": ",".join(sorted(act.arrows))}
        out.append(dataclasses.replace(v, details=details))

    def _release(self, vid: int) -> Violation:
        """The pending act of `vid` as its event: the offender where it was last seen (the frame
        the event's snapshot shows when it is seen now), with its "past" moment when it had one."""
        act = self.pending.pop(vid)
        v = act.violation
        past = (act.past,) if act.past is not None else ()
        return dataclasses.replace(v, offenders=(act.offender,), moments=v.moments + past)

    def debug_state(self) -> dict:
        """Each vehicle's side of the stop line (+1 = its right, where forward leads) and the
        first crossings judged, with the head's state."""
        reading = self.board.combined(self.heads)
        return {
            "rule": "red_light",
            "line": self.line.id,
            "signal": "+".join(self.heads),
            "signal_state": reading.state.value,
            "want": self.want,
            "sides": [
                {**_vehicle_ref(self.motion, vid), "side": side, "crossed": vid in self.crossed_at,
                 "reported": vid in self.reported_vids}
                for vid, side in sorted(self.sides.sides.items())
            ],
        }

    def was_reported(self, vid: int, box: np.ndarray) -> bool:
        return vid in self.reported_vids or any(box_iou(b, box) >= SAME_VEHICLE_IOU for b, _ in self.reported)


class StopLineRule:
    """A vehicle at rest beyond the stop line (inside the zone drawn there) while the head is red."""

    def __init__(
        self,
        config: StopLineConfig,
        line: DirectedLine,
        zone: PolygonZone,
        board: SignalBoard,
        motion: VehicleMotion,
        red_light: RedLightRule | None = None,
        frames: MomentFrames | None = None,
    ) -> None:
        self.config = config
        self.line = line
        self.zone = zone
        self.board = board
        self.heads = config.heads
        self.motion = motion
        self.red_light = red_light
        self.classes = set(config.vehicle_classes)
        self.sides = LineSides(line)
        self.want = red_light.want if red_light is not None else 1
        self._entered: set[int] = set()  # vehicles that came into the zone across the stop line
        self._rest: dict[int, tuple[np.ndarray, float]] = {}  # vid -> (anchor point, at rest since)
        self._reported_vids: set[int] = set()
        self._reported_boxes: list[tuple[np.ndarray, float]] = []
        # The composite's moments: before the line, and the crossing of the vehicles that came in
        # (the newest MAX_PENDING); "past" is the moment the stop is established.
        self.frames = frames if frames is not None else MomentFrames()
        self.before = BeforeMoments(self.frames)
        self._at: dict[int, tuple[Moment | None, Moment]] = {}

    def update(self, obs: Observation) -> list[Violation]:
        vehicles = self.motion.update(obs)
        self.board.update(obs.t, obs.image)
        reading = self.board.combined(self.heads)
        t = obs.t
        out: list[Violation] = []
        present: set[int] = set()
        for veh in vehicles:
            crossing = self.sides.update(veh)
            if crossing == self.want and veh.class_name in self.classes:
                self._entered.add(veh.vid)
                before = self.before.pick(veh.vid, t, SignalState.RED.value)
                self._at[veh.vid] = (before, _moment("at", veh, obs, self.frames, reading))
                while len(self._at) > MAX_PENDING:
                    del self._at[next(iter(self._at))]
            elif crossing == 0 and self.sides.clear_of(veh) == -self.want and veh.class_name in self.classes:
                self.before.sample(veh, obs, reading)
            # Cross traffic passing over the zebra never crossed this stop line: not its business.
            if veh.vid not in self._entered or veh.class_name not in self.classes:
                continue
            if not self.zone.contains(veh.point[None, :])[0]:
                self._rest.pop(veh.vid, None)
                continue
            present.add(veh.vid)
            tol = max(3.0, self.config.still_tolerance * float(veh.box[3] - veh.box[1]))
            rest = self._rest.get(veh.vid)
            if rest is None or float(np.linalg.norm(veh.point - rest[0])) > tol:
                self._rest[veh.vid] = rest = (veh.point.copy(), t)
            if reading.state is not SignalState.RED or veh.vid in self._reported_vids:
                continue
            # Only time at rest *during* the red counts.
            since = max(rest[1], reading.since if reading.since is not None else t)
            if t - since < self.config.still_seconds:
                continue
            self._reported_vids.add(veh.vid)
            if self.red_light is not None and self.red_light.was_reported(veh.vid, veh.box):
                continue  # it ran the red light: that is the one act to report
            if any(box_iou(b, veh.box) >= SAME_VEHICLE_IOU for b, _ in self._reported_boxes):
                continue  # a stationary vehicle that changed id
            self._reported_boxes.append((veh.box.copy(), t))
            before, at = self._at.pop(veh.vid, (None, None))
            moments = tuple(m for m in (before, at, _moment("past", veh, obs, self.frames, reading)) if m is not None)
            out.append(
                Violation(
                    type=STOP_LINE.id,
                    started_at=since,
                    ended_at=t,
                    confidence=veh.confidence,
                    offenders=(veh.offender(),),
                    zone=self.zone,
                    details={
                        **_signal_details(reading, t, self.board, self.heads),
                        "line": self.line.id,
                        "stopped_seconds": round(t - since, 2),
                    },
                    overlay=_signal_overlay(self.board, self.heads, reading, self.line),
                    moments=moments,
                )
            )
        for vid in [v for v in self._rest if v not in present]:
            del self._rest[vid]
        live = set(self.motion.vehicles)
        self.sides.forget(live)
        self._entered &= live
        self._at = {k: v for k, v in self._at.items() if k in live}
        self.before.forget(t, {veh.vid for veh in vehicles})
        self._reported_vids &= self.motion.relevant()
        self._reported_boxes = [(b, bt) for b, bt in self._reported_boxes if t - bt < 60.0]
        return out

    def debug_state(self) -> dict:
        """Vehicles at rest beyond the stop line (having crossed it): since how long."""
        limit = self.config.still_seconds
        dwell = [_timer(self.motion, vid, since, limit, vid in self._reported_vids) for vid, (_, since) in self._rest.items()]
        return {"rule": "stop_line", "line": self.line.id, "zone": self.zone.id, "dwell": dwell}


@dataclass(frozen=True)
class Lane:
    id: str
    zone: PolygonZone
    unit: np.ndarray  # allowed travel direction, unit vector in frame pixels
    allowed_classes: frozenset[str] | None


def build_lanes(lanes: list[LaneConfig], reference_wh: tuple[int, int], frame_wh: tuple[int, int]) -> list[Lane]:
    out = []
    for lane in lanes:
        poly = scale_points(np.asarray(lane.polygon, np.float32), reference_wh, frame_wh)
        arrow = scale_points(np.asarray(lane.direction, np.float32), reference_wh, frame_wh)
        d = arrow[1] - arrow[0]
        unit = d / max(float(np.linalg.norm(d)), 1e-6)
        allowed = frozenset(lane.allowed_classes) if lane.allowed_classes is not None else None
        out.append(Lane(lane.id, PolygonZone(lane.id, "lane", poly), unit, allowed))
    return out


class WrongWayRule(_HoldsActs):
    """Sustained motion against a lane's direction: far enough, long enough, straight enough.

    Composite moments: "before" is the vehicle in the oldest kept grid frame of its ride against
    the lane (upstream of where the act was established), "at" the frame the act was established,
    "past" PAST_DEPTH box heights further against the lane (or PAST_SECONDS later, or lost)."""

    def __init__(
        self, config: WrongWayConfig, lanes: list[Lane], motion: VehicleMotion, frame_h: int,
        frames: MomentFrames | None = None, grid: GridFrames | None = None,
    ) -> None:
        wanted = set(config.lanes)
        self.lanes = [lane for lane in lanes if lane.id in wanted]
        self.config = config
        self.motion = motion
        self.classes = set(config.vehicle_classes)
        self.min_distance = config.min_distance * frame_h
        self.cos_max = float(np.cos(np.radians(config.max_angle_deg)))
        self.reported: set[int] = set()
        self._recent: list[tuple[np.ndarray, float]] = []
        self.frames = frames if frames is not None else MomentFrames()
        self.grid = grid if grid is not None else GridFrames(self.frames)
        self.pending = PendingActs(self.frames)

    def update(self, obs: Observation) -> list[Violation]:
        vehicles = self.motion.update(obs)
        t = obs.t
        self.grid.update(obs)
        self._refresh(vehicles, t)
        out: list[Violation] = []
        # Which lane each vehicle is in: one array test per lane for all vehicles.
        points = np.array([veh.point for veh in vehicles], np.float32).reshape(-1, 2)
        in_lane = [lane.zone.contains(points) for lane in self.lanes]
        for k, veh in enumerate(vehicles):
            if self.pending.see(veh, obs, out):
                continue
            if veh.vid in self.reported or veh.class_name not in self.classes:
                continue
            lane = next((ln for ln, mask in zip(self.lanes, in_lane, strict=True) if mask[k]), None)
            if lane is None:
                continue
            against = self._against(veh, lane, t)
            if against is None:
                continue
            if self.motion.continues(veh, self.reported):
                self.reported.add(veh.vid)
                continue
            self.reported.add(veh.vid)
            if any(_inter(veh.box, b) > 0.3 * _area(veh.box) and t - bt < 3.0 for b, bt in self._recent):
                continue  # the same rider under a second track (the bike's and the person's)
            self._recent.append((veh.box.copy(), t))
            distance, seconds = against
            violation = Violation(
                type=WRONG_WAY.id,
                started_at=t - seconds,
                ended_at=t,
                confidence=veh.confidence,
                offenders=(veh.offender(),),
                zone=lane.zone,
                details={"lane": lane.id, "distance_px": round(distance, 1), "seconds": round(seconds, 2)},
                moments=tuple(m for m in (self._before(veh, lane, t - seconds, t),
                                          _moment("at", veh, obs, self.frames, None)) if m is not None),
            )
            self.pending.hold((veh.vid, ""), violation, veh, t, _gone_beyond(veh.point.copy(), -lane.unit), out)
        self.pending.expire(t, set(self.motion.vehicles), out)
        self.reported &= self.motion.relevant()
        return out

    def _before(self, veh: Vehicle, lane: Lane, t0: float, t: float) -> Moment | None:
        """The oldest kept grid frame of the ride against the lane (from t0) showing the vehicle
        upstream of where it is now, at least BEFORE_LEAD earlier; else any earlier upstream one."""
        upstream = [m for m in self.grid.moments("before", veh, t - BEFORE_LEAD)
                    if float((_bottom_centre(np.asarray(m.box)) - veh.point) @ lane.unit) > 0]
        ride = [m for m in upstream if m.t >= t0]
        return ride[0] if ride else upstream[-1] if upstream else None

    def _refresh(self, vehicles: list[Vehicle], t: float) -> None:
        """Reported riders' boxes follow them while they stay in view."""
        for veh in vehicles:
            if veh.vid in self.reported:
                self._recent = [(b, bt) if _inter(veh.box, b) == 0 else (veh.box.copy(), t) for b, bt in self._recent]
        self._recent = [(b, bt) for b, bt in self._recent if t - bt < 3.0]

    def _against(self, veh: Vehicle, lane: Lane, t: float) -> tuple[float, float] | None:
        # The span of the path inside this lane, newest back to where it entered (one array test).
        path = list(veh.history)
        mask = lane.zone.contains(np.array([e[1] for e in path], np.float32).reshape(-1, 2))
        inside = [e for e, m in zip(path, mask, strict=True) if m]
        if len(inside) < 3:
            return None
        t0, p0, _ = inside[0]
        seconds = t - t0
        if seconds < self.config.min_seconds:
            return None
        d = veh.point - p0
        along = -float(d @ lane.unit)
        norm = float(np.linalg.norm(d))
        if along < self.min_distance or norm == 0 or along / norm < self.cos_max:
            return None
        # Sustained: the second half of the span goes against the lane too (not a U-turn just now).
        tm, pm, _ = inside[len(inside) // 2]
        if -float((veh.point - pm) @ lane.unit) <= 0:
            return None
        return along, seconds


class LaneClassRule(_HoldsActs):
    """A vehicle class in a lane not allowed to it, for at least `min_seconds`.

    Composite moments: "before" entering the lane (the grid frame before its first frame in it),
    "at" when min_seconds are up, "past" PAST_SECONDS later (or when lost)."""

    def __init__(
        self, config: LaneRuleConfig, lanes: list[Lane], motion: VehicleMotion,
        frames: MomentFrames | None = None, grid: GridFrames | None = None,
    ) -> None:
        wanted = set(config.lanes)
        self.lanes = [lane for lane in lanes if lane.id in wanted]
        self.config = config
        self.motion = motion
        self._since: dict[tuple[int, str], float] = {}
        self.reported: set[tuple[int, str]] = set()
        self.frames = frames if frames is not None else MomentFrames()
        self.grid = grid if grid is not None else GridFrames(self.frames)
        self.pending = PendingActs(self.frames)
        self._entry: dict[tuple[int, str], Moment | None] = {}  # while a timer runs: its entering moment

    def update(self, obs: Observation) -> list[Violation]:
        vehicles = self.motion.update(obs)
        t = obs.t
        self.grid.update(obs)
        out: list[Violation] = []
        present: set[tuple[int, str]] = set()
        for veh in vehicles:
            self.pending.see(veh, obs, out)
            for lane in self.lanes:
                if lane.allowed_classes is None or veh.class_name in lane.allowed_classes:
                    continue
                if not lane.zone.contains(veh.point[None, :])[0]:
                    continue
                key = (veh.vid, lane.id)
                present.add(key)
                if key not in self._since and key not in self.reported:
                    self._entry[key] = self.grid.entry(veh, t)
                since = self._since.setdefault(key, t)
                if key in self.reported or t - since < self.config.min_seconds:
                    continue
                self.reported.add(key)
                entry = self._entry.pop(key, None)
                if self.motion.continues(veh, {v for v, ln in self.reported if ln == lane.id}):
                    continue
                violation = Violation(
                    type=LANE.id,
                    started_at=since,
                    ended_at=t,
                    confidence=veh.confidence,
                    offenders=(veh.offender(),),
                    zone=lane.zone,
                    details={"lane": lane.id, "allowed": ",".join(sorted(lane.allowed_classes))},
                    moments=tuple(m for m in (entry, _moment("at", veh, obs, self.frames, None)) if m is not None),
                )
                self.pending.hold(key, violation, veh, t, lambda v: False, out)
        self.pending.expire(t, set(self.motion.vehicles), out)
        self._since = {k: v for k, v in self._since.items() if k in present}
        self._entry = {k: m for k, m in self._entry.items() if k in self._since}
        relevant = self.motion.relevant()
        self.reported = {(v, ln) for v, ln in self.reported if v in relevant}
        return out

    def debug_state(self) -> dict:
        """Vehicles in a lane not allowed to their class: since how long (against min_seconds)."""
        limit = self.config.min_seconds
        timers = sorted(self._since.items())
        return {"rule": "lane", "dwell": [
            _timer(self.motion, vid, since, limit, (vid, lane) in self.reported, lane=lane) for (vid, lane), since in timers
        ]}


class ForbiddenTurnRule(_HoldsActs):
    """A vehicle crosses an entry line and then, within `max_seconds`, a forbidden exit line."""

    def __init__(
        self, config: ForbiddenTurnConfig, lines: dict[str, DirectedLine], motion: VehicleMotion,
        frames: MomentFrames | None = None, grid: GridFrames | None = None,
    ) -> None:
        self.config = config
        self.lines = lines
        self.motion = motion
        self.classes = set(config.vehicle_classes)
        used = {t.entry for t in config.turns} | {t.exit for t in config.turns}
        self.sides = {lid: LineSides(lines[lid]) for lid in used}
        self._entered: dict[int, dict[str, float]] = {}  # vid -> entry line -> time
        self.reported: set[int] = set()
        # Composite moments: "before" at the entry line (its grid frame), "at" the exit line's
        # crossing, "past" PAST_DEPTH box heights beyond the exit line (or PAST_SECONDS, or lost).
        self.frames = frames if frames is not None else MomentFrames()
        self.grid = grid if grid is not None else GridFrames(self.frames)
        self.pending = PendingActs(self.frames)
        self._entry: dict[int, dict[str, Moment | None]] = {}  # vid -> entry line -> its moment

    @staticmethod
    def _matches(crossing: int, wanted: str) -> bool:
        return crossing != 0 and (wanted == "any" or crossing == (1 if wanted == "forward" else -1))

    def update(self, obs: Observation) -> list[Violation]:
        vehicles = self.motion.update(obs)
        t = obs.t
        self.grid.update(obs)
        out: list[Violation] = []
        for veh in vehicles:
            crossed = {lid: sides.update(veh) for lid, sides in self.sides.items()}  # every frame: keeps sides
            if self.pending.see(veh, obs, out):
                continue
            if veh.vid in self.reported or veh.class_name not in self.classes:
                continue
            entered = self._entered.setdefault(veh.vid, {})
            for turn in self.config.turns:
                entry, exit_ = self.lines[turn.entry], self.lines[turn.exit]
                if self._matches(crossed[turn.entry], turn.entry_direction):
                    entered[turn.entry] = t
                    self._entry.setdefault(veh.vid, {})[turn.entry] = self.grid.entry(veh, t)
                t_in = entered.get(turn.entry)
                if t_in is None or t - t_in > self.config.max_seconds:
                    continue
                if self._matches(crossed[turn.exit], turn.exit_direction):
                    self.reported.add(veh.vid)
                    if self.motion.continues(veh, self.reported):
                        break
                    before = self._entry.get(veh.vid, {}).get(turn.entry)
                    violation = Violation(
                        type=FORBIDDEN_TURN.id,
                        started_at=t_in,
                        ended_at=t,
                        confidence=veh.confidence,
                        offenders=(veh.offender(),),
                        details={"entry": turn.entry, "exit": turn.exit},
                        overlay=Overlay(lines=(_line_overlay(entry), _line_overlay(exit_))),
                        moments=tuple(m for m in (before, _moment("at", veh, obs, self.frames, None)) if m is not None),
                    )
                    d = exit_.b - exit_.a  # the exit line's unit normal, on the side it was crossed to
                    normal = np.array([-d[1], d[0]], np.float32) * crossed[turn.exit] / max(float(np.linalg.norm(d)), 1e-6)
                    self.pending.hold((veh.vid, ""), violation, veh, t, _gone_beyond(veh.point.copy(), normal), out)
                    break
        live = set(self.motion.vehicles)
        self.pending.expire(t, live, out)
        self._entered = {k: v for k, v in self._entered.items() if k in live}
        # An entry's moment goes with the entry (max_seconds) or the vehicle.
        self._entry = {vid: {ln: m for ln, m in lines.items() if t - self._entered[vid].get(ln, -1e9) <= self.config.max_seconds}
                       for vid, lines in self._entry.items() if vid in self._entered}
        for sides in self.sides.values():
            sides.forget(live)
        self.reported &= self.motion.relevant()
        return out

    def debug_state(self) -> dict:
        """Vehicles that crossed an entry line: which, and how long ago (against max_seconds)."""
        limit = self.config.max_seconds
        entered = [(vid, line, t_in) for vid, lines in sorted(self._entered.items()) for line, t_in in lines.items()]
        return {"rule": "forbidden_turn", "entered": [
            _timer(self.motion, vid, t_in, limit, vid in self.reported, line=line) for vid, line, t_in in entered
        ]}


def homography(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The 3x3 projective map taking four points `src` to `dst` (as OpenCV's getPerspectiveTransform)."""
    m, b = np.zeros((8, 8)), np.zeros(8)
    for i, ((x, y), (u, v)) in enumerate(zip(np.asarray(src, np.float64), np.asarray(dst, np.float64), strict=True)):
        m[2 * i] = [x, y, 1, 0, 0, 0, -x * u, -y * u]
        m[2 * i + 1] = [0, 0, 0, x, y, 1, -x * v, -y * v]
        b[2 * i], b[2 * i + 1] = u, v
    return np.append(np.linalg.solve(m, b), 1.0).reshape(3, 3)


class GroundPlane:
    """Image pixels -> metres on the road plane (a homography from four point pairs)."""

    def __init__(self, calibration: GroundCalibration, reference_wh: tuple[int, int], frame_wh: tuple[int, int]):
        src = scale_points(np.asarray(calibration.image_points, np.float32), reference_wh, frame_wh)
        dst = np.asarray(calibration.ground_points_m, np.float32)
        self.h = homography(src, dst)

    def to_metres(self, points: np.ndarray) -> np.ndarray:
        p = np.asarray(points, np.float64).reshape(-1, 2)
        q = np.c_[p, np.ones(len(p))] @ self.h.T
        return (q[:, :2] / q[:, 2:3]).astype(np.float32)

    def px_per_metre(self, point: np.ndarray) -> float:
        """Horizontal pixels per metre of road at this image point (how big things look there)."""
        a, b = self.to_metres(np.stack([point, point + np.array([1.0, 0.0], np.float32)]))
        return 1.0 / max(float(np.linalg.norm(b - a)), 1e-6)


class SpeedingRule:
    """Speed of the ground point on the calibrated road plane above the limit for `min_seconds`."""

    def __init__(
        self, config: SpeedingConfig, plane: GroundPlane, motion: VehicleMotion, zone: PolygonZone | None = None
    ) -> None:
        self.config = config
        self.plane = plane
        self.motion = motion
        self.zone = zone
        self.classes = set(config.vehicle_classes)
        self._over_since: dict[int, float] = {}
        self._speeds: dict[int, list[float]] = {}
        self.reported: set[int] = set()

    def speed_kmh(self, veh: Vehicle, t: float) -> float | None:
        t0, p0, box0 = veh.at(t - self.config.window_seconds)
        if t - t0 < 0.5 * self.config.window_seconds:
            return None
        # A box that grew or shrank a lot (merged with a neighbour, half occluded) moves its ground
        # point by metres without the vehicle moving: no speed from it.
        # Perspective alone changes the size by the ratio of the road's scale at the two places.
        ratio = float(veh.box[3] - veh.box[1]) / max(1.0, float(box0[3] - box0[1]))
        expected = self.plane.px_per_metre(veh.point) / self.plane.px_per_metre(p0)
        if not 0.7 <= ratio / expected <= 1.45:
            return None
        a, b = self.plane.to_metres(np.stack([p0, veh.point]))
        return float(np.linalg.norm(b - a)) / (t - t0) * 3.6

    def update(self, obs: Observation) -> list[Violation]:
        vehicles = self.motion.update(obs)
        t = obs.t
        out: list[Violation] = []
        limit = self.config.limit_kmh + self.config.tolerance_kmh
        for veh in vehicles:
            if veh.vid in self.reported or veh.class_name not in self.classes:
                continue
            if self.zone is not None and not self.zone.contains(veh.point[None, :])[0]:
                self._over_since.pop(veh.vid, None)
                continue
            speed = self.speed_kmh(veh, t)
            if speed is None:
                continue  # not measurable on this frame: neither over nor under
            if speed <= limit:
                self._over_since.pop(veh.vid, None)
                self._speeds.pop(veh.vid, None)
                continue
            since = self._over_since.setdefault(veh.vid, t)
            speeds = self._speeds.setdefault(veh.vid, [])
            speeds.append(speed)
            if t - since < self.config.min_seconds:
                continue
            self.reported.add(veh.vid)
            if self.motion.continues(veh, self.reported):
                continue
            out.append(
                Violation(
                    type=SPEEDING.id,
                    started_at=since - self.config.window_seconds,
                    ended_at=t,
                    confidence=veh.confidence,
                    offenders=(veh.offender(),),
                    zone=self.zone,
                    details={
                        "speed_kmh": round(float(np.median(speeds)), 1),
                        "max_speed_kmh": round(max(speeds), 1),
                        "limit_kmh": self.config.limit_kmh,
                    },
                )
            )
        live = set(self.motion.vehicles)
        self._over_since = {k: v for k, v in self._over_since.items() if k in live}
        self._speeds = {k: v for k, v in self._speeds.items() if k in live}
        self.reported &= self.motion.relevant()
        return out

    def debug_state(self) -> dict:
        """Vehicles over the limit: since how long (against min_seconds) and their last speed."""
        def kmh(vid: int) -> float | None:
            speeds = self._speeds.get(vid)
            return round(speeds[-1], 1) if speeds else None

        limit = self.config.min_seconds
        return {"rule": "speeding", "dwell": [
            _timer(self.motion, vid, since, limit, vid in self.reported, kmh=kmh(vid))
            for vid, since in sorted(self._over_since.items())
        ]}


# ------------------------------------------------------------------------------------ plug-ins
# One vehicle-motion model and one signal board per camera, shared by its traffic rules.


def vehicle_motion(ctx: BuildContext) -> VehicleMotion:
    """The camera's one motion model, shared by its traffic and helmet rules; riders carry their
    vehicle (VehicleMotion) for all of them."""
    keep = getattr(ctx.camera.rules, "plates", None) is not None
    wrong_way = getattr(ctx.camera.rules, "wrong_way", None)
    untracked = bool(wrong_way is not None and wrong_way.riders)
    return ctx.shared("vehicle_motion", lambda: VehicleMotion(keep_crops=keep, untracked_bikes=untracked))


def _board(ctx: BuildContext) -> SignalBoard:
    return camera_signal_board(ctx)


def _frames(ctx: BuildContext) -> MomentFrames:
    return ctx.shared("moment_frames", MomentFrames)


def _lanes(ctx: BuildContext) -> list[Lane]:
    return ctx.shared("lanes", lambda: build_lanes(ctx.camera.scene.lanes, ctx.reference_wh, ctx.frame_wh))


def _red_light(ctx: BuildContext) -> RedLightRule | None:
    """The camera's red-light rule, when it has one: stop-line events defer to it (one act, one event)."""
    rule = ctx.built.get("red_light")
    return rule if isinstance(rule, RedLightRule) else None


def _grid(ctx: BuildContext) -> GridFrames:
    return ctx.shared("grid_frames", lambda: GridFrames(_frames(ctx)))


def _wrong_way(ctx: BuildContext, cfg: WrongWayConfig) -> WrongWayRule:
    return WrongWayRule(cfg, _lanes(ctx), vehicle_motion(ctx), ctx.frame_wh[1], _frames(ctx), _grid(ctx))


def _check_lanes_have_classes(cfg: LaneRuleConfig, scene) -> None:
    lanes = {x.id: x for x in scene.lanes}
    for i, lane in enumerate(cfg.lanes):
        if lanes[lane].allowed_classes is None:
            raise ValueError(f"lane.lanes[{i}]: lane {lane!r} has no allowed_classes")


def _check_calibrated(cfg: SpeedingConfig, scene) -> None:
    if scene.calibration is None:
        raise ValueError("speeding: the scene has no ground-plane calibration (scene.calibration)")


def _speeding(ctx: BuildContext, cfg: SpeedingConfig) -> SpeedingRule | None:
    calibration = ctx.camera.scene.calibration
    if calibration is None:
        return None
    plane = GroundPlane(calibration, ctx.reference_wh, ctx.frame_wh)
    return SpeedingRule(cfg, plane, vehicle_motion(ctx), ctx.zones.get(cfg.zone) if cfg.zone else None)


for _spec in (
    RuleSpec(
        key="red_light",
        config=RedLightConfig,
        kinds=(RED_LIGHT,),
        build=lambda ctx, cfg: RedLightRule(cfg, ctx.lines()[cfg.line], _board(ctx), vehicle_motion(ctx), _frames(ctx)),
        description="a vehicle crosses the stop line while its signal is red",
        order=20,
    ),
    RuleSpec(
        key="stop_line",
        config=StopLineConfig,
        kinds=(STOP_LINE,),
        build=lambda ctx, cfg: StopLineRule(
            cfg, ctx.lines()[cfg.line], ctx.zones[cfg.zone], _board(ctx), vehicle_motion(ctx), _red_light(ctx),
            _frames(ctx),
        ),
        description="a vehicle stops past the stop line on red (not reported again if it ran the red)",
        after=("red_light",),
        order=21,
    ),
    RuleSpec(
        key="wrong_way",
        config=WrongWayConfig,
        kinds=(WRONG_WAY,),
        build=_wrong_way,
        description="sustained motion against a lane's direction",
        order=22,
    ),
    RuleSpec(
        key="lane",
        config=LaneRuleConfig,
        kinds=(LANE,),
        build=lambda ctx, cfg: LaneClassRule(cfg, _lanes(ctx), vehicle_motion(ctx), _frames(ctx), _grid(ctx)),
        description="a vehicle class in a lane not allowed to it",
        check=_check_lanes_have_classes,
        order=23,
    ),
    RuleSpec(
        key="forbidden_turn",
        config=ForbiddenTurnConfig,
        kinds=(FORBIDDEN_TURN,),
        build=lambda ctx, cfg: ForbiddenTurnRule(cfg, ctx.lines(), vehicle_motion(ctx), _frames(ctx), _grid(ctx)),
        description="an entry line then a forbidden exit line within max_seconds",
        order=24,
    ),
    RuleSpec(
        key="speeding",
        config=SpeedingConfig,
        kinds=(SPEEDING,),
        build=_speeding,
        description="speed on the calibrated ground plane over the limit",
        check=_check_calibrated,
        order=25,
    ),
):
    register(dataclasses.replace(_spec, module=__name__))
