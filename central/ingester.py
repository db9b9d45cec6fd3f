"""The ingester: MQTT (v5, QoS 1, shared subscription) -> validated, idempotent rows in the database.

Delivery guarantee: a message is acknowledged to the broker only after the transaction that stored
it (or its dead letter) committed. If central dies in between, the broker redelivers it, and the
event id (primary key + ON CONFLICT DO NOTHING) makes the second store a counted duplicate.

Threads: paho's network thread only puts messages on a queue (it must never wait on the database,
or keep-alives stop); one worker thread processes them in order and acks them. Under load the
worker takes everything queued (up to `batch_max`) and stores it in one transaction per kind:
the batch's evidence files (each file written and verified first, then all their rows), its node
status and camera health (coalesced: one write per node and per camera), its events. One commit
per batch, not per message, is what lets one process store thousands of messages a second. Every
message is acked after the commit of its transaction; one the database refuses is found by
bisecting its batch and dead-lettered alone.

Node status and camera health: what is stored for a node (a camera) is its newest message by the
message's own time (`at`); one older than what is stored is acked and counted (`status_stale`)
but overwrites nothing (a redelivery after a reconnect, or a second ingester that got the older of
two). Where either has no time (a last will, an older node's message, an empty retained message,
which forgets the row), the later arrival wins, as it always did.

Locks (PostgreSQL, two or more ingesters): every transaction writes its rows in one order (by
primary key), and an event batch takes its groups' locks before it writes a row, so that
overlapping batches queue behind each other instead of deadlocking.
"""

from __future__ import annotations

import itertools
import json
import logging
import queue
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal, TextIO
from zoneinfo import ZoneInfo

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from pydantic import ValidationError
from sqlalchemy import delete, select, tuple_
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from central import evidence as evidence_files
from central import evidence_hold, watch_list
from central.auth import share_ref, share_secret
from central.config import CentralConfig
from central.db import (
    CameraHealthRow,
    DeadLetterRow,
    EventEvidenceRow,
    EventRow,
    EvidenceRow,
    NodeStatusRow,
    dialect_insert,
    insert_new_events,
    make_engine,
    make_session_factory,
    session_scope,
    utcnow,
)
from central.grouping import attach_events, lock_groups, refresh_best_texts
from central.logs import kv
from central.reports import ReportTemplates, default_templates, report_url
from central.services import health, review
from central.services.metrics import dead_letter_class
from central.storage import open_evidence_storage
from central.workflow import RoutingTable, load_routing
from contract.events import EventTooLarge, ViolationEvent, merge_republished
from contract.mqtt import MqttClient, SubscribeResult
from contract.topics import ParsedTopic, ingest_subscriptions, parse_topic

log = logging.getLogger(__name__)

DEAD_LETTER_MAX_PAYLOAD = 1024 * 1024  # keep a bad 200 MB "evidence" out of the database
_CONFLICT = "event id already stored with other content (only evidence may be added by a re-publish)"
_PERMANENT_DB_ERROR_RETRIES = 3  # then a message the database rejects is dead-lettered


OutcomeKind = Literal["stored", "duplicate", "amended", "dead_letter", "evidence_stored", "evidence_duplicate", "status"]
EVIDENCE_STORE_FAILED = "evidence store unwritable"  # the dead-letter reason's start
_EXPIRE_HELD_EVERY_S = 60.0
# A stored status whose own time is more than this ahead of central's clock holds no place: the
# node's clock ran ahead and was set right; its next (truthful) messages must not all be "older".
_STATUS_CLOCK_SLACK = timedelta(seconds=30)
_STATUS_ROWS_KNOWN_MAX = 1_000_000  # node status + camera health rows remembered as stored


@dataclass(frozen=True)
class Outcome:
    kind: OutcomeKind
    reason: str | None = None
    event: ViolationEvent | None = None
    report_id: int | None = None
    sha256: str | None = None
    report_created: bool = False
    share_ref: str | None = None
    clock_suspect: bool = False
    held: bool = False  # evidence stored in the holding area: no stored event refers to it yet
    stale: bool = False  # a status/health message older than what is stored: acked, not written


@dataclass
class IngestCounters:
    """What the ingester did since it started (read by tests and /healthz)."""

    received: int = 0
    stored: int = 0
    duplicates: int = 0
    amended: int = 0  # stored events that gained evidence (the re-publish with the clip)
    dead_letters: int = 0
    evidence_stored: int = 0
    evidence_held: int = 0  # of evidence_stored: held, no event referred to it yet (central.evidence_hold)
    evidence_duplicates: int = 0
    evidence_store_failures: int = 0  # writes to the evidence store that failed (disk full, read-only)
    evidence_store_failing: int = 0  # 1 while the last evidence write failed: health says so
    clock_suspect: int = 0  # events stored with a time outside the sane window around their arrival
    status_updates: int = 0
    status_invalid: int = 0  # claimed the typed status contract and broke it (stored, logged)
    status_stale: int = 0  # status/health older (by its own time) than the stored one: not written
    db_errors: int = 0
    acked: int = 0
    batches: int = 0  # event transactions (one per batch of event messages)
    status_batches: int = 0  # status/health transactions (one per batch of them)
    evidence_batches: int = 0  # evidence transactions (one per batch of MQTT evidence messages)
    _dead_letter_classes: dict[str, int] = field(default_factory=dict, repr=False, compare=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, name: str, n: int = 1) -> None:
        with self._lock:
            setattr(self, name, getattr(self, name) + n)

    def dead_letter(self, reason: str | None) -> None:
        cls = dead_letter_class(reason)
        with self._lock:
            self.dead_letters += 1
            self._dead_letter_classes[cls] = self._dead_letter_classes.get(cls, 0) + 1

    def dead_letter_classes(self) -> dict[str, int]:
        """Dead letters by reason class (`central.services.metrics.dead_letter_class`)."""
        with self._lock:
            return dict(self._dead_letter_classes)

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return {k: v for k, v in vars(self).items() if not k.startswith("_")}


class InvalidMessage(Exception):
    """The message can never be stored: it goes to dead_letters with this reason."""


def summarise_validation_error(err: ValidationError, limit: int = 4) -> str:
    """pydantic's errors in one line: 'schema: Input should be ...; started_at: Field required'."""
    parts = []
    for e in err.errors(include_url=False)[:limit]:
        loc = ".".join(str(p) for p in e["loc"]) or "(event)"
        got = "" if e["type"] == "missing" else f" (got {_short(e.get('input'))})"
        parts.append(f"{loc}: {e['msg']}{got}")
    more = err.error_count() - limit
    return "; ".join(parts) + (f"; (+{more} more)" if more > 0 else "")


