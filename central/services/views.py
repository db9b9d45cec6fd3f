"""A report as the console and the API show it: `central.reports.report_view` (texts, place, time,
evidence of all its events) plus the operations data (priority, deadline, agency, audit trail)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from central import queries
from central.auth import User
from central.db import ReportRow
from central.reports import ACTION_TEXT, PRIORITY_TEXT, STATUS_TEXT, evidence_url, format_local, report_view
from central.services.access import allowed_actions
from central.workflow import is_overdue
from contract.events import ViolationEvent


def _ops(report: ReportRow, tz: str) -> dict[str, Any]:
    zone = ZoneInfo(tz)

    def ts(value: datetime | None) -> dict[str, Any] | None:
        if value is None:
            return None
        return {"at": value.isoformat(), "vi": format_local(value, zone, "vi"), "en": format_local(value, zone, "en")}

    return {
        "priority": report.priority,
        "priority_text": PRIORITY_TEXT.get(report.priority, {"vi": report.priority, "en": report.priority}),
        "event_count": report.event_count,
        "first_seen": ts(report.first_seen),
        "last_seen": ts(report.last_seen),
        "deadline": ts(report.deadline_at),
        "overdue": is_overdue(report),
        "plate": report.plate,
        "plate_read": _plate_read(report),
        "watch_alerted": report.watch_alerted_at is not None,
        "agency": {"code": report.agency_code, "vi": report.agency_name_vi, "en": report.agency_name_en},
        "incident": report.incident,
        "published": report.published_at is not None,
        "alerted": report.alerted_at is not None,
        # Issue 17 item 7: why it was rejected (lists show it), and until when a confirmation can be undone.
        "reject_reason": report.reject_reason if report.status == "rejected" else None,
        "undo_until": ts(report.forward_after) if report.status == "confirmed" else None,
        "allowed_actions": [],
    }


def _plate_read(report: ReportRow) -> dict[str, Any] | None:
    """The plate as read: text and confidence, or "unreadable" where a read was tried; None when
    no plate was read for this report at all."""
    if report.plate is None and not report.plate_tried:
        return None
    return {
        "text": report.plate or "unreadable",
        "readable": report.plate is not None,
        "confidence": report.plate_confidence if report.plate else None,
        "lines": report.plate_lines if report.plate else None,
        "crop_sha256": report.plate_crop_sha256 if report.plate else None,
    }


def _first_seen_picture(view: dict[str, Any], report: ReportRow, tz: str) -> dict[str, Any] | None:
    """"When it started": the frame an incident or a drop was first seen in (every phase of an
    incident carries the same file) and the report's first time; None when no event has one."""
    pic = next((e for e in view["evidence"] if e["kind"] == "first_seen" and e["available"]), None)
    pic = pic or next((e for e in view["evidence"] if e["kind"] == "first_seen"), None)
    if pic is None:
        return None
    at = report.first_seen
    zone = ZoneInfo(tz)
    return {
        "url": pic["url"] if pic["available"] else None,
        "sha256": pic["sha256"],
        "available": pic["available"],
        "at": {"at": at.isoformat(), "vi": format_local(at, zone, "vi"), "en": format_local(at, zone, "en")} if at else None,
    }


LEADING_EVIDENCE = ("composite", "composite_clean")  # a crossing act's three moments lead the report


def _composite_picture(view: dict[str, Any]) -> dict[str, Any] | None:
    """The crossing act in three moments (edge/composite.py), the report page's first picture,
    with its clean copy; None when no event has one (not a crossing act)."""
    found = {}
    for kind in LEADING_EVIDENCE:
        pics = [e for e in view["evidence"] if e["kind"] == kind]
        found[kind] = next((e for e in pics if e["available"]), pics[0] if pics else None)
    pic, clean = found["composite"], found["composite_clean"]
    if pic is None:
        return None
    return {
        "url": pic["url"] if pic["available"] else None,
        "sha256": pic["sha256"],
        "available": pic["available"],
        "clean_url": clean["url"] if clean is not None and clean["available"] else None,
    }


