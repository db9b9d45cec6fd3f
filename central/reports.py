"""Field reports (phản ánh hiện trường) made from events: texts in Vietnamese and English, views.

`central.grouping` decides which events form one report; this module writes the texts of a report
from its best event. Everything here is pure: an event in, texts and dicts out; the HTML comes from
the Jinja2 templates next to this file (rendered by `central.web`).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import jinja2
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from contract.configfile import ConfigError, format_validation_error, read_yaml
from contract.events import Category, ViolationEvent
from contract.paths import packaged_config

DEFAULT_TEMPLATES_FILE = packaged_config("report_templates", "violations.yaml")
TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
DEFAULT_TZ = "Asia/Ho_Chi_Minh"

CATEGORY_TEXT: dict[str, dict[str, str]] = {
    Category.TRAFFIC: {"vi": "Trật tự an toàn giao thông", "en": "Traffic"},
    Category.URBAN_ORDER: {"vi": "Trật tự đô thị", "en": "Urban order"},
    Category.SANITATION: {"vi": "Vệ sinh môi trường", "en": "Environmental sanitation"},
}

STATUS_TEXT: dict[str, dict[str, str]] = {
    "new": {"vi": "Mới", "en": "New"},
    "confirmed": {"vi": "Đã xác nhận", "en": "Confirmed"},
    "rejected": {"vi": "Từ chối", "en": "Rejected"},
    "forwarded": {"vi": "Đã chuyển xử lý", "en": "Forwarded"},
    "resolved": {"vi": "Đã xử lý", "en": "Resolved"},
}

PRIORITY_TEXT: dict[str, dict[str, str]] = {
    "urgent": {"vi": "Khẩn", "en": "Urgent"},
    "normal": {"vi": "Thường", "en": "Normal"},
}

# The audit trail's actions (report_history.action) in the words an operator reads.
ACTION_TEXT: dict[str, dict[str, str]] = {
    "created": {"vi": "Tạo phản ánh", "en": "Created"},
    "confirm": {"vi": "Xác nhận", "en": "Confirmed"},
    "reject": {"vi": "Từ chối", "en": "Rejected"},
    "forward": {"vi": "Chuyển xử lý", "en": "Forwarded"},
    "resolve": {"vi": "Đã xử lý", "en": "Resolved"},
    "reopen": {"vi": "Mở lại", "en": "Reopened"},
    "undo_confirm": {"vi": "Hoàn tác xác nhận", "en": "Confirmation undone"},
    "publish": {"vi": "Công khai", "en": "Published"},
    "unpublish": {"vi": "Gỡ công khai", "en": "Unpublished"},
    "alert_queued": {"vi": "Gửi cảnh báo CSGT", "en": "Police alert queued"},
    "alert_ack": {"vi": "CSGT đã nhận cảnh báo", "en": "Police acknowledged the alert"},
    "watch_list_alert": {"vi": "Cảnh báo biển số theo dõi", "en": "Watch-list alert"},
    "revoke_share": {"vi": "Thu hồi liên kết chia sẻ", "en": "Share links revoked"},
}


def local_iso(ts: datetime | None, tz: str | ZoneInfo) -> str:
    """A machine-readable time in the console's zone, to the second: 2026-12-02T22:08:42+07:00
    (CSV cells and file names: what a person opens in a spreadsheet reads as local time)."""
    if ts is None:
        return ""
    zone = tz if isinstance(tz, ZoneInfo) else ZoneInfo(tz)
    return ts.astimezone(zone).replace(microsecond=0).isoformat()


# Detector class names (COCO-style) -> how a report names them.
OBJECT_TEXT: dict[str, dict[str, str]] = {
    "car": {"vi": "xe ô tô", "en": "a car"},
    "motorcycle": {"vi": "xe mô tô, xe gắn máy", "en": "a motorcycle"},
    "motorbike": {"vi": "xe mô tô, xe gắn máy", "en": "a motorcycle"},
    "truck": {"vi": "xe tải", "en": "a truck"},
    "bus": {"vi": "xe buýt, xe khách", "en": "a bus"},
    "bicycle": {"vi": "xe đạp", "en": "a bicycle"},
    "person": {"vi": "người", "en": "a person"},
}

EVIDENCE_TEXT: dict[str, dict[str, str]] = {
    "snapshot": {"vi": "Ảnh chụp (có chú thích)", "en": "Annotated snapshot"},
    "snapshot_clean": {"vi": "Ảnh chụp gốc", "en": "Original snapshot"},
    "clip": {"vi": "Đoạn video", "en": "Video clip"},
    "plate": {"vi": "Ảnh biển số", "en": "Plate image"},
    "crop": {"vi": "Ảnh cắt đối tượng", "en": "Object crop"},
    "composite": {"vi": "Ảnh ghép diễn biến vi phạm", "en": "Composite of the act"},
    "composite_clean": {"vi": "Ảnh ghép gốc", "en": "Composite, unannotated"},
    "first_seen": {"vi": "Ảnh lúc bắt đầu", "en": "When it started"},
}

class _Texts(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    vi: str
    en: str


class TypeTemplate(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    title: _Texts
    subject: _Texts
    lead: _Texts
    names_vehicle: bool = Field(True, description="the subject names the vehicle seen (and its plate)")
    # The provision an officer would check the act against, as the formal record (PDF) prints it.
    # A reference only: the officer who verifies the record decides what applies.
    legal_reference: _Texts | None = Field(None, description="the legal provision for this type (vi/en), printed on the record")


class ReportTemplates(BaseModel):
    """Texts per violation type. A type without texts here (a rule newer than this central) gets
    a generic bilingual text naming the type: its events are stored and reported, never refused."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    types: dict[str, TypeTemplate]

    def for_type(self, vtype: str) -> TypeTemplate:
        return self.types.get(vtype) or generic_template(vtype)


