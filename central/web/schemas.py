"""Response models of the JSON API: what /api/openapi.json says each route returns.

The views are built as dicts by `central.reports.report_view` and `central.services`; these models
check and document them. Objects are open (`extra="allow"`): a field added to a view reaches the
client before its schema is written here, and nothing a client gets today is ever dropped. Times
are ISO 8601 strings exactly as the views write them; numbers keep their JSON type (`Number`).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

Number = int | float


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class _Closed(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Texts(_Open):
    vi: str | None
    en: str | None


class Coded(_Open):
    code: str
    vi: str
    en: str


class LocalTime(_Open):
    at: str = Field(description="ISO 8601 (UTC)")
    vi: str
    en: str


class Agency(_Open):
    code: str | None
    vi: str | None
    en: str | None


class PublicPlace(_Open):
    ward: str | None
    district: str | None
    address: str | None
    lat: Number | None
    lon: Number | None
    text: Texts


class Place(PublicPlace):
    node: str
    camera: str
    zone: dict[str, Any] | None


class TimeTexts(_Open):
    vi: str
    en: str
    utc: str


class Time(_Open):
    time_zone: str
    started_at: str
    ended_at: str
    started_local: str
    ended_local: str
    text: TimeTexts


class ObjectView(_Open):
    text: Texts = Field(description="the object in words; its class, track id, box and plate come with it")


class EvidenceView(_Open):
    kind: str
    sha256: str
    media_type: str
    size: int
    label: Texts
    available: bool = Field(description="false: announced by the edge, not received yet")
    url: str = Field(description="carries the signed token that lets it be served")


class PendingEvidence(_Open):
    kind: str
    label: Texts


class EventView(_Open):
    id: str
    phase: str
    model: dict[str, Any]
    details: dict[str, Any]


class Links(_Open):
    html: str
    json_: str = Field(alias="json")


class HistoryEntry(_Open):
    at: str
    actor: str
    action: str
    from_status: str | None
    to_status: str | None
    note: str | None


class PlateReadView(_Open):
    text: str = Field(description="the plate, or 'unreadable' where the edge tried and could not read it")
    readable: bool
    confidence: Number | None = Field(description="the edge's confidence in the text (0..1)")
    lines: int | None = Field(description="1 or 2 (motorbike and square plates)")
    crop_sha256: str | None = Field(description="the plate evidence file that was read")


class ReportView(_Open):
    """A field report with the evidence of all its events and its operations data."""

    id: int
    status: Coded
    created_at: str
    category: Coded
    type: Coded
    title: Texts
    description: Texts
    place: Place
    time: Time
    stopped_seconds: Number | None
    stopped: Texts | None
    confidence: Number
    objects: list[ObjectView]
    evidence: list[EvidenceView]
    evidence_pending: list[PendingEvidence]
    snapshot_url: str | None
    event: EventView
    links: Links
    priority: str
    event_count: int
    first_seen: LocalTime | None
    last_seen: LocalTime | None
    deadline: LocalTime | None
    overdue: bool
    plate: str | None
    plate_read: PlateReadView | None = None
    watch_alerted: bool = Field(False, description="a watch-listed plate was seen: police were alerted")
    agency: Agency
    incident: str | None
    published: bool
    alerted: bool
    reject_reason: str | None = Field(None, description="rejected: the reason given")
    undo_until: LocalTime | None = Field(None, description="confirmed: forwarded and alerted then, unless undone")
    allowed_actions: list[str] = Field(description="what the caller may do now (empty in lists)")
    clip_url: str | None


class ReportDetail(ReportView):
    history: list[HistoryEntry] = Field(description="the audit trail, oldest first")


class ReportList(_Open):
    reports: list[ReportView]


class ActionBody(BaseModel):
    reason: str | None = Field(None, max_length=2000, description="required to reject or reopen")


class BulkBody(BaseModel):
    ids: list[int] = Field(min_length=1, max_length=200)
    action: str = Field(description="confirm | reject")
    reason: str | None = Field(None, max_length=2000, description="one reason for all; required to reject")


class BulkItem(_Closed):
    id: int
    ok: bool
    status: str | None
    error: str | None


class BulkResult(_Closed):
    results: list[BulkItem]


class ActionResult(_Closed):
    id: int
    status: str = Field(description="the report's status after the action")
    undo_until: str | None = Field(None, description="confirmed: forwarded and alerted at this time unless undone")


class PublishedImage(_Open):
    kind: str
    source: str = Field(description="sha256 of the original")
    sha256: str = Field(description="sha256 of the blurred copy")
    size: int
    heads_blurred: int | None = None
    persons_blurred: int | None = Field(None, description="people and riders (upper part) blurred")
    plates_blurred: int | None = Field(None, description="plates found, and vehicles' plate areas where none was found")


class PublishResult(_Closed):
    id: int
    published: bool
    evidence: list[PublishedImage]


class Me(_Open):
    username: str
    role: str
    districts: list[str] = Field(description="legacy scope: district labels from before 1 July 2025")
    wards: list[str] = Field(default_factory=list, description="police: the communes/wards they see")
    areas: list[str] = Field(default_factory=list, description="police: the routing areas (codes) they see")
    csrf: str = Field(description="send back as X-CSRF-Token with every state-changing request")


class WatchListHit(_Open):
    id: int
    plate: str
    note: str
    event_id: str | None = None
    expires_at: str | None = None


class Alert(_Open):
    """A police alert as queued (`central.alerts.alert_payload`) with its id and time."""

    id: int
    created_at: str
    report_id: int
    type: str
    title: Texts | None = None
    status: str | None = None
    priority: str | None = None
    plate: str | None = None
    plate_confidence: Number | None = None
    plate_unreadable: bool | None = None
    place: dict[str, Any] | None = None
    composite_url: str | None = Field(None, description="the crossing composite: the picture to show first")
    snapshot_url: str | None = None
    watch_list: WatchListHit | None = Field(None, description="set when the alert is for a watch-listed plate")
    report_url: str | None = None
    acknowledged: dict[str, str] | None = Field(None, description="by (username), at (UTC ISO), vi, en (local time)")


class WatchListEntry(_Closed):
    id: int
    plate: str
    plate_norm: str = Field(description="what is matched: upper case, letters and digits only")
    note: str
    created_by: str
    created_at: str
    expires_at: str | None
    removed_by: str | None
    removed_at: str | None
    active: bool


class WatchList(_Open):
    entries: list[WatchListEntry]


class WatchListBody(BaseModel):
    plate: str = Field(min_length=1, max_length=32, description="the full plate, e.g. 29-B1 123.45")
    note: str = Field(min_length=1, max_length=2000, description="why it is watched: sent to police with each alert")
    expires_at: str | None = Field(None, description="ISO 8601; none: until removed")


class AlertList(_Open):
    alerts: list[Alert]


class NodeHealth(_Open):
    node: str
    state: str
    online: bool = Field(description="says online and was heard within 2 minutes")
    updated_at: str = Field(description="when central last heard from it")
    age_s: int = Field(description="seconds since then")
    outbox_backlog: int | None = Field(description="messages on the node's disk not yet acknowledged")
    outbox_oldest_s: Number | None = Field(description="age of the oldest of them, s")
    uptime_s: Number | None = Field(description="s")
    typed: bool = Field(False, description="the status met the typed contract (ioc.node_status/1)")
    at: str | None = Field(None, description="the node's own time of the status")
    published: int | None = None
    held_no_subscriber: int | None = None
    disk_full: bool | None = None
    cameras: int | None = Field(None, description="cameras the node runs")


class CameraHealthView(_Open):
    node: str
    camera: str
    state: str
    fps: Number | None = Field(description="analysed frames per second (same as analysis_fps)")
    updated_at: str | None
    last_event_at: str | None
    typed: bool = False
    at: str | None = None
    analysis_fps: Number | None = Field(None, description="fps over the last 10 s")
    analysis_fps_target: Number | None = Field(None, description="fps configured")
    last_frame_at: str | None = None
    last_frame_age_s: Number | None = Field(None, description="s since the last decoded frame")
    lag_ms_p50: Number | None = Field(None, description="ms, median lag of analysis behind the camera")
    lag_ms_max: Number | None = Field(None, description="ms")
    overloaded: bool | None = None
    reconnects: int | None = None
    restarts: int | None = None
    camera_moved: bool | None = None
    frames_decoded: int | None = None
    analysed_frames: int | None = None
    slots_missed: int | None = None
    frames_gated: int | None = None
    events: int | None = None
    last_error: str | None = None
    alarm: str | None = Field(
        None, description="worst problem: offline | stale | down | camera_moved | overloaded (null: healthy or unknown)"
    )
    updated_age_s: Number | None = Field(None, description="s since the last health of this camera arrived")


class Health(_Open):
    nodes: list[NodeHealth]
    cameras: list[CameraHealthView]
    at: str


class Liveness(_Open):
    status: str = Field(description="ok | error")
    database: str | None = None
    mqtt: str | None = Field(None, description="connected | disconnected (only where the ingester runs)")
    ingester: dict[str, int] | None = Field(None, description="the ingester's counters since it started")
    event_source: dict[str, Any] | None = Field(
        None, description="where events come from when a broker cluster's queue feeds them: engine, consuming"
    )


class PublicImage(_Open):
    kind: str
    url: str
    sha256: str


class PublicReport(_Open):
    """A published report: nothing that identifies anyone; only the blurred images."""

    id: int
    title: Texts
    category: Coded
    status: Coded
    place: PublicPlace
    time: Time
    first_seen: LocalTime | None
    event_count: int
    agency: Agency
    images: list[PublicImage]
    published_at: str | None


class PublicReportList(_Open):
    reports: list[PublicReport]


class Error(_Open):
    detail: Any = Field(description="what went wrong (a list of problems for a request that does not validate)")