def _short(value: Any, n: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= n else text[: n - 3] + "..."


def _clean_text(text: str) -> str:
    # PostgreSQL text cannot hold NUL; a reason quoting a hostile payload might.
    return text.replace("\x00", "\\x00")


def _dead_letter_row(topic: str, payload: bytes, reason: str, received_at: datetime) -> DeadLetterRow:
    if len(payload) > DEAD_LETTER_MAX_PAYLOAD:
        reason += f" [payload truncated from {len(payload)} bytes]"
        payload = payload[:DEAD_LETTER_MAX_PAYLOAD]
    return DeadLetterRow(topic=_clean_text(topic), payload=payload, reason=_clean_text(reason), received_at=received_at)


@dataclass(frozen=True)
class ClockWindow:
    """An event time more than `future` after its arrival or `past` before it is suspect: the
    edge's clock is wrong (or the event waited very long in an outbox). Stored and flagged, never
    dropped: the violation may be real, only its time is in doubt."""

    future: timedelta
    past: timedelta

    @classmethod
    def of(cls, config: CentralConfig) -> ClockWindow:
        return cls(timedelta(seconds=config.limits.clock_future_s), timedelta(days=config.limits.clock_past_days))

    def suspect(self, event: ViolationEvent, received_at: datetime) -> bool:
        times = [event.started_at, event.ended_at, *([event.detected_at] if event.detected_at else [])]
        return any(t > received_at + self.future or t < received_at - self.past for t in times)


def _event_row(event: ViolationEvent, received_at: datetime, clock_suspect: bool = False) -> dict[str, Any]:
    return {
        "id": event.id,
        "node": event.node,
        "camera": event.camera,
        "type": event.type.value,
        "category": event.category.value,
        "phase": event.phase,
        "started_at": event.started_at,
        "ended_at": event.ended_at,
        "confidence": event.confidence,
        "zone_id": event.zone.id if event.zone else None,
        "payload": event.model_dump_json(by_alias=True),
        "received_at": received_at,
        "clock_suspect": clock_suspect,
    }


def decode_event(topic: ParsedTopic, payload: bytes) -> ViolationEvent:
    """Validate an event message against its topic; raises InvalidMessage with a clear reason."""
    try:
        payload.decode("utf-8")
    except UnicodeDecodeError as e:
        raise InvalidMessage(f"not UTF-8/JSON: payload is not valid UTF-8 ({e.reason} at byte {e.start})") from None
    try:
        event = ViolationEvent.from_json(payload)
    except EventTooLarge as e:
        raise InvalidMessage(f"invalid event: too large: {e}") from None
    except ValidationError as e:
        errors = e.errors(include_url=False)
        if errors and errors[0]["type"] == "json_invalid":
            raise InvalidMessage(f"not UTF-8/JSON: {errors[0]['msg']}") from None
        raise InvalidMessage(f"invalid event: {summarise_validation_error(e)}") from None
    if event.node != topic.node:
        raise InvalidMessage(f"topic/payload node mismatch: topic node {topic.node!r}, payload node {event.node!r}")
    if event.camera != topic.camera:
        raise InvalidMessage(
            f"topic/payload camera mismatch: topic camera {topic.camera!r}, payload camera {event.camera!r}"
        )
    if event.type.value != topic.leaf:
        raise InvalidMessage(
            f"topic/payload type mismatch: topic type {topic.leaf!r}, payload type {event.type.value!r}"
        )
    return event


def _decode_json_or_text(payload: bytes) -> Any:
    """Status/health payloads: JSON, or a bare word such as a last will 'offline'."""
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidMessage("not UTF-8/JSON: status payload is not valid UTF-8") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text.strip()


class MessageProcessor:
    """Turns one MQTT message into one database transaction. No MQTT here: testable on its own."""

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        *,
        dialect_name: str,
        evidence_dir: Path,
        topic_prefix: str,
        templates: ReportTemplates | None = None,
        tz: str = "Asia/Ho_Chi_Minh",
        config: CentralConfig | None = None,
        routing: RoutingTable | None = None,
    ) -> None:
        self.sessions = session_factory
        self.insert = dialect_insert(dialect_name)
        self.evidence_dir = evidence_dir
        self.prefix = topic_prefix
        self.templates = templates or default_templates()
        self.tz = ZoneInfo(tz)
        self.config = config or CentralConfig()
        self.routing = routing or load_routing(self.config.reports.routing_file)
        self._share_secret: bytes | None = None
        self.dialect_name = dialect_name
        self.clock = ClockWindow.of(self.config)
        self.evidence_limits = evidence_hold.EvidenceLimits.of(self.config)
        # the config's store (local: the files under `evidence_dir`; s3: a bucket, staged there)
        self.storage = open_evidence_storage(self.config, evidence_dir)
        self._held_expired_at = 0.0
        # Status/health rows this process saw committed: their batches skip the INSERT step (a
        # row deleted since, by another ingester, is written by the upsert all the same).
        self._status_rows: set[tuple[str, tuple[str, ...]]] = set()

    def expire_held(self, force: bool = False) -> int:
        """Remove held evidence whose time is up (at most once a minute unless `force`)."""
        if not force and time.monotonic() - self._held_expired_at < _EXPIRE_HELD_EVERY_S:
            return 0
        self._held_expired_at = time.monotonic()
        return evidence_hold.expire_held(self.sessions, self.storage)

    def process(self, topic: str, payload: bytes, received_at: datetime | None = None) -> Outcome:
        """Store the message; raises SQLAlchemyError/OSError when it could not (retry later)."""
        received_at = received_at or utcnow()
        parsed = parse_topic(self.prefix, topic)
        try:
            if parsed is None:
                raise InvalidMessage("unknown topic (not in the ingest topic tree)")
            if parsed.kind == "event":
                return self.process_events([(topic, payload, received_at)])[0]
            if parsed.kind == "evidence":
                return self.process_evidence([(topic, payload, received_at)])[0]
            return self.process_status([(topic, payload, received_at)])[0]
        except InvalidMessage as e:
            return self.dead_letter(topic, payload, str(e), received_at)

    def dead_letter(self, topic: str, payload: bytes, reason: str, received_at: datetime | None = None) -> Outcome:
        row = _dead_letter_row(topic, payload, reason, received_at or utcnow())
        with session_scope(self.sessions) as s:
            s.add(row)
        return Outcome("dead_letter", reason=row.reason)

    def is_event_topic(self, topic: str) -> bool:
        return self.kind_of(topic) == "event"

    def kind_of(self, topic: str) -> str | None:
        """"event", "evidence", "status" (node status and camera health) or None (not ours)."""
        parsed = parse_topic(self.prefix, topic)
        if parsed is None:
            return None
        return "status" if parsed.kind == "health" else parsed.kind

    def process_events(self, messages: list[tuple[str, bytes, datetime]], *, per_row: bool = False) -> list[Outcome]:
        """Store a batch of event messages (topic, payload, received_at) in ONE transaction.

        One outcome per message, in order: stored, duplicate (already stored, or twice in this
        batch) or dead_letter (invalid; its dead-letter row commits with the batch). Raises
        SQLAlchemyError/OSError when the batch could not be stored: nothing of it was.

        `per_row`: each event row is inserted in a savepoint of its own, and a row the database
        refuses (permanently) is dead-lettered in the same transaction: the batch the database
        rejected is redone once, not message by message.
        """
        outcomes: list[Outcome | None] = [None] * len(messages)
        dead: list[DeadLetterRow] = []
        fresh: dict[str, tuple[int, ViolationEvent, datetime]] = {}  # first message of each id
        copies: dict[str, list[tuple[int, str, bytes, datetime]]] = {}  # every message of it
        for i, (topic, payload, received_at) in enumerate(messages):
            parsed = parse_topic(self.prefix, topic)
            try:
                if parsed is None or parsed.kind != "event":
                    raise InvalidMessage("unknown topic (not in the ingest topic tree)")
                event = decode_event(parsed, payload)
            except InvalidMessage as e:
                dead.append(_dead_letter_row(topic, payload, str(e), received_at))
                outcomes[i] = Outcome("dead_letter", reason=dead[-1].reason)
                continue
            copies.setdefault(event.id, []).append((i, topic, payload, received_at))
            if event.id not in fresh:
                fresh[event.id] = (i, event, received_at)
                continue
            # The same id again in this batch: a redelivery, or the re-publish with the clip.
            j, first, at = fresh[event.id]
            merged = merge_republished(first, event)
            if merged is None:
                dead.append(_dead_letter_row(topic, payload, _CONFLICT, received_at))
                outcomes[i] = Outcome("dead_letter", reason=_CONFLICT)
            else:
                fresh[event.id] = (j, merged, at)
                outcomes[i] = Outcome("duplicate" if merged == first else "amended", event=event)
        with session_scope(self.sessions) as s:
            # Every group this batch may touch is locked first (new events grow reports,
            # re-publishes rewrite their texts), then rows are written in id order: two ingesters
            # with overlapping batches queue, they do not deadlock.
            lock_groups(s, [e for _i, e, _at in fresh.values()])
            # The unique key decides, not a prior SELECT: two ingesters racing on one id both
            # succeed, one inserts it and the other does not get it back.
            suspect = {e.id for _i, e, at in fresh.values() if self.clock.suspect(e, at)}
            if per_row:
                inserted = self._insert_rows_apart(s, fresh, copies, outcomes, dead, suspect)
            else:
                inserted = insert_new_events(
                    s, [_event_row(e, at, e.id in suspect) for _i, e, at in sorted(fresh.values(), key=lambda f: f[1].id)]
                )
            new = [(i, e) for i, e, _at in fresh.values() if e.id in inserted]
            refs = [(ev.sha256, e.id) for _i, e in new for ev in e.evidence]
            # Ids already stored: a redelivery (nothing to do) or a re-publish that adds evidence.
            known = [(i, e) for i, e, _at in fresh.values() if e.id not in inserted]
            for (i, event), merged in zip(known, self._amend(s, [e for _i, e in known]), strict=True):
                if merged is None:
                    # Conflicts with what is stored: every message of this id in the batch is suspect.
                    for k, topic, payload, at in copies[event.id]:
                        if outcomes[k] is not None and outcomes[k].kind == "dead_letter":
                            continue  # already dead-lettered in the batch
                        dead.append(_dead_letter_row(topic, payload, _CONFLICT, at))
                        outcomes[k] = Outcome("dead_letter", reason=_CONFLICT)
                else:
                    # Judged against what is stored: the batch's copies together amended it, or not.
                    outcomes[i] = Outcome("amended" if merged else "duplicate", event=event)
                    refs += [(ev.sha256, event.id) for ev in event.evidence]
                    for k, *_ in copies[event.id][1:]:
                        if outcomes[k] is not None and outcomes[k].kind == "amended":
                            outcomes[k] = Outcome("duplicate", event=outcomes[k].event)
            s.add_all(dead)
            # Files these events refer to: no longer held (they may also arrive later).
            evidence_hold.claim(s, refs)
            attached = attach_events(
                s, [e for _i, e in new], config=self.config, routing=self.routing, templates=self.templates, tz=self.tz
            )
            for a in attached:
                if a.created:  # configured classes skip the operator; configured types alert at once
                    review.auto_review(s, a.report, self.config)
            # A watched plate, any rule: police are alerted at once (once per report).
            watch_list.alert_sightings(s, [(e, a.report) for (_i, e), a in zip(new, attached, strict=True)], self.config)
            if new and self._share_secret is None:
                self._share_secret = share_secret(s, self.config.auth.share_link_secret)
            report_ids = [a.report.id for a in attached]
        for (i, event), a, report_id in zip(new, attached, report_ids, strict=True):
            outcomes[i] = Outcome(
                "stored",
                event=event,
                report_id=report_id,
                report_created=a.created,
                share_ref=share_ref(self._share_secret, report_id) if self._share_secret else None,
                clock_suspect=event.id in suspect,
            )
        return [o for o in outcomes if o is not None]

    def _insert_rows_apart(
        self,
        s: Session,
        fresh: dict[str, tuple[int, ViolationEvent, datetime]],
        copies: dict[str, list[tuple[int, str, bytes, datetime]]],
        outcomes: list[Outcome | None],
        dead: list[DeadLetterRow],
        suspect: set[str],
    ) -> set[str]:
        inserted: set[str] = set()
        for event_id, (_i, event, at) in sorted(fresh.items()):
            try:
                with s.begin_nested():
                    inserted |= insert_new_events(s, [_event_row(event, at, event_id in suspect)])
            except SQLAlchemyError as e:
                if _transient(e):
                    raise
                reason = f"database rejected the message: {type(e).__name__}: {str(e).splitlines()[0][:300]}"
                del fresh[event_id]
                for k, topic, payload, received in copies[event_id]:
                    if outcomes[k] is not None and outcomes[k].kind == "dead_letter":
                        continue  # already dead-lettered in the batch (a conflicting copy)
                    dead.append(_dead_letter_row(topic, payload, reason, received))
                    outcomes[k] = Outcome("dead_letter", reason=dead[-1].reason)
        return inserted

    def _amend(self, s: Session, events: list[ViolationEvent]) -> list[bool | None]:
        """Merge events whose id is stored into the stored ones (`merge_republished`): per event,
        True if the stored event gained evidence, False if nothing changed, None on a conflict."""
        if not events:
            return []
        # FOR UPDATE: two ingesters merging the two halves of one event must not lose either.
        rows = {
            r.id: r
            for r in s.scalars(
                select(EventRow)
                .where(EventRow.id.in_([e.id for e in events]))
                .order_by(EventRow.id)  # locked in id order (no deadlock with another ingester)
                .with_for_update()
            )
        }
        out: list[bool | None] = []
        changed: list[ViolationEvent] = []
        for event in events:
            try:
                stored = ViolationEvent.model_validate(rows[event.id].payload)
            except ValidationError:
                # Stored before the contract's limits (e.g. an oversized `details`): nothing may be
                # merged into it; the re-publish is dead-lettered as a conflict, not a crash.
                out.append(None)
                continue
            merged = merge_republished(stored, event)
            if merged is None or merged == stored:
                out.append(None if merged is None else False)
                continue
            rows[event.id].payload = json.loads(merged.model_dump_json(by_alias=True))
            changed.append(merged)
            out.append(True)
        refresh_best_texts(s, changed, templates=self.templates, tz=self.tz)
        return out

    def _check_evidence(self, parsed: ParsedTopic, payload: bytes) -> tuple[str, str]:
        """The checks that need no database (topic, size, hash, media type): (sha256, media type)."""
        sha = parsed.leaf or ""
        if not evidence_files.is_sha256(sha):
            raise InvalidMessage("evidence topic leaf is not a lowercase sha256 hex digest")
        if not payload:
            raise InvalidMessage("evidence payload is empty")
        limits = self.evidence_limits
        if len(payload) > limits.mqtt_max_bytes:
            raise InvalidMessage(
                f"evidence too large: {len(payload)} bytes over MQTT; the limit is {limits.mqtt_max_bytes} "
                "(limits.evidence_mqtt_max_mb; clips go over HTTP)"
            )
        actual = evidence_files.sha256_hex(payload)
        if actual != sha:
            raise InvalidMessage(f"evidence sha256 mismatch: topic {sha[:16]}…, payload hashes to {actual[:16]}…")
        media_type = evidence_files.sniff_media_type(payload)
        try:
            evidence_hold.check_media_type(limits, media_type)
        except evidence_hold.EvidenceRefused as e:
            raise InvalidMessage(e.reason) from None
        return sha, media_type

    def process_evidence(self, messages: list[tuple[str, bytes, datetime]]) -> list[Outcome]:
        """Store a batch of MQTT evidence messages (topic, payload, received_at): each file written
        and verified (hash, atomic rename, idempotent) as before, then all their rows, and the
        batch's dead letters, in ONE transaction. One outcome per message, in order. Raises
        SQLAlchemyError/OSError when the rows could not be stored (the files written stay: a
        redelivery finds them and writes only the rows)."""
        outcomes: list[Outcome | None] = [None] * len(messages)
        dead: list[DeadLetterRow] = []
        first: dict[str, tuple[int, str, bytes, str, datetime]] = {}  # sha -> its first message here
        again: dict[str, list[tuple[int, str, bytes, datetime]]] = {}  # sha -> its later copies here
        refused: dict[str, str] = {}  # sha -> why its first copy was dead-lettered
        for i, (topic, payload, received_at) in enumerate(messages):
            parsed = parse_topic(self.prefix, topic)
            try:
                if parsed is None or parsed.kind != "evidence":
                    raise InvalidMessage("unknown topic (not in the ingest topic tree)")
                sha, media_type = self._check_evidence(parsed, payload)
            except InvalidMessage as e:
                dead.append(_dead_letter_row(topic, payload, str(e), received_at))
                outcomes[i] = Outcome("dead_letter", reason=dead[-1].reason)
                continue
            if sha in first:  # the same file twice in one batch (a redelivery): as the first fares
                again.setdefault(sha, []).append((i, topic, payload, received_at))
                continue
            first[sha] = (i, topic, payload, media_type, received_at)
        limits = self.evidence_limits
        rows: list[dict[str, Any]] = []
        if first:
            # What `evidence_hold.admit` reads per file, once for the batch.
            shas = sorted(first)
            with self.sessions() as s:
                stored = s.execute(select(EvidenceRow.sha256, EvidenceRow.size).where(EvidenceRow.sha256.in_(shas)))
                sizes: dict[str, int] = {sha: size for sha, size in stored}
                referenced = set(
                    s.scalars(select(EventEvidenceRow.sha256).where(EventEvidenceRow.sha256.in_(shas)).distinct())
                )
                held = evidence_hold.held_bytes(s)
            for sha, (i, topic, payload, media_type, received_at) in first.items():
                if sha in sizes and self.storage.exists(sha, sizes[sha]):
                    outcomes[i] = Outcome("evidence_duplicate", sha256=sha)
                    continue
                held_until = None
                if sha not in referenced:
                    try:
                        held_until = evidence_hold.hold_until(limits, held, len(payload), received_at)
                    except evidence_hold.EvidenceRefused as e:
                        refused[sha] = e.reason
                        dead.append(_dead_letter_row(topic, payload, e.reason, received_at))
                        outcomes[i] = Outcome("dead_letter", reason=dead[-1].reason)
                        continue
                    held += len(payload)
                # File first, row second: a row always points at a complete file; a crash in
                # between leaves a file without a row, which the redelivered message completes.
                try:
                    rel, _ = self.storage.put_bytes(sha, payload)
                except OSError as e:
                    # Disk full, read-only, gone: retrying would stall every message behind this one
                    # (one worker, in order). The bytes go to the dead letter (up to
                    # DEAD_LETTER_MAX_PAYLOAD) and the ingester carries on; `evidence_store_failing`
                    # in /healthz says the store is failing.
                    reason = refused[sha] = f"{EVIDENCE_STORE_FAILED}: {type(e).__name__}: {e}"
                    dead.append(_dead_letter_row(topic, payload, reason, received_at))
                    outcomes[i] = Outcome("dead_letter", reason=dead[-1].reason)
                    continue
                rows.append(
                    {
                        "sha256": sha,
                        "media_type": media_type,
                        "size": len(payload),
                        "path": rel,
                        "received_at": received_at,
                        "held_until": held_until,
                    }
                )
        # A file's later copies in the batch fare as one at a time would: a duplicate of the file
        # stored (or being stored now), or refused for the first copy's reason.
        for sha, copies in again.items():
            for i, topic, payload, received_at in copies:
                if sha in refused:
                    dead.append(_dead_letter_row(topic, payload, refused[sha], received_at))
                    outcomes[i] = Outcome("dead_letter", reason=dead[-1].reason)
                else:
                    outcomes[i] = Outcome("evidence_duplicate", sha256=sha)
        inserted: set[str] = set()
        with session_scope(self.sessions) as s:
            if rows:
                rows.sort(key=lambda r: r["sha256"])  # rows in key order: no deadlock with another ingester
                inserted = set(
                    s.scalars(
                        self.insert(EvidenceRow)
                        .values(rows)
                        .on_conflict_do_nothing(index_elements=["sha256"])
                        .returning(EvidenceRow.sha256)
                    )
                )
            s.add_all(dead)
        for row in rows:
            sha = row["sha256"]
            i = first[sha][0]
            if sha in inserted:
                outcomes[i] = Outcome("evidence_stored", sha256=sha, held=row["held_until"] is not None)
            else:  # another ingester stored it meanwhile
                outcomes[i] = Outcome("evidence_duplicate", sha256=sha)
        return [o for o in outcomes if o is not None]

    def process_status(self, messages: list[tuple[str, bytes, datetime]]) -> list[Outcome]:
        """Store a batch of node status and camera health messages (topic, payload, received_at) in
        ONE transaction, with one write per node (camera): the newest message wins (`_supersedes`),
        and the result is what storing them one at a time, in order, stores. One outcome per
        message, in order (`stale`: older than what is stored, not written). Raises
        SQLAlchemyError/OSError when the batch could not be stored: nothing of it was."""
        outcomes: list[Outcome | None] = [None] * len(messages)
        dead: list[DeadLetterRow] = []
        typed: dict[int, str] = {}
        said: dict[type[NodeStatusRow] | type[CameraHealthRow], dict[tuple[str, ...], list[tuple[int, _Said | None]]]] = {
            NodeStatusRow: {},
            CameraHealthRow: {},
        }
        for i, (topic, payload, received_at) in enumerate(messages):
            parsed = parse_topic(self.prefix, topic)
            try:
                if parsed is None or parsed.kind not in ("status", "health"):
                    raise InvalidMessage("unknown topic (not in the ingest topic tree)")
                if parsed.kind == "status":
                    model: type[NodeStatusRow] | type[CameraHealthRow] = NodeStatusRow
                    key: tuple[str, ...] = (parsed.node,)
                    names: dict[str, str] = {"node": parsed.node}
                else:
                    model, key = CameraHealthRow, (parsed.node, parsed.camera or "")
                    names = {"node": parsed.node, "camera": parsed.camera or ""}
                item: _Said | None = None  # an empty retained message clears the topic: forget the row too
                if payload:
                    value = _decode_json_or_text(payload)
                    # Typed (contract.status) or an older node's untyped dict: stored as received
                    # either way; one that claims the contract and breaks it is logged, never fatal.
                    typed[i] = health.check_status("status" if parsed.kind == "status" else "health", value, **names)
                    item = _Said(value, _said_at(value), received_at)
            except InvalidMessage as e:
                dead.append(_dead_letter_row(topic, payload, str(e), received_at))
                outcomes[i] = Outcome("dead_letter", reason=dead[-1].reason)
                continue
            said[model].setdefault(key, []).append((i, item))
        stale: set[int] = set()
        present: set[tuple[str, tuple[str, ...]]] = set()
        absent: set[tuple[str, tuple[str, ...]]] = set()
        with session_scope(self.sessions) as s:
            for model, by_key in said.items():
                if by_key:
                    stale |= self._write_status(s, model, by_key, present, absent)
            s.add_all(dead)
        if len(self._status_rows) > _STATUS_ROWS_KNOWN_MAX:
            self._status_rows.clear()
        self._status_rows = (self._status_rows | present) - absent
        for i in typed:
            outcomes[i] = Outcome("status", reason=typed[i], stale=i in stale)
        return [o if o is not None else Outcome("status") for o in outcomes]

    def _write_status(
        self,
        s: Session,
        model: type[NodeStatusRow] | type[CameraHealthRow],
        by_key: dict[tuple[str, ...], list[tuple[int, _Said | None]]],
        present: set[tuple[str, tuple[str, ...]]],
        absent: set[tuple[str, tuple[str, ...]]],
    ) -> set[int]:
        """One table's writes for a batch; returns the messages found stale, and adds to
        `present`/`absent` the rows there are (are not) once it commits. Rows are written and
        locked in key order, new rows first (INSERT ... ON CONFLICT DO NOTHING, for the keys this
        process has not seen stored), then the stored ones (SELECT ... ORDER BY key FOR UPDATE,
        then one upsert and one delete): two ingesters writing the same nodes queue on them in one
        order, never in a cycle."""
        table = model.__tablename__
        cols = [model.node] if model is NodeStatusRow else [model.node, model.camera]  # type: ignore[union-attr]
        names = [c.key for c in cols]
        keys = sorted(by_key)
        stale: set[int] = set()
        # Where no row is stored yet, the batch alone decides: insert that (a row another
        # ingester stored meanwhile is left to the second step).
        alone = {k: _fold(None, by_key[k]) for k in keys}
        new_rows = [
            {**dict(zip(names, k, strict=True)), "payload": r.payload, "updated_at": r.received_at}
            for k in keys
            if (r := alone[k][0]) is not None and (table, k) not in self._status_rows
        ]
        inserted: set[tuple[str, ...]] = set()
        if new_rows:
            stmt = self.insert(model).values(new_rows).on_conflict_do_nothing(index_elements=names).returning(*cols)
            inserted = {tuple(r) for r in s.execute(stmt)}
        for k in inserted:
            stale |= alone[k][1]
            present.add((table, k))
        rest = [k for k in keys if k not in inserted]
        if not rest:
            return stale
        key_of = cols[0] if len(cols) == 1 else tuple_(*cols)
        values_of: Callable[[list[tuple[str, ...]]], list[Any]] = (
            (lambda ks: [k[0] for k in ks]) if len(cols) == 1 else (lambda ks: list(ks))
        )
        stored = {
            tuple(r[: len(cols)]): _Said(r.payload, _said_at(r.payload), r.updated_at)
            for r in s.execute(
                select(*cols, model.payload, model.updated_at)
                .where(key_of.in_(values_of(rest)))
                .order_by(*cols)
                .with_for_update()
            )
        }
        upserts: list[dict[str, Any]] = []
        gone: list[tuple[str, ...]] = []
        for k in rest:
            old = stored.get(k)
            result, late = _fold(old, by_key[k])
            stale |= late
            (absent if result is None else present).add((table, k))
            if result is old:
                continue
            if result is None:
                gone.append(k)
            else:
                upserts.append({**dict(zip(names, k, strict=True)), "payload": result.payload, "updated_at": result.received_at})
        if upserts:
            ins = self.insert(model).values(upserts)
            s.execute(
                ins.on_conflict_do_update(
                    index_elements=names, set_={"payload": ins.excluded.payload, "updated_at": ins.excluded.updated_at}
                )
            )
        if gone:
            s.execute(delete(model).where(key_of.in_(values_of(gone))))
        return stale


