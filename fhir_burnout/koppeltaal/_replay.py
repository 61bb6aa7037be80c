"""One launch per HTI token (issue 19): the module takes each token's ``jti`` once.

The Koppeltaal reference auth service puts a fresh ``nonce`` of its own in every id_token, so
on a Koppeltaal domain the id_token's nonce proves nothing about our launch
(``settings.Ehr.nonce_echoed``). What stops a replay instead: ``state`` (one-time, bound to
the browser that started the launch), PKCE, and the HTI token's ``jti``. The auth service
refuses a ``jti`` it has seen, but keeps them in its process's memory (AUTH
``oauth_server/verifiers.py``, ``consumed_jti_tokens``): after a restart, or on a second
instance, a used token passes again until it expires. So the module remembers each ``jti``
it took, per domain and launcher, until the token could no longer be valid (its ``exp``
plus the leeway servers allow for clocks), and refuses it a second time.

What is stored is a SHA-256 of domain, launcher and ``jti`` with that expiry; old rows go
whenever a launch takes a token.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

from sqlalchemy import DateTime, String, delete
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from fhir_burnout.db import Base
from fhir_burnout.koppeltaal._launch import HtiToken, LaunchContextError, ReplayedLaunchError

#: How long after its ``exp`` a token may still pass somewhere: clock skew (the sandbox's
#: auth service allows 30 s; the id_token check here 60 s).
LEEWAY = timedelta(seconds=60)


class UsedLaunchToken(Base):
    """An HTI token a launch has taken: its key, and until when a replay must be refused."""

    __tablename__ = "koppeltaal_launch_jti"
    #: SHA-256 (hex) of the domain's FHIR base, the token's ``iss`` and its ``jti``
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


def _key(fhir_base: str, token: HtiToken) -> str:
    parts = (fhir_base, token.iss or "", token.jti or "")
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


def take_launch_token(
    db: Session, fhir_base: str, token: HtiToken, *, now: datetime | None = None
) -> None:
    """Take the HTI token of a launch the domain's auth service has just let through (call
    it after the code exchange): :class:`ReplayedLaunchError` when a launch took its ``jti``
    before and the token could still be valid; :class:`LaunchContextError` when it has no
    ``jti`` or ``exp`` (HTI 2.0 requires both; without them a replay cannot be told). Purges
    the rows of tokens that expired. Runs in ``db``'s transaction; a concurrent launch with
    the same ``jti`` fails its insert and is refused as a replay."""
    now = now or datetime.now(UTC)
    if token.jti is None or token.exp is None:
        raise LaunchContextError("the launch token has no jti or exp: its single use is unknown")
    try:
        expires_at = datetime.fromtimestamp(token.exp, UTC) + LEEWAY
    except (OverflowError, OSError, ValueError):
        raise LaunchContextError("the launch token's exp is not a time") from None
    db.execute(delete(UsedLaunchToken).where(UsedLaunchToken.expires_at < now))
    key = _key(fhir_base, token)
    if db.get(UsedLaunchToken, key) is not None:
        raise ReplayedLaunchError("the launch token's jti was used before")
    try:
        with db.begin_nested():
            db.add(UsedLaunchToken(key=key, expires_at=expires_at))
    except IntegrityError:
        raise ReplayedLaunchError("the launch token's jti was used before") from None