def generic_template(vtype: str) -> TypeTemplate:
    label = vtype.replace("_", " ")
    return TypeTemplate(
        title=_Texts(vi=f"Vi phạm ({label})", en=f"Violation ({label})"),
        subject=_Texts(vi="đối tượng", en="someone"),
        lead=_Texts(
            vi="Camera {camera} ghi nhận {subject} vi phạm loại “" + label + "” tại {place}.",
            en="Camera {camera} recorded {subject} in a violation of type “" + label + "” at {place}.",
        ),
        names_vehicle=False,
    )


def rule_templates() -> dict[str, TypeTemplate]:
    """The texts the edge rule plug-ins declare for their violation types (pure data)."""
    from edge.rules.registry import violation_kinds

    return {
        kind.type: TypeTemplate(
            title=_Texts(vi=kind.title.vi, en=kind.title.en),
            subject=_Texts(vi=kind.subject.vi, en=kind.subject.en),
            lead=_Texts(vi=kind.lead.vi, en=kind.lead.en),
            names_vehicle=kind.names_vehicle,
        )
        for kind in violation_kinds().values()
    }


def load_templates(path: Path | str | None = DEFAULT_TEMPLATES_FILE) -> ReportTemplates:
    """The rules' own texts, overridden per type by the deployer's file (`path`, optional: a type
    may be left out, or given only some of title/subject/lead); raises ConfigError (file + key
    path) when the file is unusable."""
    texts = {k: v.model_dump() for k, v in rule_templates().items()}
    data = (read_yaml(path) or {}) if path is not None and Path(path).exists() else {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: (top level): expected a mapping of violation types")
    for vtype, override in data.items():
        base = texts.get(str(vtype))
        if isinstance(override, dict) and base is not None:
            override = {**base, **override}
        texts[str(vtype)] = override
    try:
        return ReportTemplates.model_validate({"types": texts})
    except ValidationError as e:
        raise ConfigError(format_validation_error(path or "report templates", e).replace(": types.", ": ")) from None


@functools.lru_cache(maxsize=4)
def _cached_templates(path: str) -> ReportTemplates:
    return load_templates(path)


def default_templates() -> ReportTemplates:
    return _cached_templates(str(DEFAULT_TEMPLATES_FILE))


# ------------------------------------------------------------------------------------- formatting


def format_duration(seconds: float | None, lang: str) -> str:
    """`205` -> "3 phút 25 giây" / "3 min 25 s"; "" when unknown."""
    if seconds is None or seconds < 0:
        return ""
    total = int(round(seconds))
    h, rem = divmod(total, 3600)
    m, s = divmod(rem, 60)
    units = ("giờ", "phút", "giây") if lang == "vi" else ("h", "min", "s")
    parts = [f"{v} {u}" for v, u in zip((h, m, s), units, strict=True) if v]
    return " ".join(parts) if parts else ("0 giây" if lang == "vi" else "0 s")


def format_local(ts: datetime, tz: ZoneInfo, lang: str) -> str:
    local = ts.astimezone(tz)
    offset = local.strftime("%z")
    offset = f"UTC{offset[:3]}:{offset[3:]}" if offset else "UTC"
    if lang == "vi":
        return f"{local:%H:%M:%S} ngày {local:%d/%m/%Y} ({offset})"
    return f"{local:%Y-%m-%d %H:%M:%S} ({offset})"


def format_utc(ts: datetime) -> str:
    return ts.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def place_text(event: ViolationEvent, lang: str) -> str:
    loc = event.location
    parts = [p.strip() for p in (loc.address, loc.ward, loc.district) if p and p.strip()]
    if parts:
        return ", ".join(parts)
    return f"vị trí camera {event.camera}" if lang == "vi" else f"the location of camera {event.camera}"


def subject_text(event: ViolationEvent, template: TypeTemplate, lang: str) -> str:
    default = getattr(template.subject, lang)
    if not template.names_vehicle or not event.objects:
        return default
    primary = event.objects[0]
    name = OBJECT_TEXT.get(primary.class_name, {}).get(lang)
    if not name:
        return default
    if primary.plate:
        name += f" biển số {primary.plate}" if lang == "vi" else f" with plate {primary.plate}"
    return name


def object_line(obj: Any, lang: str) -> str:
    name = OBJECT_TEXT.get(obj.class_name, {}).get(lang, obj.class_name)
    if lang == "en" and name.startswith(("a ", "an ")):
        name = name.split(" ", 1)[1]
    plate = (f", biển số {obj.plate}" if lang == "vi" else f", plate {obj.plate}") if obj.plate else ""
    conf = f"{obj.confidence:.0%}"
    return f"{name} (#{obj.track_id}{plate}, {'độ tin cậy' if lang == 'vi' else 'confidence'} {conf})"


@dataclass(frozen=True)
class ReportTexts:
    title_vi: str
    title_en: str
    description_vi: str
    description_en: str


def _stopped_seconds(event: ViolationEvent) -> float | None:
    value = event.details.get("stopped_seconds")
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _description(event: ViolationEvent, tpl: TypeTemplate, tz: ZoneInfo, lang: str) -> str:
    vi = lang == "vi"
    stopped = _stopped_seconds(event)
    duration = format_duration(stopped, lang)
    values = {
        "camera": event.camera,
        "place": place_text(event, lang),
        "subject": subject_text(event, tpl, lang),
        "duration": (f" trong {duration}" if vi else f" for {duration}") if duration else "",
        "zone": event.zone.id if event.zone else "",
    }
    lead = getattr(tpl.lead, lang).format_map(_Missing(values))
    lines = [lead]
    lines.append(
        ("Thời gian: " if vi else "Time: ")
        + f"{format_local(event.started_at, tz, lang)} – {format_local(event.ended_at, tz, lang)}"
        + f" [{format_utc(event.started_at)} – {format_utc(event.ended_at)}]"
    )
    if duration and "{duration}" not in getattr(tpl.lead, lang):
        lines.append(("Thời gian dừng: " if vi else "Stopped for: ") + duration)
    loc = event.location
    where = [place_text(event, lang)]
    if loc.lat is not None and loc.lon is not None:
        where.append(f"{loc.lat:.6f}, {loc.lon:.6f}")
    lines.append(
        ("Địa điểm: " if vi else "Place: ") + "; ".join(where) + f" (camera {event.camera}, node {event.node})"
    )
    if event.objects:
        lines.append(("Đối tượng: " if vi else "Objects: ") + "; ".join(object_line(o, lang) for o in event.objects))
    lines.append(("Độ tin cậy: " if vi else "Confidence: ") + f"{event.confidence:.0%}")
    if event.evidence:
        refs = ", ".join(f"{EVIDENCE_TEXT[e.kind][lang]} sha256:{e.sha256[:12]}…" for e in event.evidence)
        lines.append(("Bằng chứng: " if vi else "Evidence: ") + refs)
    return "\n".join(lines)


class _Missing(dict[str, str]):
    """format_map that leaves an unknown placeholder visible instead of raising KeyError."""

    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def build_report_texts(
    event: ViolationEvent, *, templates: ReportTemplates | None = None, tz: str | ZoneInfo = DEFAULT_TZ
) -> ReportTexts:
    """Title and description of the field report for one event, in Vietnamese and English."""
    templates = templates or default_templates()
    zone = tz if isinstance(tz, ZoneInfo) else ZoneInfo(tz)
    tpl = templates.for_type(event.type)
    return ReportTexts(
        title_vi=tpl.title.vi,
        title_en=tpl.title.en,
        description_vi=_description(event, tpl, zone, "vi"),
        description_en=_description(event, tpl, zone, "en"),
    )


# ------------------------------------------------------------------------------------------ views


def evidence_url(base_url: str, sha256: str, secret: bytes | None = None) -> str:
    """The evidence file's URL; with the signing secret it carries the token that lets it be served."""
    url = f"{base_url.rstrip('/')}/evidence/{sha256}"
    if secret is None:
        return url
    from central.auth import evidence_token

    return f"{url}?t={evidence_token(secret, sha256)}"


def report_url(base_url: str, report_id: int | str) -> str:
    return f"{base_url.rstrip('/')}/reports/{report_id}"


def report_view(
    report: Any,
    event: ViolationEvent,
    *,
    available_evidence: set[str] | frozenset[str] = frozenset(),
    base_url: str = "",
    tz: str | ZoneInfo = DEFAULT_TZ,
    secret: bytes | None = None,
) -> dict[str, Any]:
    """The report as a JSON-ready dict (also the context of the HTML page).

    `report` is a `central.db.ReportRow` (or anything with the same attributes).
    `available_evidence`: the sha256s central holds, so a missing file is shown as pending.
    """
    zone = tz if isinstance(tz, ZoneInfo) else ZoneInfo(tz)
    loc = event.location
    stopped = _stopped_seconds(event)
    snapshot = next((e for e in event.evidence if e.kind == "snapshot" and e.sha256 in available_evidence), None)
    created: datetime = report.created_at
    return {
        "id": report.id,
        "status": {"code": report.status, **STATUS_TEXT.get(report.status, {"vi": report.status, "en": report.status})},
        "created_at": created.astimezone(UTC).isoformat(),
        "category": {"code": event.category.value, **CATEGORY_TEXT[event.category]},
        "type": {"code": event.type.value, "vi": report.title_vi, "en": report.title_en},
        "title": {"vi": report.title_vi, "en": report.title_en},
        "description": {"vi": report.description_vi, "en": report.description_en},
        "place": {
            "node": event.node,
            "camera": event.camera,
            "ward": loc.ward,
            "district": loc.district,
            "address": loc.address,
            "lat": loc.lat,
            "lon": loc.lon,
            "text": {"vi": place_text(event, "vi"), "en": place_text(event, "en")},
            "zone": event.zone.model_dump() if event.zone else None,
        },
        "time": {
            "time_zone": zone.key,
            "started_at": event.started_at.isoformat(),
            "ended_at": event.ended_at.isoformat(),
            "started_local": event.started_at.astimezone(zone).isoformat(),
            "ended_local": event.ended_at.astimezone(zone).isoformat(),
            "text": {
                "vi": format_local(event.started_at, zone, "vi"),
                "en": format_local(event.started_at, zone, "en"),
                "utc": format_utc(event.started_at),
            },
        },
        "stopped_seconds": stopped,
        "stopped": {"vi": format_duration(stopped, "vi"), "en": format_duration(stopped, "en")} if stopped else None,
        "confidence": event.confidence,
        "objects": [
            {
                **o.model_dump(),
                "text": {"vi": object_line(o, "vi"), "en": object_line(o, "en")},
            }
            for o in event.objects
        ],
        "evidence": [
            {
                **e.model_dump(),
                "label": EVIDENCE_TEXT[e.kind],
                "available": e.sha256 in available_evidence,
                "url": evidence_url(base_url, e.sha256, secret),
            }
            for e in event.evidence
        ],
        # The edge publishes an event before its clip's post-event footage exists; the clip follows.
        "evidence_pending": [
            {"kind": k, "label": EVIDENCE_TEXT[k]} for k in event.evidence_pending if k not in {e.kind for e in event.evidence}
        ],
        "snapshot_url": evidence_url(base_url, snapshot.sha256, secret) if snapshot else None,
        "event": {"id": event.id, "phase": event.phase, "model": event.model.model_dump(), "details": event.details},
        "links": {"html": report_url(base_url, report.id), "json": report_url(base_url, report.id) + ".json"},
    }


@functools.lru_cache(maxsize=1)
def jinja_env() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES_DIR)),
        autoescape=jinja2.select_autoescape(["html", "xml"]),  # event texts come from the edge: escape them
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["pct"] = lambda v: f"{v:.0%}"
    env.filters["human_size"] = human_size
    env.filters["local_time"] = local_time_text
    env.filters["duration"] = duration_text
    return env


def local_time_text(value: str | datetime | None, tz: str, lang: str = "vi") -> str:
    """An ISO time (as the JSON views carry it) as a person reads it in the console's zone; "—"
    when there is none or it cannot be read."""
    if value is None or value == "":
        return "—"
    try:
        ts = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    except ValueError:
        return str(value)
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=UTC)
    return format_local(ts, ZoneInfo(tz), lang)


def duration_text(seconds: float | None) -> str:
    """3725 -> "1 h 2 min"; 42 -> "42 s"; None -> "—" (units on every number)."""
    if seconds is None:
        return "—"
    s = int(round(seconds))
    if s < 120:
        return f"{s} s"
    d, rem = divmod(s, 86_400)
    h, rem = divmod(rem, 3600)
    m = rem // 60
    parts = [f"{d} ngày/d"] if d else []
    if h or d:
        parts.append(f"{h} h")
    parts.append(f"{m} min")
    return " ".join(parts)


def human_size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"