@dataclass(frozen=True)
class _Said:
    """A status/health message's content, its own time (`at`, None: a last will or an untyped
    message without one) and when central received it (a stored row: `updated_at`)."""

    payload: Any
    at: datetime | None
    received_at: datetime


def _said_at(value: Any) -> datetime | None:
    at = value.get("at") if isinstance(value, dict) else None
    if not isinstance(at, str):
        return None
    try:
        t = datetime.fromisoformat(at)
    except ValueError:
        return None
    return t if t.tzinfo is not None else None


def _supersedes(new: _Said, old: _Said | None) -> bool:
    """Whether `new` replaces `old` as what is stored for its node (camera): by the messages' own
    times where both have one; otherwise (a last will, an older node's message) the later arrival,
    as before. A stored time ahead of central's clock (by more than _STATUS_CLOCK_SLACK) is not
    trusted: the node's clock ran ahead, and once set right its messages would all look older."""
    if old is None or new.at is None or old.at is None:
        return True
    if old.at > new.received_at + _STATUS_CLOCK_SLACK:
        return True
    return new.at >= old.at


def _fold(stored: _Said | None, said: list[tuple[int, _Said | None]]) -> tuple[_Said | None, set[int]]:
    """What storing these messages one at a time, in order, over `stored` leaves (None: no row),
    and which of them were older than what was there (not written)."""
    current, stale = stored, set()
    for i, item in said:
        if item is None:
            current = None
        elif _supersedes(item, current):
            current = item
        else:
            stale.add(i)
    return current, stale


