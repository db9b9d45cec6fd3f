"""The review of a field report, one function per business rule.

confirm -> (forward, when `review.forward_on_confirm`) -> police alert is written once, in
`after_confirm`, and runs whoever confirmed: an operator in the console, or the ingester's
auto-review for the classes configured to skip review. Every change writes its audit row
(`central.workflow.record`) in the caller's transaction, so the status change and the alert in
the outbox commit together or not at all.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from central import evidence as evidence_files
from central import queries
from central.alerts import queue_alert
from central.auth import User
from central.config import CentralConfig
from central.db import ReportRow, session_scope, utcnow
from central.logs import kv
from central.services.access import FORBIDDEN, REVIEWERS, load_visible
from central.services.views import build_views
from central.workflow import WorkflowError, apply_action, record

log = logging.getLogger(__name__)

PUBLISHABLE = ("confirmed", "forwarded", "resolved")
SYSTEM = "system"


# ------------------------------------------------------------------------------ the rules


def after_confirm(s: Session, report: ReportRow, config: CentralConfig, *, actor: str) -> None:
    """What follows a confirmation, whoever made it: the report goes to its agency (when
    configured) and a traffic report is alerted to the district's police (once per report)."""
    if config.review.forward_on_confirm:
        record(s, report, actor=SYSTEM, action="forward", to_status="forwarded", note=report.agency_code)
    queue_alert(s, report, config, actor=actor)


def confirm(s: Session, report: ReportRow, config: CentralConfig, *, user: User, reason: str | None = None) -> None:
    apply_action(s, report, "confirm", actor=user.username, role=user.role, reason=reason)
    after_confirm(s, report, config, actor=user.username)


def reject(s: Session, report: ReportRow, config: CentralConfig, *, user: User, reason: str | None = None) -> None:
    """Needs a reason (422 without one)."""
    apply_action(s, report, "reject", actor=user.username, role=user.role, reason=reason)


def forward(s: Session, report: ReportRow, config: CentralConfig, *, user: User, reason: str | None = None) -> None:
    apply_action(s, report, "forward", actor=user.username, role=user.role, reason=reason)


def resolve(s: Session, report: ReportRow, config: CentralConfig, *, user: User, reason: str | None = None) -> None:
    apply_action(s, report, "resolve", actor=user.username, role=user.role, reason=reason)


def reopen(s: Session, report: ReportRow, config: CentralConfig, *, user: User, reason: str | None = None) -> None:
    """Admin only; needs a reason."""
    apply_action(s, report, "reopen", actor=user.username, role=user.role, reason=reason)


ACTIONS: dict[str, Callable[..., None]] = {
    "confirm": confirm,
    "reject": reject,
    "forward": forward,
    "resolve": resolve,
    "reopen": reopen,
}


def act(
    sessions: sessionmaker[Session], config: CentralConfig, report_id: int, action: str, user: User, reason: str | None
) -> ReportRow:
    """Apply one review action in its own transaction; raises WorkflowError (404/403/409/422)."""
    with session_scope(sessions) as s:
        report = load_visible(s, report_id, user)
        rule = ACTIONS.get(action)
        if rule is None:
            raise WorkflowError(404, f"unknown action {action!r}")
        lock_for_update(s, report)
        rule(s, report, config, user=user, reason=reason)
        log.info(kv("report_action", report=report_id, action=action, actor=user.username, status=report.status))
        return report


def lock_for_update(s: Session, report: ReportRow) -> None:
    """Take the report's write lock, then read it again, before its state is checked: the first
    write of the transaction (PostgreSQL locks the row, waiting for a concurrent action's commit;
    SQLite takes the database's write lock, its busy timeout waiting likewise), so of concurrent
    confirmations one passes the check and the others see it confirmed (409) instead of each
    confirming, forwarding and alerting again."""
    s.execute(
        update(ReportRow)
        .where(ReportRow.id == report.id)
        .values(updated_at=ReportRow.updated_at)
        .execution_options(synchronize_session=False)
    )
    s.refresh(report)


