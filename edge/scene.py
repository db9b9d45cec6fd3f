"""A camera's scene, drawn on a reference snapshot: zones, lines, signal heads, lanes, calibration.

Plain pydantic models (no runtime imports): the rules' configs refer into a scene by id through the
typed references below (`ZoneId`, `LineId`, `SignalId`, `LaneId`), which `edge.rules.base` checks
generically against the scene.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from contract.configfile import ConfigPath
from contract.events import ID_PATTERN

Identifier = Annotated[str, Field(pattern=ID_PATTERN)]
Point = tuple[float, float]

# COCO names of what can stop or park on a road.
VEHICLE_CLASSES = ["car", "motorcycle", "bus", "truck", "bicycle"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ZoneConfig(_Model):
    id: Identifier
    kind: Literal["no_stopping", "no_parking", "sidewalk", "littering_watch", "lane", "other"]
    polygon: list[Point] = Field(min_length=3, description="pixel points of the reference snapshot")
    name: str | None = None


class LineConfig(_Model):
    id: Identifier
    points: tuple[Point, Point]
    name: str | None = None


class LampConfig(_Model):
    color: Literal["red", "yellow", "green"]
    box: tuple[float, float, float, float] = Field(description="x1, y1, x2, y2 of the lamp on the reference snapshot")
    arrow: Literal["left", "right", "straight"] | None = Field(
        None,
        description="a green arrow lamp: lit, it lets that movement go on a red ball (read apart from the ball's lamps)",
    )

    @model_validator(mode="after")
    def _green_arrows(self) -> LampConfig:
        if self.arrow is not None and self.color != "green":
            raise ValueError("arrow: only a green lamp permits a movement (draw a red arrow as its own head's red lamp)")
        return self


class SignalHeadConfig(_Model):
    """A signal head: its lamps' image regions (read from the picture), or a signal controller over MQTT."""

    id: Identifier
    source: Literal["image", "controller"] = "image"
    lamps: list[LampConfig] = Field(default_factory=list)
    min_value: int = Field(130, ge=0, le=255, description="HSV brightness of a lit lamp's pixel")
    min_saturation: int = Field(70, ge=0, le=255, description="saturation of a lit lamp's pixel (glare is white)")
    min_lit_fraction: float = Field(
        0.12, gt=0, le=1, description="share of the lamp's disc its lit blob must cover (not of the box: loose boxes read alike)"
    )
    dominance: float = Field(2.0, ge=1, description="the lit lamp's share must exceed every other lamp's this many times")
    confirm_frames: int = Field(2, ge=1, description="a new state counts after this many frames in a row")
    unknown_after_frames: int = Field(3, ge=1, description="this many unreadable frames in a row make the state unknown")
    controller_timeout_s: float = Field(5.0, gt=0, description="a controller state older than this is unknown")

    @model_validator(mode="after")
    def _lamps(self) -> SignalHeadConfig:
        if self.source == "image" and not any(lamp.color == "red" for lamp in self.lamps):
            raise ValueError("an image-read signal head needs lamps, one of them red")
        return self


class LaneConfig(_Model):
    id: Identifier
    polygon: list[Point] = Field(min_length=3)
    direction: tuple[Point, Point] = Field(description="an arrow (from, to) along the lane's allowed travel")
    allowed_classes: list[str] | None = Field(None, description="vehicle classes allowed in the lane; null = all")
    name: str | None = None


class GroundCalibration(_Model):
    """Four image points and where they lie on the road plane, in metres (for speeds)."""

    image_points: list[Point] = Field(min_length=4, max_length=4)
    ground_points_m: list[Point] = Field(min_length=4, max_length=4)


class SceneConfig(_Model):
    reference_size: tuple[int, int] = Field(description="width, height of the snapshot the scene was drawn on")
    reference_image: ConfigPath | None = Field(
        None,
        description="the snapshot the scene was drawn on (`edge snapshot`), relative to the camera config: "
        "frames are registered to it, so a camera that comes back a little off its preset still meets "
        "its zones and lines, and one that looks elsewhere is camera_moved",
    )
    zones: list[ZoneConfig] = Field(default_factory=list)
    lines: list[LineConfig] = Field(default_factory=list)
    signals: list[SignalHeadConfig] = Field(default_factory=list)
    lanes: list[LaneConfig] = Field(default_factory=list)
    calibration: GroundCalibration | None = None

    @field_validator("zones", "lines", "signals", "lanes")
    @classmethod
    def _unique_ids(cls, items: list[ZoneConfig] | list[LineConfig]) -> list:
        seen: set[str] = set()
        for item in items:
            if item.id in seen:
                raise ValueError(f"id {item.id!r} is used twice")
            seen.add(item.id)
        return items

    def drawn_points(self) -> Iterator[tuple[str, list[Point]]]:
        """Every point drawn on the reference snapshot, by the key that holds it (for messages)."""
        for i, zone in enumerate(self.zones):
            yield f"zones[{i}] ({zone.id})", zone.polygon
        for i, line in enumerate(self.lines):
            yield f"lines[{i}] ({line.id})", list(line.points)
        for i, lane in enumerate(self.lanes):
            yield f"lanes[{i}] ({lane.id})", lane.polygon
            yield f"lanes[{i}] ({lane.id}).direction", list(lane.direction)
        for i, head in enumerate(self.signals):
            for j, lamp in enumerate(head.lamps):
                x1, y1, x2, y2 = lamp.box
                yield f"signals[{i}] ({head.id}).lamps[{j}].box", [(x1, y1), (x2, y2)]
        if self.calibration is not None:
            for k, point in enumerate(self.calibration.image_points):
                yield f"calibration.image_points[{k}]", [point]

    @model_validator(mode="after")
    def _inside_reference(self) -> SceneConfig:
        """Zones, lines, lanes, lamp boxes and calibration points lie on the reference snapshot: a point
        off it is a typo or a scene drawn on another picture (the analysis would silently miss it)."""
        w, h = self.reference_size
        problems = [
            f"{key}: point ({x}, {y}) is outside the {w}x{h} reference"
            for key, points in self.drawn_points()
            for x, y in points
            if not (0 <= x <= w and 0 <= y <= h)
        ]
        for i, head in enumerate(self.signals):
            for j, lamp in enumerate(head.lamps):
                x1, y1, x2, y2 = lamp.box
                if not (x1 < x2 and y1 < y2):
                    problems.append(f"signals[{i}] ({head.id}).lamps[{j}].box: need x1 < x2 and y1 < y2 (got {lamp.box})")
        if problems:
            raise ValueError("; ".join(problems))
        return self


HOURS_PATTERN = r"^([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-4]):[0-5]\d$"
HoursRange = Annotated[str, Field(pattern=HOURS_PATTERN)]


@dataclass(frozen=True)
class SceneRef:
    """Marks a config field as the id of a scene element of one kind ("zones", "lines", ...)."""

    kind: Literal["zones", "lines", "signals", "lanes"]


ZoneId = Annotated[str, Field(pattern=ID_PATTERN), SceneRef("zones")]
LineId = Annotated[str, Field(pattern=ID_PATTERN), SceneRef("lines")]
SignalId = Annotated[str, Field(pattern=ID_PATTERN), SceneRef("signals")]
LaneId = Annotated[str, Field(pattern=ID_PATTERN), SceneRef("lanes")]
