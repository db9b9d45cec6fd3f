"""Routing, priorities, deadlines and the review workflow of field reports.

Routing is data (configs/routing.yaml): category x ward (x optional area) -> agency; traffic -> the
police of the ward or of the named area (a set of wards) that covers it. Since 1 July 2025 Vietnam
has two tiers (province -> commune/ward/special zone); districts survive only as a legacy label,
still routed (`district_police`, deprecated) so an old table keeps working (docs/administration.md).
The workflow is a small state machine; every change writes a `report_history` row (who, when, why).
"""

from __future__ import annotations

import re
import unicodedata
import warnings
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from sqlalchemy.orm import Session

from central.db import ReportHistoryRow, ReportRow, utcnow
from contract.configfile import ConfigError, format_validation_error, read_yaml
from contract.events import Category, ViolationType
from contract.paths import packaged_config

DEFAULT_ROUTING_FILE = packaged_config("routing.yaml")

Priority = Literal["urgent", "normal"]
WARD_POLICE = "ward_police"  # the police agency serving the report's ward
AREA_POLICE = "area_police"  # the police agency serving the area its ward belongs to
DISTRICT_POLICE = "district_police"  # legacy: the police agency serving the report's district label
POLICE_ROUTES = (WARD_POLICE, AREA_POLICE, DISTRICT_POLICE)
ANY = "*"

# ------------------------------------------------------------------------------------- routing


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Names(_Strict):
    vi: str = Field(min_length=1)
    en: str = Field(min_length=1)


class Agency(_Strict):
    name: _Names
    kind: Literal["police", "ward_committee", "district_committee", "sanitation", "ioc", "other"]
    wards: list[str] = Field(default_factory=list, description="police: the wards/communes it serves")
    areas: list[str] = Field(default_factory=list, description="police: the areas (codes in `areas`) it serves")
    districts: list[str] = Field(default_factory=list, description="legacy: the districts it served")


class Area(_Strict):
    """A named set of wards (a traffic-police team's beat): routing, police scope and alert topics."""

    name: str = Field(min_length=1)
    wards: list[str] = Field(min_length=1)


class Route(_Strict):
    category: Category | Literal["*"] = ANY
    ward: str = ANY
    area: str = ANY
    district: str = ANY  # legacy label
    agency: str


class _Deadlines(_Strict):
    urgent: int = Field(gt=0, description="minutes")
    normal: int = Field(gt=0, description="minutes")

    @model_validator(mode="after")
    def _urgent_shorter(self) -> _Deadlines:
        if self.urgent >= self.normal:
            raise ValueError("urgent must be shorter than normal")
        return self


class RoutingTable(_Strict):
    areas: dict[str, Area] = Field(default_factory=dict)
    agencies: dict[str, Agency] = Field(min_length=1)
    routes: list[Route] = Field(min_length=1)
    priorities: dict[ViolationType, Priority] = Field(default_factory=dict)
    deadlines_minutes: dict[Category, _Deadlines]

    @model_validator(mode="after")
    def _check(self) -> RoutingTable:
        for i, r in enumerate(self.routes):
            if r.agency not in POLICE_ROUTES and r.agency not in self.agencies:
                raise ValueError(f"routes[{i}].agency: unknown agency {r.agency!r} (have: {sorted(self.agencies)})")
            if r.area != ANY and r.area not in self.areas:
                raise ValueError(f"routes[{i}].area: unknown area {r.area!r} (have: {sorted(self.areas)})")
            migrated = any(a.wards or a.areas for a in self.agencies.values())
            if (r.agency == DISTRICT_POLICE or r.district != ANY) and not migrated:
                # A table still routed by district only; a migrated one may keep a district route as
                # the fallback for cameras whose configs are not updated yet.
                warnings.warn(
                    f"routes[{i}]: districts no longer exist (two-tier government since 2025-07-01); route by "
                    "ward or area (ward_police / area_police), see docs/administration.md",
                    DeprecationWarning,
                    stacklevel=2,
                )
        for code, agency in self.agencies.items():
            unknown = [a for a in agency.areas if a not in self.areas]
            if unknown:
                raise ValueError(f"agencies.{code}.areas: unknown area(s) {unknown} (have: {sorted(self.areas)})")
        missing = [c.value for c in Category if c not in self.deadlines_minutes]
        if missing:
            raise ValueError(f"deadlines_minutes: no deadlines for {', '.join(missing)}")
        return self

    def area_of(self, ward: str | None) -> str | None:
        """The code of the (first) area that lists `ward`; None when no area does."""
        if not ward:
            return None
        return next((code for code, area in self.areas.items() if ward in area.wards), None)

    def _police(self, field: str, value: str | None) -> tuple[str, Agency] | None:
        if not value:
            return None
        for code, agency in self.agencies.items():
            if agency.kind == "police" and value in getattr(agency, field):
                return code, agency
        return None

    def police_for(self, district: str | None) -> tuple[str, Agency] | None:
        """Legacy: the police agency serving a district label."""
        return self._police("districts", district)

    def route(
        self, category: Category, ward: str | None, district: str | None = None, area: str | None = None
    ) -> tuple[str, Agency] | None:
        """First matching route's agency; None only if the table has no catch-all. `area` defaults
        to the area that lists the ward."""
        area = area or self.area_of(ward)
        for r in self.routes:
            if r.category != ANY and r.category != category:
                continue
            if r.ward != ANY and r.ward != (ward or ""):
                continue
            if r.area != ANY and r.area != (area or ""):
                continue
            if r.district != ANY and r.district != (district or ""):
                continue
            if r.agency in POLICE_ROUTES:
                found = {
                    WARD_POLICE: lambda: self._police("wards", ward),
                    AREA_POLICE: lambda: self._police("areas", area),
                    DISTRICT_POLICE: lambda: self.police_for(district),
                }[r.agency]()
                if found is None:
                    continue  # no police agency for this place: let a later route take it
                return found
            return r.agency, self.agencies[r.agency]
        return None

    def priority(self, vtype: ViolationType) -> Priority:
        return self.priorities.get(vtype, "normal")

    def deadline(self, category: Category, priority: Priority, since: datetime) -> datetime:
        minutes = getattr(self.deadlines_minutes[category], priority)
        return since + timedelta(minutes=minutes)


