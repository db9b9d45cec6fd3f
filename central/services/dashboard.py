"""The operations dashboard: counts of the field reports by type, ward, status and agency, what
is overdue, a trend over days, and how often operators reject each rule's and camera's reports.

The rejection rate is the field measure of false events: of the reports an operator has decided
(confirmed, forwarded, resolved or rejected), the share rejected. It is shown per violation type and
per camera (a camera whose zones are drawn badly stands out) and exported on /metrics.

The counts by type, status, ward, agency and camera read `report_counts` (kept by triggers on
`reports`, central.report_counts), not the reports: the page costs the same with ten years of
reports as with one day. The trend (the last days, on the created_at index) and the overdue count
(the open reports past a deadline) are counted on the reports.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from central import report_counts
from central.db import ReportRow, utcnow
from central.reports import CATEGORY_TEXT, STATUS_TEXT, rule_templates

DECIDED = ("confirmed", "forwarded", "resolved", "rejected")
CLOSED = ("rejected", "resolved")
UNKNOWN = {"vi": "(chưa rõ)", "en": "(unknown)"}


def _type_text() -> dict[str, dict[str, str]]:
    # The rules' own titles, as the report texts use them (central.reports reads the rule registry).
    return {vtype: {"vi": t.title.vi, "en": t.title.en} for vtype, t in rule_templates().items()}


def _counts(s: Session, dimension: str) -> list[tuple[Any, int]]:
    rows = report_counts.grouped(s, (dimension,))
    return sorted(((key, n) for key, n in rows), key=lambda kn: (-kn[1], str(kn[0])))


def rejection_rates(s: Session, by: str) -> list[dict[str, Any]]:
    """[{key, decided, rejected, rate}] per `by` ("type", or "camera": node/camera), most rejected first."""
    dims = ("node", "camera") if by == "camera" else (by,)
    decided: dict[Any, int] = defaultdict(int)
    rejected: dict[Any, int] = defaultdict(int)
    for *keys, status, n in report_counts.grouped(s, (*dims, "status"), statuses=DECIDED):
        key = "/".join(str(k) for k in keys) if by == "camera" else keys[0]
        decided[key] += n
        if status == "rejected":
            rejected[key] += n
    out = [
        {"key": key, "decided": n, "rejected": rejected[key], "rate": round(rejected[key] / n, 3)}
        for key, n in decided.items()
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
    report_counts.fold(s.get_bind())  # type: ignore[arg-type]  # the session's engine
    # Overdue depends on the clock: the open reports (counts) less the open ones not yet due or
    # without a deadline, read on the partial index of the open reports' deadlines (0009) — the
    # recent few, not the year behind them. Two statements: a report changing in between can
    # make the number off by one until the next look.
    open_total = report_counts.total(s, statuses=CLOSED, exclude=True)
    not_due = s.scalar(
        select(func.count()).where(
            ReportRow.status.not_in(CLOSED), or_(ReportRow.deadline_at >= now, ReportRow.deadline_at.is_(None))
        )
    )
    open_overdue = max(0, open_total - int(not_due or 0))
    return {
        "total": report_counts.total(s),
        "open": open_total,
        "overdue": int(open_overdue or 0),
        "by_type": labelled(_counts(s, "type"), types),
        "by_status": labelled(_counts(s, "status"), STATUS_TEXT),
        "by_ward": labelled(_counts(s, "ward")),
        "by_agency": labelled(_counts(s, "agency")),
        "trend": trend(s, tz, days),
        "rejection_by_type": [
            {**r, **types.get(r["key"], {"vi": r["key"], "en": r["key"]})} for r in rejection_rates(s, "type")
        ],
        "rejection_by_camera": rejection_rates(s, "camera"),
    }
