"""Launch state kept server-side: pending launches and signed-in sessions with their tokens.

The browser holds an opaque id only. Access and refresh tokens are encrypted at rest
(Fernet, AES-128-CBC with HMAC-SHA256) and never leave the server. A pending launch is bound
to the browser that started it and is deleted when its callback arrives: a ``state`` works
once, and only in that browser.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import asdict
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy import (
    Boolean,
    Float,
    LargeBinary,
    String,
    Text,
    delete,
    exists,
    func,
    select,
    update,
)
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Mapped, Session, mapped_column

from fhir_burnout.db import Base, reader
from fhir_burnout.smart_launch import LaunchResult, PendingLaunch, StateError
from fhir_burnout.sync import OutboxEntry

PENDING_LIFETIME = 600.0  # seconds a person may take to sign in at the EHR
#: Launches one browser may have pending; its oldest go first (a person starts again,
#: a script that never comes back cannot fill the table).
PENDING_PER_BROWSER = 5
#: Launches pending for all browsers together, unless the config says otherwise
#: (``pending_launches_max``): a flood from many addresses stays bounded too.
PENDING_MAX = 10_000
#: The longest a signed-in session lasts, whatever the EHR's tokens allow (seconds).
SESSION_MAX = 12 * 3600.0
#: Sessions whose token lifetime one process remembers (``SessionStore.renewable_at``); past
#: it, it starts again: a lifetime it forgot costs one read.
LIFETIMES_KEPT = 10_000


class PendingLaunchRow(Base):
    """A launch between redirect and callback."""

    __tablename__ = "pending_launch"
    state: Mapped[str] = mapped_column(String(128), primary_key=True)
    browser_id: Mapped[str] = mapped_column(String(64), index=True)
    data: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[float] = mapped_column(Float)


class LaunchSessionRow(Base):
    """A signed-in person: launch context and encrypted tokens."""

    __tablename__ = "launch_session"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    fhir_base: Mapped[str] = mapped_column(String(512))
    role: Mapped[str] = mapped_column(String(16))
    patient: Mapped[str | None] = mapped_column(String(128))
    encounter: Mapped[str | None] = mapped_column(String(128))
    fhir_user: Mapped[str | None] = mapped_column(String(512))
    need_patient_banner: Mapped[bool] = mapped_column(Boolean, default=False)
    smart_style_url: Mapped[str | None] = mapped_column(String(512))
    locale: Mapped[str | None] = mapped_column(String(16))
    scope: Mapped[str] = mapped_column(Text)
    not_granted: Mapped[str] = mapped_column(Text, default="[]")
    access_token: Mapped[bytes] = mapped_column(LargeBinary)
    refresh_token: Mapped[bytes | None] = mapped_column(LargeBinary)
    expires_at: Mapped[float] = mapped_column(Float)
    created_at: Mapped[float] = mapped_column(Float)
    #: The person's name as the EHR has it, encrypted (never in the browser's cookie)
    user_name: Mapped[bytes | None] = mapped_column(LargeBinary)
    #: When the person signed out (or the session otherwise ended for pages); the row and
    #: its tokens stay only while writes they caused wait for the EHR (sync: writes = "user")
    ended_at: Mapped[float | None] = mapped_column(Float)


class SessionStore:
    """Pending launches and launch sessions in one SQL database (SQLite or PostgreSQL)."""

    def __init__(self, engine: Engine, token_key: str, pending_max: int = PENDING_MAX) -> None:
        self.engine = engine  # migrated by the app factory (fhir_burnout.db.upgrade)
        self._reader = reader(engine)  # for the one read every page makes (see ``get``)
        self._fernet = Fernet(token_key.encode())
        self.pending_max = pending_max
        #: Session id: when its access token runs out, as this process last read or stored
        #: it (inf: it has nothing to renew it with). See ``renewable_at``.
        self._lifetimes: dict[str, float] = {}

    def _seal(self, value: str) -> bytes:
        return self._fernet.encrypt(value.encode("utf-8"))

    def _open(self, value: bytes) -> str:
        try:
            return self._fernet.decrypt(value).decode("utf-8")
        except InvalidToken:
            raise StateError("stored launch data cannot be read; please start again") from None

    def save_pending(self, pending: PendingLaunch, browser_id: str, extra: dict[str, Any]) -> None:
        """Remember a pending launch for this browser; the browser's launches beyond the
        newest :data:`PENDING_PER_BROWSER`, and everyone's beyond ``pending_max``, go
        (oldest first)."""
        data = json.dumps({"pending": asdict(pending), "extra": extra})
        newest_first = (PendingLaunchRow.created_at.desc(), PendingLaunchRow.state)
        with Session(self.engine) as db, db.begin():
            db.add(
                PendingLaunchRow(
                    state=pending.state,
                    browser_id=browser_id,
                    data=self._seal(data),
                    created_at=pending.created_at,
                )
            )
            db.flush()
            older = (
                select(PendingLaunchRow.state)
                .where(PendingLaunchRow.browser_id == browser_id)
                .order_by(*newest_first)
                .offset(PENDING_PER_BROWSER)
            )
            db.execute(delete(PendingLaunchRow).where(PendingLaunchRow.state.in_(older)))
            count = db.scalar(select(func.count()).select_from(PendingLaunchRow)) or 0
            if count > self.pending_max:
                oldest = (
                    select(PendingLaunchRow.state)
                    .order_by(*newest_first)
                    .offset(self.pending_max)
                    .limit(count - self.pending_max)
                )
                db.execute(delete(PendingLaunchRow).where(PendingLaunchRow.state.in_(oldest)))

    def take_pending(
        self, state: str, browser_id: str, now: float | None = None
    ) -> tuple[PendingLaunch, dict[str, Any]]:
        """The pending launch for this state and browser, removed so it works only once."""
        now = time.time() if now is None else now
        with Session(self.engine) as db, db.begin():
            row = db.get(PendingLaunchRow, state)
            if row is None:
                raise StateError("this sign-in is unknown or was already used; please start again")
            db.delete(row)
            if not secrets.compare_digest(row.browser_id, browser_id):
                raise StateError("this sign-in was started in another browser")
            if now - row.created_at > PENDING_LIFETIME:
                raise StateError("this sign-in took too long; please start again")
            data = json.loads(self._open(row.data))
        return PendingLaunch(**data["pending"]), data["extra"]

    def forget_expired_pending(self, now: float | None = None) -> int:
        """Delete pending launches nobody came back for."""
        cutoff = (time.time() if now is None else now) - PENDING_LIFETIME
        with Session(self.engine) as db, db.begin():
            result = db.execute(
                delete(PendingLaunchRow).where(PendingLaunchRow.created_at < cutoff)
            )
        return int(getattr(result, "rowcount", 0) or 0)

    def create_session(self, fhir_base: str, result: LaunchResult, role: str) -> str:
        """Store a signed-in person's tokens and context; returns the opaque session id."""
        session_id = secrets.token_urlsafe(32)
        with Session(self.engine) as db, db.begin():
            db.add(
                LaunchSessionRow(
                    id=session_id,
                    fhir_base=fhir_base,
                    role=role,
                    patient=result.patient,
                    encounter=result.encounter,
                    fhir_user=result.fhir_user,
                    need_patient_banner=result.need_patient_banner,
                    smart_style_url=result.smart_style_url,
                    locale=result.locale,
                    scope=result.scope,
                    not_granted=json.dumps(list(result.not_granted)),
                    access_token=self._seal(result.access_token),
                    refresh_token=self._seal(result.refresh_token)
                    if result.refresh_token
                    else None,
                    expires_at=result.expires_at,
                    created_at=time.time(),
                )
            )
        return session_id

    def get(self, session_id: str, db: Session | None = None) -> LaunchSessionRow | None:
        """A launch session (tokens still sealed), detached: it stays readable after the
        transaction. In ``db`` when given (the request's own session: one connection for
        the whole request). Without: a statement on its own (``db.reader``), no BEGIN and
        ROLLBACK around it: two round trips fewer before every page."""
        if db is not None:
            return self._detached(db, session_id)
        with Session(self._reader) as own:
            return self._detached(own, session_id)

    def _detached(self, db: Session, session_id: str) -> LaunchSessionRow | None:
        row = db.get(LaunchSessionRow, session_id)
        if row is None:
            self._lifetimes.pop(session_id, None)
            return None
        db.expunge(row)
        self._note_lifetime(row)
        return row

    def _note_lifetime(self, row: LaunchSessionRow) -> None:
        if len(self._lifetimes) >= LIFETIMES_KEPT:
            self._lifetimes.clear()
        renewable = row.refresh_token and row.ended_at is None
        self._lifetimes[row.id] = row.expires_at if renewable else float("inf")

    def renewable_at(self, session_id: str) -> float | None:
        """When session ``session_id``'s access token runs out, as this process last read it
        (inf: nothing renews it); None: not known here. Before every page the app renews a
        token about to run out (``_launch._renew_or_end``); this spares it the read while
        the token is good. A token's lifetime only moves later (a renewal) or ends with its
        session, which the page's own read of the session finds, so a remembered lifetime
        never hides a renewal that is due."""
        return self._lifetimes.get(session_id)

    def forget_lifetimes(self) -> None:
        """Forget the token lifetimes this process remembers (a test that makes a token run
        out by editing the database, as only time would)."""
        self._lifetimes.clear()

    def access_token(self, row: LaunchSessionRow) -> str:
        """The session's access token, decrypted."""
        return self._open(row.access_token)

    def refresh_token(self, row: LaunchSessionRow) -> str | None:
        """The session's refresh token, decrypted, if there is one."""
        return self._open(row.refresh_token) if row.refresh_token else None

    def user_name(self, row: LaunchSessionRow) -> str | None:
        """The signed-in person's name, if it was read; decrypted."""
        return self._open(row.user_name) if row.user_name else None

    def remember_name(self, session_id: str, name: str) -> None:
        """Keep the signed-in person's name with their session (read once from the EHR)."""
        with Session(self.engine) as db, db.begin():
            row = db.get(LaunchSessionRow, session_id)
            if row is not None:
                row.user_name = self._seal(name)

    def update_tokens(self, session_id: str, result: LaunchResult) -> None:
        """Replace a session's tokens after a refresh (refresh tokens rotate)."""
        with Session(self.engine) as db, db.begin():
            row = db.get(LaunchSessionRow, session_id)
            if row is None:
                return
            row.access_token = self._seal(result.access_token)
            if result.refresh_token:
                row.refresh_token = self._seal(result.refresh_token)
            row.expires_at = result.expires_at
            row.scope = result.scope or row.scope
            self._note_lifetime(row)

    def end_authorisation(self, session_id: str) -> None:
        """The EHR ended this session's authorisation: its tokens go and it counts as ended
        (``purge`` deletes the row later; until then a draft can still find whose it was)."""
        with Session(self.engine) as db, db.begin():
            row = db.get(LaunchSessionRow, session_id)
            if row is not None:
                row.access_token = self._seal("")
                row.refresh_token = None
                row.expires_at = 0.0
        self._lifetimes.pop(session_id, None)

    def end(self, session_id: str, now: float | None = None) -> bool:
        """End a session for every page at once (sign out). Its row and tokens are deleted,
        unless writes the person caused still wait for the EHR: then they are kept, for the
        worker only, until those are delivered (``purge``). True when deleted now."""
        now = time.time() if now is None else now
        self._lifetimes.pop(session_id, None)
        with Session(self.engine) as db, db.begin():
            needed = select(LaunchSessionRow.id).where(
                LaunchSessionRow.id == session_id, _needed()
            )
            if db.scalar(needed) is not None:
                db.execute(
                    update(LaunchSessionRow)
                    .where(LaunchSessionRow.id == session_id)
                    .values(ended_at=now)
                )
                return False
            db.execute(delete(LaunchSessionRow).where(LaunchSessionRow.id == session_id))
            return True