def load_routing(path: Path | str = DEFAULT_ROUTING_FILE) -> RoutingTable:
    """Read and check the routing table; raises ConfigError naming the file and the key."""
    data = read_yaml(path) or {}
    try:
        return RoutingTable.model_validate(data)
    except ValidationError as e:
        raise ConfigError(format_validation_error(path, e)) from None


def alert_scope(area: str | None, ward: str | None, district: str | None) -> str:
    """The topic-safe place of a report's police alerts, `<prefix>/alerts/<this>/<type>`: its area
    (code) when its ward is in one; else its legacy district label where the camera still carries one
    (the topic police accounts were granted before 2025: an upgrade must not silence them); else its ward."""
    return district_slug(area or district or ward)


def district_slug(district: str | None) -> str:
    """'Phường Cầu Giấy' -> 'phuong-cau-giay' (any place name or area code): a topic-safe name for
    MQTT alert topics."""
    text = (district or "").replace("đ", "d").replace("Đ", "D")
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    slug = re.sub(r"[^a-z0-9]+", "-", text).strip("-")[:64]
    return slug or "unknown"


# ------------------------------------------------------------------------------------ workflow

ROLES = ("operator", "police", "admin")
OPEN_STATUSES = ("new", "confirmed", "forwarded")  # a report in these can still grow


@dataclass(frozen=True)
class Transition:
    action: str
    source: tuple[str, ...]
    target: str
    roles: tuple[str, ...]
    needs_reason: bool = False


TRANSITIONS: dict[str, Transition] = {
    t.action: t
    for t in (
        Transition("confirm", ("new",), "confirmed", ("operator", "admin")),
        Transition("reject", ("new", "confirmed"), "rejected", ("operator", "admin"), needs_reason=True),
        Transition("forward", ("confirmed",), "forwarded", ("operator", "admin")),
        Transition("resolve", ("forwarded",), "resolved", ("operator", "police", "admin")),
        Transition("reopen", ("rejected", "resolved"), "new", ("admin",), needs_reason=True),
    )
}


class WorkflowError(Exception):
    """An action that is not allowed: `status` is the HTTP status that says why (403/409/422)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def record(
    session: Session,
    report: ReportRow,
    *,
    actor: str,
    action: str,
    to_status: str | None = None,
    note: str | None = None,
    at: datetime | None = None,
) -> ReportHistoryRow:
    """Audit one thing that happened to a report (and apply the status change, if any)."""
    at = at or utcnow()
    row = ReportHistoryRow(
        report_id=report.id,
        at=at,
        actor=actor,
        action=action,
        from_status=report.status,
        to_status=to_status,
        note=note,
    )
    if to_status is not None:
        report.status = to_status
    report.updated_at = at
    session.add(row)
    return row


def apply_action(
    session: Session, report: ReportRow, action: str, *, actor: str, role: str, reason: str | None = None
) -> ReportHistoryRow:
    """Check and apply one review action; raises WorkflowError when it is not allowed."""
    t = TRANSITIONS.get(action)
    if t is None:
        raise WorkflowError(404, f"unknown action {action!r}")
    if role not in t.roles:
        raise WorkflowError(403, f"role {role!r} may not {action}")
    if report.status not in t.source:
        raise WorkflowError(409, f"cannot {action} a report that is {report.status!r}")
    reason = (reason or "").strip() or None
    if t.needs_reason and not reason:
        raise WorkflowError(422, f"{action} needs a reason")
    return record(session, report, actor=actor, action=action, to_status=t.target, note=reason)


def is_overdue(report: ReportRow, now: datetime | None = None) -> bool:
    if report.deadline_at is None or report.status in ("rejected", "resolved"):
        return False
    return (now or utcnow()) > report.deadline_at
