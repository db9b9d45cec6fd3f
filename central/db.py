"""Central's storage: SQLAlchemy 2 models, engine set-up, migrations, idempotent writes.

SQLite is the default (one file, no server); PostgreSQL is production. Everything here works on
both: idempotency rests on the primary keys and `INSERT ... ON CONFLICT`, which both dialects have.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    create_engine,
    event,
    text,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker
from sqlalchemy.types import TypeDecorator

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def utcnow() -> datetime:
    return datetime.now(UTC)


def normalize_plate(plate: str) -> str:
    """A plate as search and the watch list compare it: upper case, letters and digits only, so
    "29b1 12345", "29-B1 123.45" and "29B112345" are one plate."""
    return re.sub(r"[^0-9A-Z]", "", plate.upper())


class UtcDateTime(TypeDecorator[datetime]):
    """Always timezone-aware UTC in Python, whatever the backend.

    Why: SQLite has no time zone type and hands back naive datetimes; PostgreSQL's timestamptz
    returns aware ones in the session zone. Both become aware UTC here.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: pass a timezone-aware (UTC) datetime")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# JSONB on PostgreSQL (indexable, compact); plain JSON text on SQLite.
JsonType = JSON().with_variant(postgresql.JSONB(), "postgresql")
# SQLite only auto-increments an INTEGER PRIMARY KEY.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    pass


class EventRow(Base):
    __tablename__ = "events"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, comment="the event's UUID, made at the edge")
    node: Mapped[str] = mapped_column(String(64))
    camera: Mapped[str] = mapped_column(String(64))
    type: Mapped[str] = mapped_column(String(64))
    category: Mapped[str] = mapped_column(String(32))
    phase: Mapped[str] = mapped_column(String(16))
    started_at: Mapped[datetime] = mapped_column(UtcDateTime)
    ended_at: Mapped[datetime] = mapped_column(UtcDateTime)
    confidence: Mapped[float] = mapped_column(Float)
    zone_id: Mapped[str | None] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(JsonType, comment="the whole event as received (contract v1)")
    received_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    # 0003: a time of the event lies outside the sane window around its arrival (the edge's clock
    # is wrong, or the event was held very long): stored, never dropped, and shown as such.
    clock_suspect: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))

    __table_args__ = (
        Index("ix_events_node_camera_started", "node", "camera", "started_at"),
        Index("ix_events_started_at", "started_at"),
    )


class DeadLetterRow(Base):
    __tablename__ = "dead_letters"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    topic: Mapped[str] = mapped_column(Text)
    payload: Mapped[bytes] = mapped_column(LargeBinary)
    reason: Mapped[str] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, index=True)


class EvidenceRow(Base):
    __tablename__ = "evidence"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    media_type: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)
    path: Mapped[str] = mapped_column(String(200), comment="relative to the evidence dir: <sha[:2]>/<sha>")
    received_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    # 0003: set while no stored event refers to the file (it arrived before its event, or was
    # never asked for): the holding area, emptied of what expires (central.evidence_hold).
    held_until: Mapped[datetime | None] = mapped_column(UtcDateTime, index=True)


class EventEvidenceRow(Base):
    """Which stored event refers to which evidence file (by sha256; the file may not be here yet)."""

    __tablename__ = "event_evidence"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    event_id: Mapped[str] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"), primary_key=True, index=True)