def _needed() -> Any:
    """Whether undelivered outbox entries were caused by the session (correlated): the
    worker may still need its tokens (sync: writes = "user")."""
    return exists().where(
        OutboxEntry.caused_by == LaunchSessionRow.id, OutboxEntry.state != "delivered"
    )


def purge(engine: Engine, now: float | None = None) -> tuple[int, int]:
    """Delete what nobody can use any more: pending launches nobody came back for, and
    ended sessions with their tokens (the worker does this now and then), except those
    whose person caused writes that still wait for the EHR: the worker may deliver those
    with their tokens. Needs no key: nothing is decrypted. Returns (pending, sessions)
    deleted."""
    now = time.time() if now is None else now
    nobody_came = PendingLaunchRow.created_at < now - PENDING_LIFETIME
    ended = (
        (LaunchSessionRow.created_at < now - SESSION_MAX)
        | ((LaunchSessionRow.expires_at < now) & LaunchSessionRow.refresh_token.is_(None))
        | LaunchSessionRow.ended_at.is_not(None)
    ) & ~_needed()
    with Session(engine) as db, db.begin():
        pending = db.execute(delete(PendingLaunchRow).where(nobody_came))
        sessions = db.execute(delete(LaunchSessionRow).where(ended))
    return _count(pending), _count(sessions)


def _count(result: Any) -> int:
    return int(getattr(result, "rowcount", 0) or 0)
