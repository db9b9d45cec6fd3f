"""Who may see a report, and which review actions a user may take on it.

Police see only traffic reports of their wards and areas (or legacy districts), and only once a report is confirmed (or was
alerted to them before review), and the reports of any rule whose watch-listed plate they were
alerted to; operators and admins see everything.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Select, or_
from sqlalchemy.orm import Session

from central.auth import User
from central.db import ReportRow
from central.workflow import TRANSITIONS, WorkflowError

POLICE_VISIBLE = ("confirmed", "forwarded", "resolved")
REVIEWERS = ("operator", "admin")
FORBIDDEN = "không có quyền / forbidden for this role"
NOT_FOUND = "không tìm thấy / not found"


def scope(stmt: Select[Any], user: User) -> Select[Any]:
    """Restrict a SELECT of reports to what `user` may see (the SQL form of `can_see`)."""
    if user.role != "police":
        return stmt
    # A report of any rule whose watch-listed plate police were alerted to: they must open what they got.
    watched = ReportRow.watch_alerted_at.is_not(None)
    return stmt.where(
        or_(ReportRow.category == "traffic", watched),
        place_clause(user),
        or_(ReportRow.status.in_(POLICE_VISIBLE), ReportRow.alerted_at.is_not(None), watched),
    )


def place_clause(user: User) -> ColumnElement[bool]:
    """The SQL form of User.sees_place over reports (a police user's wards, areas, legacy districts)."""
    return or_(
        ReportRow.ward.in_(user.wards), ReportRow.area.in_(user.areas), ReportRow.district.in_(user.districts)
    )


def can_see(user: User, report: ReportRow) -> bool:
    if user.role != "police":
        return True
    watched = report.watch_alerted_at is not None
    return (
        (report.category == "traffic" or watched)
        and user.sees_place(report.ward, report.area, report.district)
        and (report.status in POLICE_VISIBLE or report.alerted_at is not None or watched)
    )


def allowed_actions(user: User, report: ReportRow) -> list[str]:
    """The workflow actions `user` may apply to `report` now (what the console offers as buttons)."""
    if not can_see(user, report):
        return []
    return [a for a, t in TRANSITIONS.items() if user.role in t.roles and report.status in t.source]


def load_visible(s: Session, report_id: int, user: User | None) -> ReportRow:
    """The report, if `user` (None: a share link, already checked) may see it; 404 otherwise.
    Police asking for another district's report get the same 404 as for a missing one."""
    report = s.get(ReportRow, report_id)
    if report is None or (user is not None and not can_see(user, report)):
        raise WorkflowError(404, NOT_FOUND)
    return report