class ReportRow(Base):
    __tablename__ = "reports"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"))
    category: Mapped[str] = mapped_column(String(32))
    type: Mapped[str] = mapped_column(String(64))
    node: Mapped[str] = mapped_column(String(64))
    camera: Mapped[str] = mapped_column(String(64))
    title_vi: Mapped[str] = mapped_column(Text)
    title_en: Mapped[str] = mapped_column(Text)
    description_vi: Mapped[str] = mapped_column(Text)
    description_en: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="new", server_default="new")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, index=True)
    # 0002: a report groups events (same camera+zone+type within a window, or one incident).
    # `event_id` is the first event; `best_event_id` the one whose evidence the report shows.
    group_key: Mapped[str | None] = mapped_column(String(200), index=True)
    incident: Mapped[str | None] = mapped_column(String(36), index=True)
    zone_id: Mapped[str | None] = mapped_column(String(64))
    ward: Mapped[str | None] = mapped_column(Text, index=True)
    district: Mapped[str | None] = mapped_column(Text, index=True)  # a legacy label (no districts since 2025-07)
    # 0008: two tiers (province -> ward); `area` is the routing table's area (a set of wards) of the ward.
    province: Mapped[str | None] = mapped_column(Text)
    area: Mapped[str | None] = mapped_column(String(64), index=True)
    address: Mapped[str | None] = mapped_column(Text)
    lat: Mapped[float | None] = mapped_column(Float)
    lon: Mapped[float | None] = mapped_column(Float)
    first_seen: Mapped[datetime | None] = mapped_column(UtcDateTime)
    last_seen: Mapped[datetime | None] = mapped_column(UtcDateTime)
    event_count: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    best_event_id: Mapped[str | None] = mapped_column(String(36))
    confidence: Mapped[float | None] = mapped_column(Float)
    plate: Mapped[str | None] = mapped_column(String(32))
    # 0006: the edge's read of `plate` (the most confident of the report's events); `plate_tried`:
    # a read was made, so no plate means "unreadable"; `plate_norm` is what search and the watch list match.
    plate_confidence: Mapped[float | None] = mapped_column(Float)
    plate_lines: Mapped[int | None] = mapped_column(Integer)
    plate_crop_sha256: Mapped[str | None] = mapped_column(String(64))
    plate_tried: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    plate_norm: Mapped[str | None] = mapped_column(String(32), index=True)
    watch_alerted_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # 0008: address, ward, camera and zone (ids and names), plate, unaccented lower case (central.search).
    search_text: Mapped[str | None] = mapped_column(Text)
    priority: Mapped[str] = mapped_column(String(16), default="normal", server_default="normal")
    agency_code: Mapped[str | None] = mapped_column(String(64))
    agency_name_vi: Mapped[str | None] = mapped_column(Text)
    agency_name_en: Mapped[str | None] = mapped_column(Text)
    deadline_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    alerted_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # 0007: a person's confirmation forwards and alerts from this time (the undo window); the reason
    # of the standing rejection (lists show it; the audit trail keeps every one).
    forward_after: Mapped[datetime | None] = mapped_column(UtcDateTime, index=True)
    reject_reason: Mapped[str | None] = mapped_column(Text)
    published_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    public_evidence: Mapped[Any] = mapped_column(JsonType, nullable=True)

    # The first event opens at most one report; the constraint also makes report creation idempotent.
    __table_args__ = (UniqueConstraint("event_id", name="uq_reports_event_id"),)


