"""The operations dashboard: counts of the field reports by type, ward, status and agency, what
is overdue, a trend over days, and how often operators reject each rule's and camera's reports.

The rejection rate is the field measure of false events: of the reports an operator has decided
(confirmed, forwarded, resolved or rejected), the share rejected. It is shown per violation type and
per camera (a camera whose zones are drawn badly stands out) and exported on /metrics.

Every count is one GROUP BY in the database (PostgreSQL or SQLite): the page stays cheap with a
year of reports.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from central.db import ReportRow, utcnow
from central.reports import CATEGORY_TEXT, STATUS_TEXT, rule_templates

DECIDED = ("confirmed", "forwarded", "resolved", "rejected")
CLOSED = ("rejected", "resolved")
UNKNOWN = {"vi": "(chưa rõ)", "en": "(unknown)"}


def _type_text() -> dict[str, dict[str, str]]:
    # The rules' own titles, as the report texts use them (central.reports reads the rule registry).
    return {vtype: {"vi": t.title.vi, "en": t.title.en} for vtype, t in rule_templates().items()}


def _counts(s: Session, column: Any, since: datetime | None = None) -> list[tuple[Any, int]]:
    stmt = select(column, func.count()).group_by(column).order_by(func.count().desc())
    if since is not None:
        stmt = stmt.where(ReportRow.created_at >= since)
    return [(key, int(n)) for key, n in s.execute(stmt).all()]


def rejection_rates(s: Session, by: Any) -> list[dict[str, Any]]:
    """[{key, decided, rejected, rate}] per value of `by` (a ReportRow column), most rejected first."""
    rejected = func.sum(case((ReportRow.status == "rejected", 1), else_=0))
    rows = s.execute(
        select(by, func.count(), rejected).where(ReportRow.status.in_(DECIDED)).group_by(by)
    ).all()
    out = [
        {"key": key, "decided": int(n), "rejected": int(r or 0), "rate": round(int(r or 0) / int(n), 3)}
        for key, n, r in rows
        if n
    ]
    return sorted(out, key=lambda d: (-d["rate"], -d["decided"], str(d["key"])))


def _local_day_expr(s: Session, tz: ZoneInfo) -> Any:
    """The report's creation day in the console's time zone, computed by the database."""
    if s.get_bind().dialect.name == "postgresql":
        return func.date(func.timezone(str(tz), ReportRow.created_at))
    # SQLite keeps naive UTC: shift by the zone's offset now (Vietnam has no daylight saving time;
    # elsewhere a day at a DST change is off by that hour).
    offset = utcnow().astimezone(tz).utcoffset() or timedelta(0)
    return func.date(ReportRow.created_at, f"{int(offset.total_seconds())} seconds")


def trend(s: Session, tz: ZoneInfo, days: int) -> dict[str, Any]:
    """Reports created per local day and category over the last `days` days (today included)."""
    today = utcnow().astimezone(tz).date()
    first = today - timedelta(days=days - 1)
    since = datetime.combine(first, datetime.min.time(), tz)
    day = _local_day_expr(s, tz)
    rows = s.execute(
        select(day, ReportRow.category, func.count())
        .where(ReportRow.created_at >= since)
        .group_by(day, ReportRow.category)
    ).all()
    per: dict[str, dict[str, int]] = defaultdict(dict)
    for d, category, n in rows:
        key = d.isoformat() if isinstance(d, date) else str(d)
        per[category][key] = int(n)
    labels = [(first + timedelta(days=i)).isoformat() for i in range(days)]
    return {
        "days": labels,
        "series": [
            {"category": c, **CATEGORY_TEXT.get(c, {"vi": c, "en": c}), "counts": [per[c].get(d, 0) for d in labels]}
            for c in sorted(per)
        ],
    }


def dashboard_data(s: Session, tz: ZoneInfo, days: int = 14) -> dict[str, Any]:
    types = _type_text()

    def labelled(rows: list[tuple[Any, int]], text: dict[str, dict[str, str]] | None = None) -> list[dict[str, Any]]:
        out = []
        for key, n in rows:
            names = (text or {}).get(key) if key is not None else UNKNOWN
            if names is None:
                names = {"vi": str(key), "en": str(key)}
            out.append({"key": key, "count": n, **names})
        return out

    now = utcnow()
    open_overdue = s.scalar(
        select(func.count()).where(ReportRow.deadline_at < now, ReportRow.status.not_in(CLOSED))
    )
    open_total = s.scalar(select(func.count()).where(ReportRow.status.not_in(CLOSED)))
    agency = func.coalesce(ReportRow.agency_name_vi, ReportRow.agency_code)
    by_camera = rejection_rates(s, ReportRow.node + "/" + ReportRow.camera)
    return {
        "total": int(s.scalar(select(func.count()).select_from(ReportRow)) or 0),
        "open": int(open_total or 0),
        "overdue": int(open_overdue or 0),
        "by_type": labelled(_counts(s, ReportRow.type), types),
        "by_status": labelled(_counts(s, ReportRow.status), STATUS_TEXT),
        "by_ward": labelled(_counts(s, ReportRow.ward)),
        "by_agency": labelled(_counts(s, agency)),
        "trend": trend(s, tz, days),
        "rejection_by_type": [{**r, **types.get(r["key"], {"vi": r["key"], "en": r["key"]})} for r in rejection_rates(s, ReportRow.type)],
        "rejection_by_camera": by_camera,
    }
