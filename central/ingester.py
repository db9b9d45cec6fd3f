"""The ingester: MQTT (v5, QoS 1, shared subscription) -> validated, idempotent rows in the database.

Delivery guarantee: a message is acknowledged to the broker only after the transaction that stored
it (or its dead letter) committed. If central dies in between, the broker redelivers it, and the
event id (primary key + ON CONFLICT DO NOTHING) makes the second store a counted duplicate.

Threads: paho's network thread only puts messages on a queue (it must never wait on the database,
or keep-alives stop); one worker thread processes them in order and acks them. Under load the
worker takes everything queued (up to `batch_max`) into one transaction: one commit per batch, not
per event, is what lets one process store thousands of events a second.
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
from sqlalchemy import delete, select
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
from central.grouping import attach_events, refresh_best_texts
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
    db_errors: int = 0
    acked: int = 0
    batches: int = 0  # event transactions (one per batch of event messages)
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
                return self._evidence(topic, parsed, payload, received_at)
            return self._status(parsed, payload, received_at)
        except InvalidMessage as e:
            return self.dead_letter(topic, payload, str(e), received_at)

    def dead_letter(self, topic: str, payload: bytes, reason: str, received_at: datetime | None = None) -> Outcome:
        row = _dead_letter_row(topic, payload, reason, received_at or utcnow())
        with session_scope(self.sessions) as s:
            s.add(row)
        return Outcome("dead_letter", reason=row.reason)

    def is_event_topic(self, topic: str) -> bool:
        parsed = parse_topic(self.prefix, topic)
        return parsed is not None and parsed.kind == "event"

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
            # The unique key decides, not a prior SELECT: two ingesters racing on one id both
            # succeed, one inserts it and the other does not get it back.
            suspect = {e.id for _i, e, at in fresh.values() if self.clock.suspect(e, at)}
            if per_row:
                inserted = self._insert_rows_apart(s, fresh, copies, outcomes, dead, suspect)
            else:
                inserted = insert_new_events(s, [_event_row(e, at, e.id in suspect) for _i, e, at in fresh.values()])
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
        for event_id, (_i, event, at) in list(fresh.items()):
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
                select(EventRow).where(EventRow.id.in_([e.id for e in events])).with_for_update()
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

    def _evidence(self, topic: str, parsed: ParsedTopic, payload: bytes, received_at: datetime) -> Outcome:
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
            with self.sessions() as s:
                row = s.get(EvidenceRow, sha)
                if row is not None and self.storage.exists(sha, row.size):
                    return Outcome("evidence_duplicate", sha256=sha)
                held_until = evidence_hold.admit(s, limits, sha, len(payload), received_at)
        except evidence_hold.EvidenceRefused as e:
            raise InvalidMessage(e.reason) from None
        # File first, row second: a row always points at a complete file; a crash in between leaves
        # a file without a row, which the redelivered message completes.
        try:
            rel, _ = self.storage.put_bytes(sha, payload)
        except OSError as e:
            # Disk full, read-only, gone: retrying would stall every event behind this message (one
            # worker, in order). The bytes go to the dead letter (up to DEAD_LETTER_MAX_PAYLOAD) and
            # the ingester carries on; `evidence_store_failing` in /healthz says the store is failing.
            return self.dead_letter(topic, payload, f"{EVIDENCE_STORE_FAILED}: {type(e).__name__}: {e}", received_at)
        with session_scope(self.sessions) as s:
            inserted = s.execute(
                self.insert(EvidenceRow)
                .values(
                    sha256=sha,
                    media_type=media_type,
                    size=len(payload),
                    path=rel,
                    received_at=received_at,
                    held_until=held_until,
                )
                .on_conflict_do_nothing(index_elements=["sha256"])
                .returning(EvidenceRow.sha256)
            ).first()
        if inserted is None:
            return Outcome("evidence_duplicate", sha256=sha)
        return Outcome("evidence_stored", sha256=sha, held=held_until is not None)

    def _status(self, parsed: ParsedTopic, payload: bytes, received_at: datetime) -> Outcome:
        model: type[NodeStatusRow] | type[CameraHealthRow]
        if parsed.kind == "status":
            model, keys = NodeStatusRow, {"node": parsed.node}
        else:
            model, keys = CameraHealthRow, {"node": parsed.node, "camera": parsed.camera}
        with session_scope(self.sessions) as s:
            if not payload:
                # An empty retained message clears the topic: forget the row too.
                stmt = delete(model)
                for k, v in keys.items():
                    stmt = stmt.where(getattr(model, k) == v)
                s.execute(stmt)
                return Outcome("status")
            value = _decode_json_or_text(payload)
            # Typed (contract.status) or an older node's untyped dict: stored as received either
            # way; one that claims the contract and breaks it is logged, never fatal.
            typed = health.check_status("status" if parsed.kind == "status" else "health", value, **keys)
            ins = self.insert(model).values(**keys, payload=value, updated_at=received_at)
            s.execute(
                ins.on_conflict_do_update(
                    index_elements=list(keys),
                    set_={"payload": ins.excluded.payload, "updated_at": ins.excluded.updated_at},
                )
            )
        return Outcome("status", reason=typed)


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
        # central.ingest_rabbitmq); over MQTT then only evidence, status and health.
        self.topics = ingest_subscriptions(
            config.mqtt.topic_prefix, config.mqtt.share_group, events=config.events_engine == "mqtt"
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
        # A persistent session (clean_start=False, session_expiry_s), acked after commit by the worker.
        settings = cfg.client_settings(
            self.client_id, clean_start=False, session_expiry_s=cfg.session_expiry_s, manual_ack=True,
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
        if self.on_outcome is not None:
            self.on_outcome(outcome)

    def _process_batch_with_retry(self, items: list[_Item]) -> list[Outcome | None]:
        """Event messages, many per transaction; retried whole while the database is away. A batch
        the database rejects (or a bug) is redone one message at a time, so that one bad message is
        dead-lettered alone. None for a message left unprocessed (stopping): it stays unacked."""
        delays = itertools.chain([0.1, 0.25, 0.5, 1.0, 2.0], itertools.repeat(5.0))
        messages = [(it.topic, it.payload, it.received_at) for it in items]
        while True:
            try:
                outcomes = list(self.processor.process_events(messages))
                self.counters.add("batches")
                return outcomes
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
        log.warning(kv("batch_split", batch=len(items), reason="rejected by the database; row by row"))
        try:
            outcomes = list(
                self.processor.process_events([(it.topic, it.payload, it.received_at) for it in items], per_row=True)
            )
            self.counters.add("batches")
            return outcomes
        except (SQLAlchemyError, OSError) as e:
            self.counters.add("db_errors")
            if _transient(e):
                return self._process_batch_with_retry(items)
        except Exception:
            log.exception(kv("batch_crashed", batch=len(items)))
        # Refused elsewhere than at the event row (a report, a link): find the message by bisecting.
        return self._isolate(items)

    def _isolate(self, items: list[_Item]) -> list[Outcome | None]:
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
                out += self.processor.process_events([(it.topic, it.payload, it.received_at) for it in half])
                self.counters.add("batches")
                continue
            except (SQLAlchemyError, OSError) as e:
                self.counters.add("db_errors")
                if _transient(e):
                    out += self._process_batch_with_retry(half)
                    continue
            except Exception:
                log.exception(kv("batch_crashed", batch=len(half)))
            out += self._isolate(half)
        return out

    def _handle(self, batch: list[_Item]) -> None:
        events: list[_Item] = []
        for item in batch:
            if self.processor.is_event_topic(item.topic):
                events.append(item)
            else:
                outcome = self._process_with_retry(item)
                if outcome is not None:
                    self._ack(item)
                    self._record(item, outcome)
        if events:
            for item, outcome in zip(events, self._process_batch_with_retry(events), strict=True):
                if outcome is not None:  # None: stopping with the DB away; unacked, the broker keeps it
                    self._ack(item)
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
        if self._ephemeral_session and self.connected.is_set():
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