def _history(s: Session, report_id: int, tz: str) -> list[dict[str, Any]]:
    """The audit trail: machine fields as stored (UTC `at`, action and status ids) and, for people,
    the local time and the Vietnamese/English words (`at_text`, `action_text`, `*_status_text`)."""
    zone = ZoneInfo(tz)

    def words(table: dict[str, dict[str, str]], key: str | None) -> dict[str, str] | None:
        return None if key is None else table.get(key, {"vi": key, "en": key})

    return [
        {
            "at": h.at.isoformat(),
            "at_text": {"vi": format_local(h.at, zone, "vi"), "en": format_local(h.at, zone, "en")},
            "actor": h.actor,
            "action": h.action,
            "action_text": words(ACTION_TEXT, h.action),
            "from_status": h.from_status,
            "from_status_text": words(STATUS_TEXT, h.from_status),
            "to_status": h.to_status,
            "to_status_text": words(STATUS_TEXT, h.to_status),
            "note": h.note,
        }
        for h in queries.report_history(s, report_id)
    ]


def build_views(
    s: Session,
    reports: Sequence[ReportRow],
    base_url: str,
    tz: str,
    *,
    history: bool = False,
    secret: bytes | None = None,
) -> list[dict[str, Any]]:
    """One view per report. `base_url` "" gives relative links (a page works under any host name)."""
    best_ids = [r.best_event_id or r.event_id for r in reports]
    payloads = queries.event_payloads(s, best_ids)
    all_evidence = queries.evidence_by_report(s, [r.id for r in reports])
    available = queries.available_evidence(s, {e.sha256 for refs in all_evidence.values() for e in refs})
    suspect = queries.clock_suspect_reports(s, [r.id for r in reports])
    views = []
    for report, best_id in zip(reports, best_ids, strict=True):
        best = ViolationEvent.model_validate(payloads[best_id])
        # The report shows all its events' evidence, the best event's first.
        refs = list(best.evidence) + [e for e in all_evidence[report.id] if e not in best.evidence]
        best = best.model_copy(update={"evidence": refs})
        view = report_view(report, best, available_evidence=available, base_url=base_url, tz=tz, secret=secret)
        view.update(_ops(report, tz))
        view["clock_suspect"] = report.id in suspect  # an event's time is in doubt (the edge's clock)
        clip = next((e for e in view["evidence"] if e["kind"] == "clip" and e["available"]), None)
        view["clip_url"] = clip["url"] if clip else None
        view["first_seen_picture"] = _first_seen_picture(view, report, tz)
        view["evidence"].sort(key=lambda e: e["kind"] not in LEADING_EVIDENCE)  # stable: the rest keep their order
        view["composite_picture"] = _composite_picture(view)
        if history:
            view["history"] = _history(s, report.id, tz)
        views.append(view)
    return views


def report_detail(
    s: Session, report: ReportRow, user: User | None, base_url: str, tz: str, secret: bytes | None
) -> dict[str, Any]:
    """One report with its audit trail and the actions `user` may take (none for a share link)."""
    view = build_views(s, [report], base_url, tz, history=True, secret=secret)[0]
    view["allowed_actions"] = allowed_actions(user, report) if user else []
    return view


def public_view(s: Session, report: ReportRow, tz: str, secret: bytes | None) -> dict[str, Any]:
    """The anonymised version: nothing that identifies anyone (no plate text, no objects, no
    original evidence), only the images blurred when the report was published."""
    v = build_views(s, [report], "", tz, secret=secret)[0]
    blurred = report.public_evidence or []
    return {
        "id": report.id,
        "title": v["title"],
        "category": v["category"],
        "status": v["status"],
        "place": {k: v["place"][k] for k in ("ward", "district", "address", "lat", "lon", "text")},
        "time": v["time"],
        "first_seen": v["first_seen"],
        "event_count": v["event_count"],
        "agency": v["agency"],
        "images": [
            {"kind": b["kind"], "url": evidence_url("", b["sha256"], secret), "sha256": b["sha256"]} for b in blurred
        ],
        "published_at": report.published_at.isoformat() if report.published_at else None,
    }