def _transient(err: BaseException) -> bool:
    """Connection-type failures (server down, restarting, locked): retry the same message forever."""
    if isinstance(err, OSError):
        return True
    if isinstance(err, OperationalError | InterfaceError):
        return True
    return isinstance(err, DBAPIError) and bool(err.connection_invalidated)


@dataclass(frozen=True)
class _Item:
    topic: str
    payload: bytes
    mid: int
    qos: int
    generation: int
    received_at: datetime
    # A message from another source (central.ingest_rabbitmq): acks it there after the commit;
    # returns whether the ack went out (False: its connection is gone, the broker redelivers it).
    ack: Callable[[], bool] | None = None


_STOP = object()


class Ingester:
    """MQTT -> database. `start()`, `stop()`, or use as a context manager.

    `counters` counts what was stored, duplicated and dead-lettered; `connected` and `subscribed`
    are threading.Events (set while the current connection has its subscriptions).
    """

    def __init__(
        self,
        config: CentralConfig,
        *,
        engine: Engine | None = None,
        client_id: str | None = None,
        console: TextIO | None = None,
        on_outcome: Callable[[Outcome], None] | None = None,
        reconnect_max_s: int = 30,
        batch_max: int = 500,
    ) -> None:
        self.config = config
        self.batch_max = batch_max
        self._own_engine = engine is None
        self.engine = engine or make_engine(config.database_url)
        self.processor = MessageProcessor(
            make_session_factory(self.engine),
            dialect_name=self.engine.dialect.name,
            evidence_dir=config.evidence_dir,
            topic_prefix=config.mqtt.topic_prefix,
            tz=config.time_zone,
            config=config,
        )
        self.client_id = client_id or config.mqtt.effective_client_id
        # With a per-process id nobody will resume this session: end it on a clean stop, otherwise
        # the broker keeps handing it a share of the group's messages until it expires.
        self._ephemeral_session = client_id is None and not config.mqtt.stable_client_id
        self.console = console if console is not None else sys.stdout
        self.on_outcome = on_outcome
        self.counters = IngestCounters()
        self.connected = threading.Event()
        self.subscribed = threading.Event()
        # With a broker cluster the events come from its stream or queue (central.ingest_jetstream,
        # central.ingest_rabbitmq); over MQTT then only evidence, status and health. RabbitMQ's
        # queue is bound to those too (its MQTT plugin has no shared subscriptions: every
        # ingester's session would get all of them): over MQTT nothing, and a clean session, which
        # also deletes the session queue an earlier version left bound to them.
        self._no_mqtt_session = config.events_engine == "rabbitmq"
        self.topics = (
            []
            if self._no_mqtt_session
            else ingest_subscriptions(config.mqtt.topic_prefix, config.mqtt.share_group, events=config.events_engine == "mqtt")
        )
        self._queue: queue.Queue[Any] = queue.Queue()
        self._busy = threading.Event()
        self._stopping = threading.Event()
        self._generation = 0
        self._gen_lock = threading.Lock()
        self._worker: threading.Thread | None = None
        self._unsubscribed = threading.Event()
        self._reconnect_max_s = reconnect_max_s
        self._client = self._make_client()
        self._started = False

    # ------------------------------------------------------------------ MQTT side (network thread)

    def _make_client(self) -> mqtt.Client:
        cfg = self.config.mqtt
        # A persistent session (clean_start=False, session_expiry_s), acked after commit by the worker;
        # on RabbitMQ a clean one with no subscriptions (everything comes from the events queue).
        settings = cfg.client_settings(
            self.client_id, clean_start=self._no_mqtt_session, session_expiry_s=cfg.session_expiry_s, manual_ack=True,
            reconnect_max_s=self._reconnect_max_s,
        )
        self._mqtt = MqttClient(
            settings,
            on_connect=self._on_connect,
            on_connect_fail=self._on_connect_fail,
            on_disconnect=self._on_disconnect,
            on_subscribed=self._on_subscribed,
            on_unsubscribe=self._on_unsubscribe,
            on_message=self._on_message,
        )
        return self._mqtt.client

    def mqtt_status(self) -> dict[str, Any]:
        """The broker connection: connected, last CONNACK, refused subscriptions (SUBACK >= 0x80)."""
        return self._mqtt.status()

    def _on_connect(self, client: mqtt.Client, _ud: Any, flags: Any, reason: Any, _props: Any) -> None:
        if reason.is_failure:
            log.warning(kv("mqtt_connect_refused", client_id=self.client_id, reason=str(reason)))
            return
        with self._gen_lock:
            self._generation += 1
        self.connected.set()
        log.info(
            kv(
                "mqtt_connected",
                client_id=self.client_id,
                session_present=flags.session_present,
                url=self.config.mqtt.url,
            )
        )
        if self._stopping.is_set():
            return
        if not self.topics:  # RabbitMQ: everything comes from the events queue
            self.subscribed.set()
            log.info(kv("mqtt_subscribed", client_id=self.client_id, topics="none"))
            return
        # Subscribing again on a resumed session is harmless and covers a broker that lost it.
        self._mqtt.subscribe(self.topics, qos=1)

    def _on_connect_fail(self, _client: mqtt.Client, _ud: Any) -> None:
        # paho retries by itself (loop thread, backoff up to reconnect_max_s); say so once per try.
        log.warning(
            kv(
                "mqtt_unreachable",
                client_id=self.client_id,
                url=self.config.mqtt.url,
                retry="backoff 1.." + str(self._reconnect_max_s) + "s",
            )
        )

    def _on_subscribed(self, result: SubscribeResult) -> None:
        if not result.ok:
            # Refused (the broker's access control): `subscribed` stays clear, mqtt_status() names the topics.
            failed = [f"{t}: {r}" for t, r in result.refused.items()]
            log.error(kv("mqtt_subscribe_failed", client_id=self.client_id, reasons=",".join(failed)))
            return
        self.subscribed.set()
        log.info(kv("mqtt_subscribed", client_id=self.client_id, topics=",".join(self.topics)))

    def _on_unsubscribe(self, *_args: Any) -> None:
        self._unsubscribed.set()

    def _on_disconnect(self, _c: mqtt.Client, _ud: Any, _flags: Any, reason: Any, _props: Any) -> None:
        self.connected.clear()
        self.subscribed.clear()
        if not self._stopping.is_set():
            log.warning(
                kv(
                    "mqtt_disconnected",
                    client_id=self.client_id,
                    reason=str(reason),
                    retry="backoff 1.." + str(self._reconnect_max_s) + "s",
                )
            )

    def _on_message(self, _c: mqtt.Client, _ud: Any, msg: mqtt.MQTTMessage) -> None:
        self.counters.add("received")
        self._queue.put(_Item(msg.topic, bytes(msg.payload), msg.mid, msg.qos, self._generation, utcnow()))

    def submit(self, topic: str, payload: bytes, ack: Callable[[], bool]) -> None:
        """A message from another source (the events queue of a RabbitMQ cluster): stored,
        dead-lettered and counted by the same worker, batches and retries as an MQTT message, and
        `ack()` called after its transaction committed. Called from that source's own thread."""
        self.counters.add("received")
        self._queue.put(_Item(topic, payload, 0, 1, -1, utcnow(), ack))

    # --------------------------------------------------------------------------- worker thread

    def _ack(self, item: _Item) -> None:
        if item.ack is not None:
            if item.ack():
                self.counters.add("acked")
            return
        if item.qos == 0:
            return
        # A message from an earlier connection cannot be acked on this one: the broker redelivers it
        # and the redelivery is acked (as a duplicate) instead.
        if item.generation != self._generation or not self.connected.is_set():
            return
        if self._client.ack(item.mid, item.qos) == mqtt.MQTT_ERR_SUCCESS:
            self.counters.add("acked")

    def _process_with_retry(self, item: _Item) -> Outcome | None:
        """Retries until stored; None when stopping before it could be (left unacked)."""
        delays = itertools.chain([0.1, 0.25, 0.5, 1.0, 2.0], itertools.repeat(5.0))
        permanent_failures = 0
        while True:
            try:
                return self.processor.process(item.topic, item.payload, item.received_at)
            except (SQLAlchemyError, OSError) as e:
                self.counters.add("db_errors")
                if not _transient(e):
                    permanent_failures += 1
                    if permanent_failures >= _PERMANENT_DB_ERROR_RETRIES:
                        reason = f"database rejected the message: {type(e).__name__}: {str(e).splitlines()[0][:300]}"
                        try:
                            return self.processor.dead_letter(item.topic, item.payload, reason, item.received_at)
                        except (SQLAlchemyError, OSError) as e2:
                            e = e2
                    else:
                        # The database answered (it is not away): try again at once, no backoff. A
                        # poison message must not cost every message behind it seconds of waiting.
                        continue
                delay = next(delays)
                log.warning(
                    kv(
                        "store_failed",
                        topic=item.topic,
                        error=type(e).__name__,
                        detail=str(e).splitlines()[0][:200] if str(e) else "",
                        retry_in_s=delay,
                    )
                )
            except Exception as e:  # a bug must not wedge the queue on one message: park it
                log.exception(kv("process_crashed", topic=item.topic))
                try:
                    return self.processor.dead_letter(
                        item.topic, item.payload, f"internal error: {type(e).__name__}: {e}", item.received_at
                    )
                except (SQLAlchemyError, OSError):
                    delay = next(delays)
            if self._stopping.wait(delay):
                return None

    def _expire_held(self) -> None:
        try:
            self.processor.expire_held()
        except (SQLAlchemyError, OSError) as e:  # tried again next minute; never stops ingest
            log.warning(kv("evidence_hold_expire_failed", error=type(e).__name__, detail=str(e).splitlines()[0][:200]))

    def _report_line(self, outcome: Outcome) -> str:
        ev = outcome.event
        assert ev is not None
        local = ev.started_at.astimezone(ZoneInfo(self.config.time_zone))
        # A signed read-only link: whoever reads central's console may open the report without a login.
        return (
            f"REPORT {outcome.report_id} {ev.type.value} camera={ev.camera} at {local:%Y-%m-%d %H:%M:%S%z} "
            f"{report_url(self.config.web.base_url, outcome.share_ref or outcome.report_id or '')}"
        )

    def _record(self, item: _Item, outcome: Outcome) -> None:
        c = self.counters
        if outcome.kind == "stored" and outcome.event is not None:
            c.add("stored")
            ev = outcome.event
            if outcome.clock_suspect:
                c.add("clock_suspect")
                log.warning(
                    kv(
                        "event_clock_suspect",
                        event_id=ev.id,
                        node=ev.node,
                        camera=ev.camera,
                        started_at=ev.started_at.isoformat(),
                        received_at=item.received_at.isoformat(),
                    )
                )
            log.info(
                kv(
                    "event_stored",
                    event_id=ev.id,
                    node=ev.node,
                    camera=ev.camera,
                    type=ev.type.value,
                    report=outcome.report_id,
                    new_report=outcome.report_created,
                    started_at=ev.started_at.isoformat(),
                )
            )
            if outcome.report_created:  # one line per report, not per event that grew it
                print(self._report_line(outcome), file=self.console, flush=True)
        elif outcome.kind == "duplicate" and outcome.event is not None:
            c.add("duplicates")
            log.info(kv("event_duplicate", event_id=outcome.event.id, node=outcome.event.node, camera=outcome.event.camera))
        elif outcome.kind == "amended" and outcome.event is not None:
            c.add("amended")
            ev = outcome.event
            log.info(kv("event_amended", event_id=ev.id, node=ev.node, camera=ev.camera, evidence=",".join(e.kind for e in ev.evidence)))
        elif outcome.kind == "dead_letter":
            c.dead_letter(outcome.reason)
            if (outcome.reason or "").startswith(EVIDENCE_STORE_FAILED):
                c.add("evidence_store_failures")
                if not c.evidence_store_failing:
                    c.add("evidence_store_failing")
                log.error(kv("evidence_store_failing", topic=item.topic, size=len(item.payload), reason=outcome.reason))
            log.warning(kv("dead_letter", topic=item.topic, size=len(item.payload), reason=outcome.reason))
        elif outcome.kind == "evidence_stored":
            c.add("evidence_stored")
            if outcome.held:
                c.add("evidence_held")
            if c.evidence_store_failing:
                c.add("evidence_store_failing", -c.evidence_store_failing)
                log.info(kv("evidence_store_recovered"))
            log.info(kv("evidence_stored", sha256=outcome.sha256, size=len(item.payload), held=outcome.held))
        elif outcome.kind == "evidence_duplicate":
            c.add("evidence_duplicates")
        elif outcome.kind == "status":
            c.add("status_updates")
            if outcome.reason == "invalid":
                c.add("status_invalid")
            if outcome.stale:
                c.add("status_stale")
        if self.on_outcome is not None:
            self.on_outcome(outcome)

    def _store(self, kind: str, items: list[_Item], *, per_row: bool = False) -> list[Outcome]:
        """One transaction for `items`, all of one kind ("event", "evidence", "status")."""
        messages = [(it.topic, it.payload, it.received_at) for it in items]
        if kind == "event":
            outcomes = self.processor.process_events(messages, per_row=per_row)
            self.counters.add("batches")
        elif kind == "evidence":
            outcomes = self.processor.process_evidence(messages)
            self.counters.add("evidence_batches")
        else:
            outcomes = self.processor.process_status(messages)
            self.counters.add("status_batches")
        return outcomes

    def _process_batch_with_retry(self, items: list[_Item], kind: str = "event") -> list[Outcome | None]:
        """Messages of one kind, many per transaction; retried whole while the database is away. A
        batch the database rejects (or a bug) is bisected at once (events: first redone with each
        row in a savepoint), so that one bad message is dead-lettered alone. None for a message
        left unprocessed (stopping): it stays unacked."""
        delays = itertools.chain([0.1, 0.25, 0.5, 1.0, 2.0], itertools.repeat(5.0))
        while True:
            try:
                return list(self._store(kind, items))
            except (SQLAlchemyError, OSError) as e:
                self.counters.add("db_errors")
                if not _transient(e):
                    break
                delay = next(delays)
                log.warning(
                    kv(
                        "store_failed",
                        batch=len(items),
                        error=type(e).__name__,
                        detail=str(e).splitlines()[0][:200] if str(e) else "",
                        retry_in_s=delay,
                    )
                )
            except Exception:
                log.exception(kv("batch_crashed", batch=len(items)))
                break
            if self._stopping.wait(delay):
                return [None] * len(items)
        if kind != "event":
            log.warning(kv("batch_split", batch=len(items), kind=kind, reason="rejected by the database; bisecting"))
            return self._isolate(items, kind)
        log.warning(kv("batch_split", batch=len(items), reason="rejected by the database; row by row"))
        try:
            return list(self._store(kind, items, per_row=True))
        except (SQLAlchemyError, OSError) as e:
            self.counters.add("db_errors")
            if _transient(e):
                return self._process_batch_with_retry(items, kind)
        except Exception:
            log.exception(kv("batch_crashed", batch=len(items)))
        # Refused elsewhere than at the event row (a report, a link): find the message by bisecting.
        return self._isolate(items, kind)

    def _isolate(self, items: list[_Item], kind: str = "event") -> list[Outcome | None]:
        """A batch the database rejected (or a bug): each half is tried at once, without backoff
        (the database answered; it is not away), down to the message it rejects, which is
        dead-lettered alone. k bad messages among n cost about 2k·log2(n) transactions; the good
        ones are each stored once, in batches. A half that meets a transient error goes back to
        the retrying batch path."""
        if len(items) == 1:
            return [self._process_with_retry(items[0])]
        mid = len(items) // 2
        out: list[Outcome | None] = []
        for half in (items[:mid], items[mid:]):
            try:
                out += self._store(kind, half)
                continue
            except (SQLAlchemyError, OSError) as e:
                self.counters.add("db_errors")
                if _transient(e):
                    out += self._process_batch_with_retry(half, kind)
                    continue
            except Exception:
                log.exception(kv("batch_crashed", batch=len(half)))
            out += self._isolate(half, kind)
        return out

    def _handle(self, batch: list[_Item]) -> None:
        # One transaction per kind: the evidence files first (the edge sends them before the event
        # that refers to them), then status and health, then the events.
        kinds: dict[str, list[_Item]] = {"evidence": [], "status": [], "event": []}
        for item in batch:
            kind = self.processor.kind_of(item.topic)
            if kind in kinds:
                kinds[kind].append(item)
                continue
            outcome = self._process_with_retry(item)  # not ours: dead-lettered
            if outcome is not None:
                self._ack(item)
                self._record(item, outcome)
        for kind, items in kinds.items():
            if not items:
                continue
            for item, outcome in zip(items, self._process_batch_with_retry(items, kind), strict=True):
                if outcome is not None:  # None: stopping with the DB away; unacked, the broker keeps it
                    self._ack(item)  # after the commit of its transaction, never before
                    self._record(item, outcome)

    def _work(self) -> None:
        stop = False
        while not stop:
            item = self._queue.get()
            if item is _STOP:
                return
            # Take whatever else is waiting: under load the batch grows by itself (more per
            # transaction), at low rates it is one message and no one waits for a batch to fill.
            batch = [item]
            while len(batch) < self.batch_max:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is _STOP:
                    stop = True
                    break
                batch.append(more)
            self._busy.set()
            try:
                self._handle(batch)
                self._expire_held()
            finally:
                self._busy.clear()
                for _ in batch:
                    self._queue.task_done()

    # ------------------------------------------------------------------------------- lifecycle

    def start(self) -> Ingester:
        if self._started:
            return self
        self._started = True
        cfg = self.config.mqtt
        self._worker = threading.Thread(target=self._work, name="central-ingest-worker", daemon=True)
        self._worker.start()
        # Connects in the background: the first connection is retried too (broker not up yet).
        self._mqtt.start()
        log.info(
            kv(
                "ingester_started",
                client_id=self.client_id,
                url=cfg.url,
                topics=",".join(self.topics),
                database=self.engine.url.get_backend_name(),
            )
        )
        return self

    @property
    def connection_count(self) -> int:
        """How many times a connection to the broker was established (1 + reconnects)."""
        return self._generation

    def wait_subscribed(self, timeout: float = 10.0) -> bool:
        return self.subscribed.wait(timeout)

    def idle(self) -> bool:
        return self._queue.unfinished_tasks == 0

    def stop(self, drain_timeout: float = 5.0) -> None:
        """Clean stop: process what is queued (up to `drain_timeout`), ack it, disconnect."""
        if not self._started:
            return
        self._started = False
        self._stopping.set()
        if self._ephemeral_session and self.topics and self.connected.is_set():
            self._unsubscribed.clear()
            self._client.unsubscribe(self.topics)
            self._unsubscribed.wait(2.0)
        deadline = time.monotonic() + drain_timeout
        while not self.idle() and time.monotonic() < deadline:
            time.sleep(0.02)
        props = None
        # End a per-process session only when nothing is left unacked: otherwise keep it, so the
        # broker still holds those messages (for `session_expiry_s`) instead of dropping them.
        if self._ephemeral_session and self.config.mqtt.session_expiry_s > 0 and self.idle():
            props = Properties(PacketTypes.DISCONNECT)
            props.SessionExpiryInterval = 0
        self._mqtt.stop(props)
        # What was not processed in time stays unacked: the broker redelivers it to the session.
        dropped = 0
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
            self._queue.task_done()
            dropped += 1
        if dropped:
            log.info(kv("ingester_left_unacked", count=dropped))
        self._queue.put(_STOP)
        if self._worker is not None:
            self._worker.join(timeout=drain_timeout + 5)
        if self._own_engine:
            self.engine.dispose()
        log.info(kv("ingester_stopped", client_id=self.client_id, **self.counters.snapshot()))

    def __enter__(self) -> Ingester:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()
