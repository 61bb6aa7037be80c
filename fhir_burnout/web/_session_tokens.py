"""A launch session's access token, renewed with its refresh token when it runs out: for the
pages (``_launch.current_launch``) and for the sync worker's writes on an EHR that takes
writes only with a person's own authorisation (``writes = "user"``, integration.SessionTokens).

SMART App Launch 2.2 §"Refresh access token": refresh tokens may rotate, and an
authorization server may revoke the grant when an old one is used again. The web and the
worker may renew the same session at once, so a refusal is taken as the end of the
authorisation only when nobody renewed the session meanwhile.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

import requests
from sqlalchemy import select
from sqlalchemy.orm import Session

from fhir_burnout.smart_launch import (
    DiscoveryCache,
    LaunchClient,
    LaunchError,
    TokenRequestError,
    refresh,
    trusted_ehr,
)
from fhir_burnout.sync import NoAuthorisationError
from fhir_burnout.web._sessions import LaunchSessionRow, SessionStore

#: Renew an access token this many seconds before it runs out.
REFRESH_MARGIN = 60.0


class Refused(Exception):  # noqa: N818 - a signal between this module and its callers
    """The EHR refused to renew the session's tokens (or there is nothing to renew them
    with): its authorisation has ended."""


def renewed(
    store: SessionStore,
    row: LaunchSessionRow,
    ehrs: Sequence[LaunchClient],
    discovery: DiscoveryCache,
    http: requests.Session,
    *,
    force: bool = False,
) -> str:
    """``row``'s access token, renewed first when it (nearly) ran out or ``force``. Raises
    :class:`Refused` when the EHR refused the renewal (the session's tokens are gone then),
    TokenRequestError when it did not answer, LaunchError when nothing can renew it."""
    if not force and row.expires_at - REFRESH_MARGIN > time.time():
        return store.access_token(row)
    refresh_token = store.refresh_token(row)
    if not refresh_token:
        raise Refused
    ehr = trusted_ehr(row.fhir_base, ehrs)
    try:
        result = refresh(ehr, discovery.get(ehr.fhir_base), refresh_token, http)
    except TokenRequestError as exc:
        if exc.error == "temporarily_unavailable" or (exc.status or 0) >= 500:
            raise  # no answer: the authorisation may well stand
        now = store.get(row.id)
        if now is not None and now.refresh_token not in (None, row.refresh_token):
            # Renewed by another process meanwhile (a rotated refresh token used twice):
            # the authorisation stands, with the tokens that process stored.
            return store.access_token(now)
        store.end_authorisation(row.id)
        raise Refused from None
    store.update_tokens(row.id, result)
    return result.access_token


class SessionTokens:
    """The sync worker's access to people's own tokens (integration.SessionTokens): the session
    that caused a write, else a newer live session of the same person for the same client
    at the same EHR (they signed in again after the first ended). Nobody's:
    NoAuthorisationError, and the entry waits."""

    def __init__(
        self,
        store: SessionStore,
        ehrs: Sequence[LaunchClient],
        http: requests.Session | None = None,
    ) -> None:
        self.store, self.ehrs = store, tuple(ehrs)
        self.http = http or requests.Session()
        self.discovery = DiscoveryCache(self.http)
        self._lock = threading.Lock()  # one renewal at a time: refresh tokens rotate
        self._stale: set[str] = set()

    def token(self, session_id: str, fhir_base: str) -> str:
        """A valid access token of the person of ``session_id`` at ``fhir_base``."""
        with self._lock:
            row = self.store.get(session_id)
            for candidate in self._candidates(row, fhir_base):
                force = candidate.id in self._stale
                try:
                    token = renewed(
                        self.store, candidate, self.ehrs, self.discovery, self.http, force=force
                    )
                except (Refused, LaunchError):
                    continue  # ended, or an EHR no longer configured: not this session's
                self._stale.discard(candidate.id)
                return token
        raise NoAuthorisationError(
            "user-ended",
            "the person who made this change has no authorisation left at the EHR (signed "
            "out and their sign-in ran out, or the EHR ended it); it is delivered when they "
            "next open the programme from the EHR",
        )

    def invalidate(self, session_id: str) -> None:
        """The EHR refused the token (401): renew it before the next use."""
        with self._lock:
            self._stale.add(session_id)

    def _candidates(self, row: LaunchSessionRow | None, fhir_base: str) -> list[LaunchSessionRow]:
        """The session itself, then the same person's newer sessions with tokens."""
        if row is None or row.fhir_base != fhir_base.rstrip("/"):
            return []
        live = [row] if row.refresh_token or row.expires_at > time.time() else []
        if not row.fhir_user:
            return live
        with Session(self.store.engine) as db:
            newer = db.scalars(
                select(LaunchSessionRow)
                .where(
                    LaunchSessionRow.fhir_base == row.fhir_base,
                    LaunchSessionRow.fhir_user == row.fhir_user,
                    LaunchSessionRow.role == row.role,
                    # the same chart: patient/ scopes write only in this client's record
                    LaunchSessionRow.patient == row.patient
                    if row.patient
                    else LaunchSessionRow.patient.is_(None),
                    LaunchSessionRow.ended_at.is_(None),
                    LaunchSessionRow.id != row.id,
                    LaunchSessionRow.created_at >= row.created_at,
                )
                .order_by(LaunchSessionRow.created_at.desc())
            ).all()
            for other in newer:
                db.expunge(other)
        return live + [o for o in newer if o.refresh_token or o.expires_at > time.time()]