class ReportEventRow(Base):
    """Which report an event grew (every stored event belongs to exactly one report)."""

    __tablename__ = "report_events"

    event_id: Mapped[str] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"), primary_key=True)
    report_id: Mapped[int] = mapped_column(ForeignKey("reports.id", ondelete="CASCADE"), index=True)
    added_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class ReportHistoryRow(Base):
    """Audit trail: every status change (and publish, alert) with who and when."""

    __tablename__ = "report_history"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    report_id: Mapped[int] = mapped_column(ForeignKey("reports.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(32))
    from_status: Mapped[str | None] = mapped_column(String(16))
    to_status: Mapped[str | None] = mapped_column(String(16))
    note: Mapped[str | None] = mapped_column(Text)


class UserRow(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(Text, comment="argon2id (PHC string)")
    role: Mapped[str] = mapped_column(String(16), comment="operator | police | admin")
    districts: Mapped[Any] = mapped_column(JsonType, comment="legacy: police districts (0008 copied them to scope)")
    # 0008: police: {"wards": [...], "areas": [...], "districts": [...legacy]}: what they see.
    scope: Mapped[Any] = mapped_column(JsonType, nullable=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class WebSessionRow(Base):
    __tablename__ = "web_sessions"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True, comment="sha256 of the cookie value")
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    csrf: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)


class LoginFailureRow(Base):
    """Failed logins per account or client address (central.web.throttle): shared by every web process."""

    __tablename__ = "login_failures"

    key: Mapped[str] = mapped_column(String(200), primary_key=True, comment="account:<name> or address:<ip>")
    first_at: Mapped[float] = mapped_column(Float, comment="unix seconds: the window's first failure")
    failures: Mapped[int] = mapped_column(Integer)
    blocked_until: Mapped[float] = mapped_column(Float, comment="unix seconds; refused before this")
    expires_at: Mapped[float] = mapped_column(Float, index=True, comment="unix seconds: forgotten after this")


# 0009: report counts for the dashboard and /metrics without a scan of every report. Triggers on
# `reports` (central.report_counts) append +1/-1 rows to report_count_deltas in the transaction
# that inserts, deletes or re-labels a report; a fold moves them into report_counts. A NULL
# dimension is '' here (a primary key has no NULLs).
REPORT_COUNT_DIMENSIONS = ("status", "type", "category", "node", "camera", "ward", "agency")


class ReportCountRow(Base):
    __tablename__ = "report_counts"

    status: Mapped[str] = mapped_column(String(16), primary_key=True)
    type: Mapped[str] = mapped_column(String(64), primary_key=True)
    category: Mapped[str] = mapped_column(String(32), primary_key=True)
    node: Mapped[str] = mapped_column(String(64), primary_key=True)
    camera: Mapped[str] = mapped_column(String(64), primary_key=True)
    ward: Mapped[str] = mapped_column(Text, primary_key=True)
    agency: Mapped[str] = mapped_column(Text, primary_key=True, comment="coalesce(agency_name_vi, agency_code, '')")
    n: Mapped[int] = mapped_column(BigInteger)


class ReportCountDeltaRow(Base):
    __tablename__ = "report_count_deltas"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    status: Mapped[str] = mapped_column(String(16))
    type: Mapped[str] = mapped_column(String(64))
    category: Mapped[str] = mapped_column(String(32))
    node: Mapped[str] = mapped_column(String(64))
    camera: Mapped[str] = mapped_column(String(64))
    ward: Mapped[str] = mapped_column(Text)
    agency: Mapped[str] = mapped_column(Text)
    n: Mapped[int] = mapped_column(BigInteger)


class AlertRow(Base):
    """Police alert outbox: written with the status change, sent by the dispatcher (MQTT + webhooks)."""

    __tablename__ = "alerts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    report_id: Mapped[int] = mapped_column(ForeignKey("reports.id", ondelete="CASCADE"), index=True)
    district: Mapped[str | None] = mapped_column(Text)
    topic_district: Mapped[str] = mapped_column(String(64), comment="the topic's place: area, legacy district or ward")
    # 0008: the report's ward and area, for police scoped by them.
    ward: Mapped[str | None] = mapped_column(Text)
    area: Mapped[str | None] = mapped_column(String(64))
    type: Mapped[str] = mapped_column(String(64))
    payload: Mapped[Any] = mapped_column(JsonType)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, index=True)
    mqtt_sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    webhooks_done_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    last_error: Mapped[str | None] = mapped_column(Text)
    # 0007: the police officer who took the alert, and when.
    acknowledged_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    acknowledged_by: Mapped[str | None] = mapped_column(String(64))


class SettingRow(Base):
    """Values central makes for itself once per database (e.g. the share-link signing key)."""

    __tablename__ = "settings"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class NodeStatusRow(Base):
    __tablename__ = "node_status"

    node: Mapped[str] = mapped_column(String(64), primary_key=True)
    payload: Mapped[Any] = mapped_column(JsonType, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class CameraHealthRow(Base):
    __tablename__ = "camera_health"

    node: Mapped[str] = mapped_column(String(64), primary_key=True)
    camera: Mapped[str] = mapped_column(String(64), primary_key=True)
    payload: Mapped[Any] = mapped_column(JsonType, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


# ---------------------------------------------------------------------------------------- engine


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    cur = dbapi_connection.cursor()
    # WAL: the web console reads while the ingester writes; busy_timeout: two ingesters (or the
    # ingester and a migration) wait for the write lock instead of failing at once.
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def make_engine(database_url: str, **kwargs: Any) -> Engine:
    """An engine with the per-backend settings central needs (creates the SQLite file's folder)."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:":
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        kwargs.setdefault("connect_args", {"timeout": 30, "check_same_thread": False})
        engine = create_engine(url, **kwargs)
        event.listen(engine, "connect", _sqlite_on_connect)
        return engine
    kwargs.setdefault("pool_pre_ping", True)  # a restarted PostgreSQL leaves dead pooled connections
    kwargs.setdefault("connect_args", {"connect_timeout": 10})
    return create_engine(url, **kwargs)


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One transaction: commit on success, roll back on any error."""
    with factory() as session, session.begin():
        yield session


def check_connection(engine: Engine) -> None:
    """Raises sqlalchemy.exc.OperationalError when the database cannot be reached."""
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))


def dialect_insert(dialect_name: str) -> Any:
    """`insert()` of the dialect, which has `on_conflict_do_nothing/update`."""
    if dialect_name == "postgresql":
        return postgresql.insert
    if dialect_name == "sqlite":
        return sqlite.insert
    raise ValueError(f"unsupported database dialect {dialect_name!r}")


def _pg_unnest_insert(table: str, columns: dict[str, str], conflict: str | None, returning: str | None) -> Any:
    """One fixed statement for any number of rows: INSERT ... SELECT FROM unnest(<one array per column>).

    Why: a multi-row VALUES statement is a new, long SQL text per batch size, which the driver
    parses each time; the unnest form is parsed once and sends each column as one array.
    """
    arrays = ", ".join(f"CAST(:{c} AS {t}[])" for c, t in columns.items())
    sql = f"INSERT INTO {table} ({', '.join(columns)}) SELECT * FROM unnest({arrays})"
    if conflict:
        sql += f" ON CONFLICT ({conflict}) DO NOTHING"
    if returning:
        sql += f" RETURNING {returning}"
    return text(sql)


_EVENT_COLUMNS = {
    "id": "varchar",
    "node": "varchar",
    "camera": "varchar",
    "type": "varchar",
    "category": "varchar",
    "phase": "varchar",
    "started_at": "timestamptz",
    "ended_at": "timestamptz",
    "confidence": "float8",
    "zone_id": "varchar",
    "received_at": "timestamptz",
    "clock_suspect": "bool",
}
# The payloads travel as ONE JSON array text, not as a jsonb[] of texts: the driver would escape
# every quote of every payload into the array literal, which cost more than the rest of the insert.
_PG_INSERT_EVENTS = text(
    f"INSERT INTO events ({', '.join(_EVENT_COLUMNS)}, payload) "
    f"SELECT {', '.join('c.' + c for c in _EVENT_COLUMNS)}, p.value FROM "
    f"unnest({', '.join(f'CAST(:{c} AS {t}[])' for c, t in _EVENT_COLUMNS.items())}) "
    f"WITH ORDINALITY AS c({', '.join(_EVENT_COLUMNS)}, n) "
    "JOIN jsonb_array_elements(CAST(:payloads AS jsonb)) WITH ORDINALITY AS p(value, n) ON p.n = c.n "
    "ON CONFLICT (id) DO NOTHING RETURNING id"
)
_PG_INSERT_REPORT_EVENTS = _pg_unnest_insert(
    "report_events", {"event_id": "varchar", "report_id": "int4", "added_at": "timestamptz"}, None, None
)
_PG_INSERT_EVENT_EVIDENCE = _pg_unnest_insert(
    "event_evidence", {"sha256": "varchar", "event_id": "varchar"}, "sha256, event_id", None
)


def insert_new_events(session: Session, rows: list[dict[str, Any]]) -> set[str]:
    """Insert event rows (column -> value; `payload` as JSON text), skipping ids already stored;
    returns the ids this call inserted. The unique key decides, so racing writers never both win."""
    if not rows:
        return set()
    if session.get_bind().dialect.name == "postgresql":
        params: dict[str, Any] = {c: [r[c] for r in rows] for c in _EVENT_COLUMNS}
        params["payloads"] = "[" + ",".join(r["payload"] for r in rows) + "]"
        return set(session.scalars(_PG_INSERT_EVENTS, params))
    stmt = sqlite.insert(EventRow).on_conflict_do_nothing(index_elements=["id"]).returning(EventRow.id)
    return set(session.scalars(stmt, [{**r, "payload": json.loads(r["payload"])} for r in rows]))


def insert_event_evidence(session: Session, refs: list[tuple[str, str]]) -> None:
    """Record which events refer to which evidence: (sha256, event id) pairs, repeats skipped."""
    if not refs:
        return
    if session.get_bind().dialect.name == "postgresql":
        session.execute(_PG_INSERT_EVENT_EVIDENCE, {"sha256": [r[0] for r in refs], "event_id": [r[1] for r in refs]})
    else:
        stmt = sqlite.insert(EventEvidenceRow).on_conflict_do_nothing(index_elements=["sha256", "event_id"])
        session.execute(stmt, [{"sha256": sha, "event_id": eid} for sha, eid in refs])


def insert_report_events(session: Session, rows: list[dict[str, Any]]) -> None:
    """Link events to reports: rows of event_id, report_id, added_at."""
    if not rows:
        return
    if session.get_bind().dialect.name == "postgresql":
        params = {c: [r[c] for r in rows] for c in ("event_id", "report_id", "added_at")}
        session.execute(_PG_INSERT_REPORT_EVENTS, params)
    else:
        session.execute(ReportEventRow.__table__.insert(), rows)


# ------------------------------------------------------------------------------------ migrations

_PG_MIGRATION_LOCK = 0x63656E7472616C  # "central": serialises concurrent migrate() calls


def alembic_config(connection: Connection | None = None) -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    # The URL travels as a live connection, not through the ini (where '%' in passwords breaks).
    cfg.attributes["connection"] = connection
    return cfg


def migrate(database_url: str, revision: str = "head") -> None:
    """Bring the schema to `revision` (alembic upgrade), on SQLite or PostgreSQL."""
    from alembic import command

    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            if conn.dialect.name == "postgresql":
                # Two ingesters starting together must not both create the tables.
                conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _PG_MIGRATION_LOCK})
                conn.commit()
            try:
                command.upgrade(alembic_config(conn), revision)
                conn.commit()
            finally:
                if conn.dialect.name == "postgresql":
                    conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _PG_MIGRATION_LOCK})
                    conn.commit()
    finally:
        engine.dispose()
    log.info("event=db_migrated revision=%s backend=%s", revision, make_url(database_url).get_backend_name())


def current_revision(database_url: str) -> str | None:
    from alembic.runtime.migration import MigrationContext

    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()
