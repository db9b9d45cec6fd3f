"""Users, passwords (argon2id), server-side sessions, CSRF tokens and signed share links.

Sessions live in the database (`web_sessions`): the cookie holds a random token, the table only its
sha256, so a stolen database does not give working cookies, and logging out really ends a session.
CSRF: every session has its own random token; each state-changing request must send it back
(form field `csrf_token` or header `X-CSRF-Token`). The cookie is HttpOnly and SameSite=Lax.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from central.db import SettingRow, UserRow, WebSessionRow, dialect_insert, utcnow
from central.workflow import ROLES

SESSION_COOKIE = "ioc_session"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"

_hasher = PasswordHasher()  # argon2id with the library's (RFC 9106 low-memory) parameters


@functools.cache
def _dummy_hash() -> str:
    """Verified when the user does not exist, so a wrong name costs as long as a wrong password."""
    return _hasher.hash("not-a-real-password")


@dataclass(frozen=True)
class User:
    id: int
    username: str
    role: str
    districts: tuple[str, ...]  # legacy: police scoped by district labels (before 2025's two tiers)
    wards: tuple[str, ...] = ()  # police: the communes/wards they see
    areas: tuple[str, ...] = ()  # police: the routing areas (codes; each a set of wards) they see

    def sees_district(self, district: str | None) -> bool:
        return self.role != "police" or (district is not None and district in self.districts)

    def sees_place(self, ward: str | None, area: str | None, district: str | None) -> bool:
        """Police see a place that is one of their wards, in one of their areas, or (legacy) in one
        of their districts; everyone else sees every place."""
        if self.role != "police":
            return True
        return (
            (ward is not None and ward in self.wards)
            or (area is not None and area in self.areas)
            or (district is not None and district in self.districts)
        )


@dataclass(frozen=True)
class SessionInfo:
    user: User
    csrf: str


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _user(row: UserRow) -> User:
    scope = row.scope if isinstance(row.scope, dict) else {}
    districts = scope.get("districts", row.districts) or ()
    return User(
        row.id, row.username, row.role, tuple(districts), tuple(scope.get("wards") or ()), tuple(scope.get("areas") or ())
    )


def create_user(
    session: Session,
    username: str,
    password: str,
    role: str,
    districts: list[str] | None = None,
    *,
    wards: list[str] | None = None,
    areas: list[str] | None = None,
) -> User:
    """`districts` is the legacy scope; police are scoped by `wards` and/or `areas` (routing area codes)."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)} (got {role!r})")
    if len(password) < 8:
        raise ValueError("password must have at least 8 characters")
    if role == "police" and not (districts or wards or areas):
        raise ValueError("a police user needs at least one ward or area (or a legacy district)")
    row = UserRow(
        username=username,
        password_hash=_hasher.hash(password),
        role=role,
        districts=list(districts or []),
        scope={"wards": list(wards or []), "areas": list(areas or []), "districts": list(districts or [])},
        active=True,
        created_at=utcnow(),
    )
    session.add(row)
    session.flush()
    return _user(row)


def authenticate(session: Session, username: str, password: str) -> User | None:
    row = session.scalars(select(UserRow).where(UserRow.username == username)).first()
    try:
        _hasher.verify(row.password_hash if row else _dummy_hash(), password)
    except (VerificationError, InvalidHashError):
        return None
    if row is None or not row.active:
        return None
    if _hasher.check_needs_rehash(row.password_hash):
        row.password_hash = _hasher.hash(password)
    return _user(row)


def start_session(session: Session, user: User, hours: float, now: datetime | None = None) -> tuple[str, str]:
    """A new session for `user`: returns (cookie token, csrf token)."""
    now = now or utcnow()
    token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    session.execute(delete(WebSessionRow).where(WebSessionRow.expires_at < now))  # keep the table small
    session.add(
        WebSessionRow(
            token_hash=_token_hash(token),
            user_id=user.id,
            csrf=csrf,
            created_at=now,
            expires_at=now + timedelta(hours=hours),
        )
    )
    return token, csrf


def load_session(session: Session, token: str | None, now: datetime | None = None) -> SessionInfo | None:
    if not token or len(token) > 200:
        return None
    row = session.execute(
        select(WebSessionRow, UserRow)
        .join(UserRow, UserRow.id == WebSessionRow.user_id)
        .where(WebSessionRow.token_hash == _token_hash(token))
    ).first()
    if row is None:
        return None
    ws, user = row
    if ws.expires_at < (now or utcnow()) or not user.active:
        return None
    return SessionInfo(_user(user), ws.csrf)


def end_session(session: Session, token: str | None) -> None:
    if token:
        session.execute(delete(WebSessionRow).where(WebSessionRow.token_hash == _token_hash(token)))


def csrf_ok(expected: str, given: str | None) -> bool:
    return bool(given) and hmac.compare_digest(expected.encode(), (given or "").encode())


# ---------------------------------------------------------------------------------- share links