def auto_review(s: Session, report: ReportRow, config: CentralConfig) -> None:
    """A new report of a class configured to skip review is confirmed by "system" (and then
    forwarded and alerted like any confirmation); configured types alert the police at once."""
    skip = any(
        r.type.value == report.type and (report.confidence or 0) >= r.min_confidence for r in config.review.skip_review
    )
    if skip:
        record(s, report, actor=SYSTEM, action="confirm", to_status="confirmed", note="auto: high-confidence class")
        after_confirm(s, report, config, actor=SYSTEM)
    elif report.type in {t.value for t in config.alerts.immediate_types}:
        queue_alert(s, report, config, actor=SYSTEM)


# ----------------------------------------------------------------------------- publishing


def publish(
    sessions: sessionmaker[Session], config: CentralConfig, report_id: int, user: User, *, secret: bytes | None
) -> dict[str, Any]:
    """Make the public version of a confirmed report: every head and plate of its snapshots
    blurred once, here, and stored as evidence of its own; the public pages only serve those."""
    if user.role not in REVIEWERS:
        raise WorkflowError(403, FORBIDDEN)
    with sessions() as s:
        report = load_visible(s, report_id, user)
        if report.status not in PUBLISHABLE:
            raise WorkflowError(409, "only a confirmed report can be published")
        view = build_views(s, [report], "", config.time_zone, secret=secret)[0]
    images = [e for e in view["evidence"] if e["kind"] in ("snapshot", "snapshot_clean") and e["available"]]
    public = [b for b in (_blurred(sessions, config, e) for e in images) if b is not None]
    with session_scope(sessions) as s:
        report = load_visible(s, report_id, user)
        report.public_evidence = public
        report.published_at = utcnow()
        record(s, report, actor=user.username, action="publish", note=f"{len(public)} image(s) blurred")
    return {"id": report_id, "published": True, "evidence": public}


def unpublish(sessions: sessionmaker[Session], report_id: int, user: User) -> dict[str, Any]:
    """Take a report off the public pages (its blurred images stay stored, unlinked); audited."""
    if user.role not in REVIEWERS:
        raise WorkflowError(403, FORBIDDEN)
    with session_scope(sessions) as s:
        report = load_visible(s, report_id, user)
        if report.published_at is None:
            raise WorkflowError(409, "the report is not published")
        report.published_at = None
        report.public_evidence = None
        record(s, report, actor=user.username, action="unpublish")
    return {"id": report_id, "published": False, "evidence": []}


def _blurred(sessions: sessionmaker[Session], config: CentralConfig, image: dict[str, Any]) -> dict[str, Any] | None:
    """Blur one stored image (model inference, outside any transaction) and store the result."""
    from central.public import PublicBlurrer  # loads two ONNX models: only when publishing

    with sessions() as s:
        found = queries.evidence_file(s, config.evidence_dir, image["sha256"])
    if found is None or found[1] is None:
        return None
    try:
        data, counts = PublicBlurrer.shared(config).blur_jpeg(found[1].read_bytes())
    except ValueError as e:
        # Bytes that are not a decodable picture (issue 18, defect 10): publishing must not fail for
        # ever on them; that image is left out of the public version (nothing to blur, so nothing
        # safe to show) and the fault is logged. The report page shows it as unreadable.
        log.warning(kv("evidence_unreadable", sha256=image["sha256"], error=str(e), at="publish"))
        return None
    sha = evidence_files.sha256_hex(data)
    rel, _ = evidence_files.store(config.evidence_dir, sha, data)
    with session_scope(sessions) as s:
        queries.add_evidence_row(s, sha, "image/jpeg", len(data), rel)
    return {"kind": image["kind"], "source": image["sha256"], "sha256": sha, "size": len(data), **counts}
