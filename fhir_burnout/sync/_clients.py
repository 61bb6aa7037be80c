"""FHIR clients for the worker: per EHR, Backend Services tokens or the tokens of the person
whose action caused a write (``writes`` in the EHR's configuration)."""

from __future__ import annotations

import threading
from typing import Protocol

import requests

from fhir_burnout.errors import FhirConnectionError
from fhir_burnout.fhir import FhirClient
from fhir_burnout.settings import Settings
from fhir_burnout.smart_launch import BackendTokenSource
from fhir_burnout.sync._outbox import Claimed
from fhir_burnout.sync._worker import NoAuthorisationError, WriteAccess


class SessionTokens(Protocol):
    """Access tokens of signed-in people's launch sessions, for the writes they caused (the
    web layer keeps the sessions and composes this; ``sync`` never imports it)."""

    def token(self, session_id: str, fhir_base: str) -> str:
        """A valid access token for the person of ``session_id`` at ``fhir_base`` (renewed
        with their refresh token when needed); raises NoAuthorisationError when they have none."""
        ...

    def invalidate(self, session_id: str) -> None:
        """The EHR refused the last token (401): renew it before the next use."""
        ...


class _PersonsToken:
    """A FhirClient token source for one launch session (fhir.TokenSource)."""

    def __init__(self, tokens: SessionTokens, session_id: str, fhir_base: str) -> None:
        self._tokens, self._session_id, self._fhir_base = tokens, session_id, fhir_base

    def token(self) -> str:
        return self._tokens.token(self._session_id, self._fhir_base)

    def invalidate(self) -> None:
        self._tokens.invalidate(self._session_id)


class EhrClients:
    """A FHIR client per EHR and worker thread, each with a Backend Services token source
    from the settings; ``get`` is what :class:`Worker` takes as ``client_for``, and
    ``access`` what it takes as ``access_for`` (``session_tokens``: the people's own
    tokens, for EHRs configured with ``writes = "user"``)."""

    def __init__(self, settings: Settings, session_tokens: SessionTokens | None = None) -> None:
        self.settings = settings
        self.session_tokens = session_tokens
        self._lock = threading.Lock()
        self._clients: dict[tuple[str, int], FhirClient] = {}

    def get(self, fhir_base: str) -> FhirClient:
        """The client for ``fhir_base`` on this thread (made on first use)."""
        key = (fhir_base, threading.get_ident())
        with self._lock:
            if key not in self._clients:
                ehr = self.settings.ehr(fhir_base)
                if ehr.worker_private_jwk is None:
                    raise NoAuthorisationError(
                        "no-worker",
                        f"{fhir_base}: the worker has no key for SMART Backend Services "
                        '(fhir-burnout keys), and this EHR is not set to writes = "user"',
                    )
                url = f"{fhir_base.rstrip('/')}/.well-known/smart-configuration"
                try:
                    smart = requests.get(url, timeout=30).json()
                except (requests.RequestException, ValueError):
                    raise FhirConnectionError(f"GET {url}: no usable answer") from None
                source = BackendTokenSource(
                    smart["token_endpoint"],
                    ehr.worker_client_id,
                    ehr.worker_private_jwk,
                    ehr.worker_scope,
                )
                self._clients[key] = FhirClient(fhir_base, token_source=source)
            return self._clients[key]

    def access(self, entry: Claimed) -> WriteAccess:
        """How ``entry`` is written: with Backend Services, or (``writes = "user"``) with
        the authorisation of the person whose action caused it."""
        if not self.settings.ehr(entry.fhir_base).user_writes:
            return WriteAccess(self.get(entry.fhir_base))
        if entry.caused_by is None or self.session_tokens is None:
            raise NoAuthorisationError(
                "no-user",
                "this EHR takes writes only with a signed-in person's authorisation "
                '(writes = "user"), and nobody signed in made this change (a referral, the '
                "poll or the weekly check-ins); it waits until the EHR lets the worker write "
                "(SMART Backend Services)",
            )
        source = _PersonsToken(self.session_tokens, entry.caused_by, entry.fhir_base)
        client = FhirClient(entry.fhir_base, token_source=source)
        return WriteAccess(client, provenance=False, close=True)

    def describe(self, fhir_base: str) -> str:
        """How the worker writes to ``fhir_base``, in one line for people."""
        ehr = self.settings.ehr(fhir_base)
        if ehr.user_writes:
            return "writes with the signed-in user's authorisation"
        if ehr.worker_private_jwk is None:
            return "writes with SMART Backend Services, but has no key for it (fhir-burnout keys)"
        return f"writes with SMART Backend Services as {ehr.worker_client_id}"

    def close(self) -> None:
        """Close every client."""
        for client in self._clients.values():
            client.close()