def share_secret(session: Session, configured: str | None) -> bytes:
    """The key that signs share links: configured, or made once per database and kept there."""
    if configured:
        return configured.encode()
    insert = dialect_insert(session.get_bind().dialect.name)
    session.execute(
        insert(SettingRow)
        .values(key="share_link_secret", value=secrets.token_hex(32))
        .on_conflict_do_nothing(index_elements=["key"])
    )
    return session.get_one(SettingRow, "share_link_secret").value.encode()


# Share links and evidence tokens carry the time they were issued, inside the signature (issue 18,
# defect 10: they never expired and could not be revoked). They expire `max_age_s` after issue (the
# config's, read at check time: shortening it shortens links already sent), and a link issued at or
# before a revocation time (per report, or for all) no longer opens anything. Revocation times live
# in `settings`, so no migration was needed.
REVOKED_ALL_KEY = "share_revoked_all"


def _revoked_key(report_id: int) -> str:
    return f"share_revoked:{report_id}"


def _now_s(now: datetime | None) -> int:
    return int((now or utcnow()).timestamp())


def share_token(secret: bytes, report_id: int, issued: int) -> str:
    return hmac.new(secret, f"report:{report_id}:{issued}".encode(), hashlib.sha256).hexdigest()[:24]


def evidence_token(secret: bytes, sha256: str, now: datetime | None = None) -> str:
    """Signs one evidence file's URL (`<issued hex>.<signature>`): minted only into views of
    someone allowed to see the report."""
    issued = _now_s(now)
    sig = hmac.new(secret, f"evidence:{sha256}:{issued}".encode(), hashlib.sha256).hexdigest()[:32]
    return f"{issued:x}.{sig}"


def _issued(text: str) -> int | None:
    if not (0 < len(text) <= 12) or any(c not in "0123456789abcdef" for c in text):
        return None
    return int(text, 16)


def _live(issued: int, max_age_s: float, revoked_before: int | None, now: datetime | None) -> bool:
    now_s = _now_s(now)
    if issued > now_s + 300 or now_s - issued > max_age_s:  # from the future (a forged clock) or expired
        return False
    return revoked_before is None or issued > revoked_before


def revoked_before(session: Session, report_id: int | None) -> int | None:
    """The latest revocation that covers `report_id` (its own, or of all links), or None."""
    keys = [REVOKED_ALL_KEY] + ([_revoked_key(report_id)] if report_id is not None else [])
    values = [int(v) for v in session.scalars(select(SettingRow.value).where(SettingRow.key.in_(keys)))]
    return max(values) if values else None


def revoke_share_links(session: Session, report_id: int | None, now: datetime | None = None) -> int:
    """Every share link of `report_id` (None: every share link and evidence token) issued until
    now stops working. Returns the revocation time (unix seconds)."""
    at = _now_s(now)
    key = REVOKED_ALL_KEY if report_id is None else _revoked_key(report_id)
    row = session.get(SettingRow, key)
    if row is None:
        session.add(SettingRow(key=key, value=str(at)))
    else:
        row.value = str(max(at, int(row.value)))
    session.flush()
    return at


def check_evidence_token(
    secret: bytes,
    sha256: str,
    token: str | None,
    *,
    max_age_s: float,
    revoked: int | None = None,
    now: datetime | None = None,
) -> bool:
    issued_text, _, sig = (token or "").partition(".")
    issued = _issued(issued_text)
    if issued is None or not sig:
        return False
    expected = hmac.new(secret, f"evidence:{sha256}:{issued}".encode(), hashlib.sha256).hexdigest()[:32]
    return hmac.compare_digest(expected, sig) and _live(issued, max_age_s, revoked, now)


def share_ref(secret: bytes, report_id: int, now: datetime | None = None) -> str:
    """`<id>-<issued hex>-<signature>`: a read-only link to one report, for the console line and e-mails."""
    issued = _now_s(now)
    return f"{report_id}-{issued:x}-{share_token(secret, report_id, issued)}"


def parse_share_ref(secret: bytes, ref: str) -> tuple[int, int] | None:
    """(report id, issued) of a well-signed share ref, or None. Expiry and revocation: share_ref_live."""
    parts = ref.split("-")
    if len(parts) != 3:
        return None
    rid, issued_text, sig = parts
    if not (rid.isascii() and rid.isdigit()) or len(rid) > 18 or not sig:  # '²'.isdigit() is True
        return None
    issued = _issued(issued_text)
    if issued is None:
        return None
    return (int(rid), issued) if hmac.compare_digest(share_token(secret, int(rid), issued), sig) else None


def share_ref_live(issued: int, *, max_age_s: float, revoked: int | None, now: datetime | None = None) -> bool:
    return _live(issued, max_age_s, revoked, now)


def check_share_ref(
    secret: bytes, ref: str, *, max_age_s: float = 30 * 86400, revoked: int | None = None
) -> int | None:
    """The report id a share ref grants (signed, not expired, not revoked by `revoked`), or None."""
    parsed = parse_share_ref(secret, ref)
    if parsed is None or not share_ref_live(parsed[1], max_age_s=max_age_s, revoked=revoked):
        return None
    return parsed[0]
