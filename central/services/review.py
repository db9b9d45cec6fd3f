"""The review of a field report, one function per business rule.

confirm -> (forward, when `review.forward_on_confirm`) -> police alert is written once, in
`after_confirm`, and runs whoever confirmed: an operator in the console, or the ingester's
auto-review for the classes configured to skip review. Every change writes its audit row
(`central.workflow.record`) in the caller's transaction, so the status change and the alert in
the outbox commit together or not at all.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
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
from central.storage import open_evidence_storage
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


def undo_window(config: CentralConfig) -> float:
    """Seconds a person's confirmation waits before it forwards and alerts (0: at once). The alert
    dispatcher releases due reports, so where it does not run (alerts off) there is no window."""
    return config.review.undo_seconds if config.alerts.enabled else 0.0


def confirm(s: Session, report: ReportRow, config: CentralConfig, *, user: User, reason: str | None = None) -> None:
    """Recorded at once; forwarding and the police alert wait `review.undo_seconds` (`undo` until
    then), stored as `forward_after` so whichever process releases it, after a restart too, does
    it once (`release_due`)."""
    apply_action(s, report, "confirm", actor=user.username, role=user.role, reason=reason)
    window = undo_window(config)
    if window > 0:
        report.forward_after = utcnow() + timedelta(seconds=window)
    else:
        after_confirm(s, report, config, actor=user.username)


def undo(s: Session, report: ReportRow, config: CentralConfig, *, user: User, reason: str | None = None) -> None:
    """Take back a confirmation inside its undo window: the report is new again, nothing was sent."""
    if user.role not in REVIEWERS:
        raise WorkflowError(403, FORBIDDEN)
    if report.status != "confirmed" or report.forward_after is None:
        raise WorkflowError(409, "nothing to undo: the report is not waiting to be forwarded")
    if utcnow() >= report.forward_after:
        raise WorkflowError(409, "the undo window is over: the report is being forwarded")
    report.forward_after = None
    record(s, report, actor=user.username, action="undo_confirm", to_status="new", note=(reason or "").strip() or None)


def reject(s: Session, report: ReportRow, config: CentralConfig, *, user: User, reason: str | None = None) -> None:
    """Needs a reason (422 without one); a confirmation still in its undo window is not sent."""
    row = apply_action(s, report, "reject", actor=user.username, role=user.role, reason=reason)
    report.forward_after = None
    report.reject_reason = row.note


def forward(s: Session, report: ReportRow, config: CentralConfig, *, user: User, reason: str | None = None) -> None:
    """Forwarding by hand inside the undo window ends the window: the alert goes with it."""
    apply_action(s, report, "forward", actor=user.username, role=user.role, reason=reason)
    if report.forward_after is not None:
        report.forward_after = None
        queue_alert(s, report, config, actor=user.username)


def resolve(s: Session, report: ReportRow, config: CentralConfig, *, user: User, reason: str | None = None) -> None:
    apply_action(s, report, "resolve", actor=user.username, role=user.role, reason=reason)


def reopen(s: Session, report: ReportRow, config: CentralConfig, *, user: User, reason: str | None = None) -> None:
    """Admin only; needs a reason."""
    apply_action(s, report, "reopen", actor=user.username, role=user.role, reason=reason)
    report.reject_reason = None


ACTIONS: dict[str, Callable[..., None]] = {
    "confirm": confirm,
    "undo": undo,
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


def release_due(sessions: sessionmaker[Session], config: CentralConfig, now: datetime | None = None) -> int:
    """Forward and alert every confirmation whose undo window is over; returns how many.

    Each report is claimed by clearing its `forward_after` with a conditional UPDATE in the same
    transaction as the forward and the alert: of two processes (or a release racing an undo, which
    takes the same row lock) exactly one does it, and a crash before the commit leaves it due."""
    now = now or utcnow()
    with sessions() as s:
        due: Sequence[int] = s.scalars(
            select(ReportRow.id).where(ReportRow.forward_after <= now).order_by(ReportRow.forward_after).limit(200)
        ).all()
    released = 0
    for report_id in due:
        with session_scope(sessions) as s:
            claimed = s.execute(
                update(ReportRow)
                .where(ReportRow.id == report_id, ReportRow.forward_after <= now)
                .values(forward_after=None)
                .execution_options(synchronize_session=False)
            ).rowcount  # type: ignore[attr-defined]  # a CursorResult for an UPDATE
            report = s.get(ReportRow, report_id) if claimed else None
            if report is None or report.status != "confirmed":
                continue  # undone, rejected or forwarded by hand meanwhile
            after_confirm(s, report, config, actor=SYSTEM)
            released += 1
            log.info(kv("report_released", report=report_id, status=report.status))
    return released


def bulk_act(
    sessions: sessionmaker[Session],
    config: CentralConfig,
    report_ids: Sequence[int],
    action: str,
    user: User,
    reason: str | None,
) -> list[dict[str, Any]]:
    """One action with one reason on several reports: each in its own transaction with its own
    permission check and audit row, so one refused report does not stop the others."""
    if action not in ("confirm", "reject"):
        raise WorkflowError(422, "bulk actions: confirm or reject")
    if action == "reject" and not (reason or "").strip():
        raise WorkflowError(422, "reject needs a reason")
    results: list[dict[str, Any]] = []
    for report_id in dict.fromkeys(report_ids):  # each once, in the order given
        try:
            report = act(sessions, config, report_id, action, user, reason)
            results.append({"id": report_id, "ok": True, "status": report.status, "error": None})
        except WorkflowError as e:
            results.append({"id": report_id, "ok": False, "status": None, "error": str(e)})
    return results


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

    storage = open_evidence_storage(config)
    with sessions() as s:
        found = queries.evidence_file(s, storage, image["sha256"])
    if found is None or found[1] is None:
        return None
    original = storage.read_bytes(found[1])
    try:
        data, counts = PublicBlurrer.shared(config).blur_jpeg(original)
    except ValueError as e:
        # Bytes that are not a decodable picture (issue 18, defect 10): publishing must not fail for
        # ever on them; that image is left out of the public version (nothing to blur, so nothing
        # safe to show) and the fault is logged. The report page shows it as unreadable.
        log.warning(kv("evidence_unreadable", sha256=image["sha256"], error=str(e), at="publish"))
        return None
    sha = evidence_files.sha256_hex(data)
    rel, _ = storage.put_bytes(sha, data)
    with session_scope(sessions) as s:
        queries.add_evidence_row(s, sha, "image/jpeg", len(data), rel)
    return {"kind": image["kind"], "source": image["sha256"], "sha256": sha, "size": len(data), **counts}
