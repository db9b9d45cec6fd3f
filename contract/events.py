"""Event contract v1: one violation (or one phase of an incident) seen by one camera.

The edge makes the id (UUIDv7: unique without coordination, sortable by time); central uses it
to store each event exactly once however often it is delivered.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Final, Literal

import uuid6
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, GetCoreSchemaHandler, ValidationInfo, model_validator
from pydantic_core import core_schema

SCHEMA_ID: Final = "ioc.event/1"

# Node, camera, zone ids appear in MQTT topics and file names: keep them to a safe alphabet.
ID_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"
_UUID_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
_SHA256_PATTERN = r"^[0-9a-f]{64}$"
MAX_EVIDENCE = 32  # evidence files per event
# Hard limits (issue 18, defect 6): every field below has a maximum length / item count, and an
# event message may not exceed MAX_EVENT_BYTES. The field limits alone keep any event under it
# (tests/unit/test_contract_limits.py builds the largest one), so the edge never makes an event
# that central refuses for its size; the byte limit is checked before parsing, so a 20 MB message
# costs central one len() and never a parse.
MAX_EVENT_BYTES: Final = 256 * 1024
MAX_DETAIL_KEY: Final = 64
MAX_DETAIL_TEXT: Final = 256
# The time range an event may carry: UUIDv7 times (and the edge's clocks) start at 1970, and
# Python's datetime ends at 9999-12-31, with no room left for a time zone or a grouping window.
MIN_TIME: Final = datetime(1970, 1, 1, tzinfo=UTC)
MAX_TIME: Final = datetime(9999, 1, 1, tzinfo=UTC)
# What PostgreSQL's text and jsonb cannot hold (NUL) and what UTF-8 cannot encode (lone
# surrogates): refused at validation, so such a value never reaches the database as poison.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")

Identifier = Annotated[str, Field(pattern=ID_PATTERN)]
# Numbers are numbers: JSON `true` is not a confidence of 1.0, nor "3" a track id.
Score = Annotated[float, Field(strict=True, ge=0.0, le=1.0)]
Coordinate = Annotated[float, Field(strict=True)]


class Category(StrEnum):
    TRAFFIC = "traffic"
    URBAN_ORDER = "urban_order"
    SANITATION = "sanitation"


class ViolationType(str):
    """A violation type id, e.g. "red_light". Open: each edge rule plug-in declares the types it
    raises (`register_violation_type`, called by `edge.rules.base.register`). The contract checks
    that a type is a well-formed id and, when the type is registered, that the event's category is
    the type's; an unregistered type (from an edge newer than this reader) is accepted, so an
    older central stores it and reports it with a generic text instead of dead-lettering it."""

    __slots__ = ()

    @property
    def value(self) -> str:
        return str(self)

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        return core_schema.no_info_after_validator_function(
            cls, core_schema.str_schema(pattern=ID_PATTERN, max_length=64), serialization=core_schema.to_string_ser_schema()
        )


# The types contract v1 has always carried (an older reader knows these); rules add theirs.
_CATEGORY: dict[str, Category] = {
    "illegal_stopping": Category.TRAFFIC,
    "red_light": Category.TRAFFIC,
    "stop_line": Category.TRAFFIC,
    "wrong_way": Category.TRAFFIC,
    "lane": Category.TRAFFIC,
    "forbidden_turn": Category.TRAFFIC,
    "speeding": Category.TRAFFIC,
    "no_helmet": Category.TRAFFIC,
    "sidewalk_encroachment": Category.URBAN_ORDER,
    "littering": Category.SANITATION,
}


def register_violation_type(type_id: str, category: Category | str) -> ViolationType:
    """Make a type known with its category; registering a known type again with another category
    is an error (an event's category must mean one thing)."""
    if re.fullmatch(ID_PATTERN, type_id) is None:
        raise ValueError(f"violation type {type_id!r} is not a valid id ({ID_PATTERN})")
    cat = Category(category)
    known = _CATEGORY.get(type_id)
    if known is not None and known != cat:
        raise ValueError(f"violation type {type_id!r} is registered as {known.value}, not {cat.value}")
    _CATEGORY[type_id] = cat
    return ViolationType(type_id)


def known_violation_types() -> dict[str, Category]:
    return dict(_CATEGORY)


def category_of(violation: str) -> Category:
    """The field-report category a registered violation type belongs to (KeyError if unknown)."""
    try:
        return _CATEGORY[str(violation)]
    except KeyError:
        raise KeyError(f"unknown violation type {violation!r}") from None


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("time must carry a time zone (UTC, ISO 8601 with Z or +00:00)")
    try:
        value = value.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00+07:00 is before year 1
        raise ValueError("time is outside the years 1970-9998") from None
    if not MIN_TIME <= value < MAX_TIME:
        raise ValueError(f"time {value.isoformat()} is outside the years 1970-9998")
    return value


class EventTooLarge(ValueError):
    """An event message longer than MAX_EVENT_BYTES (refused before it is parsed)."""


def unstorable_text(data: Any, path: str = "") -> str | None:
    """Where a string (value or key, at any depth) holds a NUL or a lone surrogate, e.g.
    "details.note: NUL at character 1"; None when every string is storable."""
    if isinstance(data, str):
        m = _UNSTORABLE.search(data)
        if m is None:
            return None
        what = "NUL" if m.group() == "\x00" else f"lone surrogate U+{ord(m.group()):04X}"
        return f"{path or '(event)'}: {what} at character {m.start()}"
    if isinstance(data, dict):
        for k, v in data.items():
            where = f"{path}.{k}" if path else str(k)
            found = unstorable_text(k, f"{where} (key)") if isinstance(k, str) else None
            found = found or unstorable_text(v, where)
            if found:
                return found
    elif isinstance(data, list | tuple):
        for i, v in enumerate(data):
            found = unstorable_text(v, f"{path}.{i}" if path else str(i))
            if found:
                return found
    return None


UtcTime = Annotated[datetime, AfterValidator(_utc)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PlateRead(_Strict):
    """The edge's reading of an object's licence plate (edge/plate_text.py)."""

    text: str = Field(min_length=1, max_length=32, description="canonical ('30A-123.45', '29-B1 123.45') or 'unreadable'")
    confidence: Score
    lines: int = Field(strict=True, ge=1, le=2)
    crop_sha256: str | None = Field(default=None, pattern=_SHA256_PATTERN, description="the plate evidence file read")


class ObjectRef(_Strict):
    """An object the violation is about (or that took part in it)."""

    class_name: str = Field(min_length=1, max_length=64)
    track_id: int = Field(strict=True, ge=0)
    box: tuple[Coordinate, Coordinate, Coordinate, Coordinate] = Field(description="x1, y1, x2, y2 in frame pixels")
    confidence: Score
    plate: str | None = Field(default=None, max_length=32, description="the plate text, only when it was read")
    plate_read: PlateRead | None = None  # how it was read (or that it was unreadable); optional


class ZoneRef(_Strict):
    id: Identifier
    kind: str = Field(min_length=1, max_length=64)


class Location(_Strict):
    """Where the camera is, from its config: what routing and the report need. Two tiers since
    2025-07-01: province (or centrally-run city) and commune/ward/special zone; `district` is an
    optional legacy label (no such level of government any more)."""

    province: str | None = Field(default=None, max_length=200)
    ward: str | None = Field(default=None, max_length=200, description="commune, ward or special zone")
    district: str | None = Field(default=None, max_length=200, description="legacy label")
    address: str | None = Field(default=None, max_length=500)
    lat: float | None = Field(default=None, strict=True, ge=-90, le=90)
    lon: float | None = Field(default=None, strict=True, ge=-180, le=180)


class EvidenceRef(_Strict):
    """A file that backs the event; its bytes travel separately and are checked by sha256."""

    # composite: the crossing act in three moments (before / at / past the line) with the plate
    # zoomed and the stamps; composite_clean: the same moments unannotated. first_seen: the frame
    # an urban-order incident or a littering drop was first seen, kept for the incident's life.
    kind: Literal["snapshot", "snapshot_clean", "clip", "plate", "crop", "composite", "composite_clean", "first_seen"]
    media_type: Literal["image/jpeg", "video/mp4"]
    sha256: str = Field(pattern=_SHA256_PATTERN)
    size: int = Field(strict=True, ge=1, le=512 * 1024 * 1024)


class ModelRef(_Strict):
    name: str = Field(min_length=1, max_length=128)
    version: str = Field(min_length=1, max_length=128, description="the model file's sha256 prefix or release tag")


class ViolationEvent(_Strict):
    """Contract v1 of an event published by an edge node."""

    schema_: Literal["ioc.event/1"] = Field(default=SCHEMA_ID, alias="schema")
    id: str = Field(pattern=_UUID_PATTERN, description="UUIDv7 made at the edge; idempotency key")
    node: Identifier
    camera: Identifier
    type: ViolationType = Field(description="violation type id; see known_violation_types()")
    category: Category
    phase: Literal["point", "start", "update", "end"] = Field(
        default="point", description="'point' for a single act; start/update/end for an incident"
    )
    incident: str | None = Field(default=None, pattern=_UUID_PATTERN, description="groups one incident's phases")
    started_at: UtcTime
    ended_at: UtcTime
    detected_at: UtcTime | None = Field(
        default=None,
        description="capture time of the frame on which the edge decided (may be after ended_at); "
        "publish/arrival minus this is the event's latency",
    )
    confidence: Score
    objects: list[ObjectRef] = Field(default_factory=list, max_length=256)
    zone: ZoneRef | None = None
    location: Location = Field(default_factory=Location)
    evidence: list[EvidenceRef] = Field(default_factory=list, max_length=MAX_EVIDENCE)
    evidence_pending: list[Literal["clip"]] = Field(
        default_factory=list,
        max_length=1,
        description="evidence still being made (the clip's post-event footage): the edge publishes the "
        "event again, same id, with it in `evidence` once written (see `merge_republished`)",
    )
    model: ModelRef
    details: dict[
        Annotated[str, Field(min_length=1, max_length=MAX_DETAIL_KEY)],
        float | int | Annotated[str, Field(max_length=MAX_DETAIL_TEXT)] | bool,
    ] = Field(default_factory=dict, max_length=64, description="rule measurements, e.g. stopped_seconds")

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="before")
    @classmethod
    def _schema_on_the_wire(cls, data: Any, info: ValidationInfo) -> Any:
        # Code may rely on the default; a message from the wire must say which contract it follows.
        if info.context and info.context.get("wire") and isinstance(data, dict) and "schema" not in data:
            raise ValueError(f"schema: field required on the wire (this is {SCHEMA_ID!r})")
        found = unstorable_text(data) if isinstance(data, dict) else None
        if found:
            raise ValueError(f"{found}: NUL and lone surrogates are not allowed in any string")
        return data

    @model_validator(mode="after")
    def _consistent(self) -> ViolationEvent:
        if self.ended_at < self.started_at:
            raise ValueError("ended_at is before started_at")
        known = _CATEGORY.get(self.type)
        if known is not None and self.category != known:
            raise ValueError(f"category {self.category.value!r} does not match type {self.type!r}")
        return self

    def to_json(self) -> str:
        return self.model_dump_json(by_alias=True)

    @classmethod
    def from_json(cls, payload: bytes | str) -> ViolationEvent:
        """Parse a message from the wire; EventTooLarge (before parsing) beyond MAX_EVENT_BYTES."""
        size = len(payload.encode() if isinstance(payload, str) else payload)
        if size > MAX_EVENT_BYTES:
            raise EventTooLarge(f"event message is {size} bytes; the limit is {MAX_EVENT_BYTES}")
        return cls.model_validate_json(payload, context={"wire": True})


_REPUBLISH_MAY_CHANGE = frozenset({"evidence", "evidence_pending"})


def merge_republished(stored: ViolationEvent, again: ViolationEvent) -> ViolationEvent | None:
    """What one event id means after it arrived twice: the same event, with the evidence of both.

    The edge publishes an event as soon as it decides (snapshots only, `evidence_pending: [clip]`)
    and again, same id, once the clip is written. The two may arrive in either order (several
    ingesters share the subscription), so the merge is order-free: evidence is the union (first
    seen first) and a kind stays pending only while both say so and neither carries it. Returns
    None when the two differ anywhere else: that is not a re-publish but a conflict.
    """
    a = stored.model_dump(exclude=set(_REPUBLISH_MAY_CHANGE))
    if a != again.model_dump(exclude=set(_REPUBLISH_MAY_CHANGE)):
        return None
    evidence = list(stored.evidence)
    shas = {e.sha256 for e in evidence}
    evidence += [e for e in again.evidence if e.sha256 not in shas]
    if len(evidence) > MAX_EVIDENCE:
        return None
    have = {e.kind for e in evidence}
    pending = [k for k in stored.evidence_pending if k in again.evidence_pending and k not in have]
    return stored.model_copy(update={"evidence": evidence, "evidence_pending": pending})


def new_event_id(at: datetime | None = None, seed: bytes | None = None) -> str:
    """A UUIDv7. With `at` and `seed` it is deterministic (offline analysis: same input, same ids);
    live events use the clock and random bits, so a restarted stream can never reuse an id."""
    if at is None or seed is None:
        return str(uuid6.uuid7())
    ms = int(at.timestamp() * 1000) & ((1 << 48) - 1)
    rand = int.from_bytes(hashlib.sha256(seed).digest()[:10], "big")  # 80 bits, 74 used
    value = (ms << 80) | (0x7 << 76) | ((rand >> 62) & 0xFFF) << 64 | (0b10 << 62) | (rand & ((1 << 62) - 1))
    return str(uuid.UUID(int=value))


def event_json_schema() -> dict[str, Any]:
    schema = ViolationEvent.model_json_schema(by_alias=True)
    schema["$id"] = SCHEMA_ID
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    # What JSON Schema cannot say with its own keywords, as annotations and in the description.
    schema["x-max-bytes"] = MAX_EVENT_BYTES
    schema["x-time-range"] = [MIN_TIME.isoformat(), MAX_TIME.isoformat()]
    schema["description"] = (
        (schema.get("description") or "")
        + f"\n\nLimits: the message is at most {MAX_EVENT_BYTES} bytes (x-max-bytes); no string (nor"
        " details key) may hold a NUL or a lone surrogate; times lie in [x-time-range)."
    )
    return schema


def is_uuid(value: str) -> bool:
    return re.fullmatch(_UUID_PATTERN, value) is not None
