"""One FHIR client pool for every EHR, whatever its mode (docs/architecture.md, "The seam
where an EHR connects"): per EHR and thread a client, made on first use, that writes with
SMART Backend Services (discovery through ``smart_launch.discover``, a ``private_key_jwt``
assertion with ``kid``, ``smart_launch.backend_token_source``), or with the tokens of the
person whose action caused a write (``writes = "user"`` in the EHR's configuration).

What differs per mode is a :class:`Connection` the mode's adapter hands in where the pool is
built: the HTTP session its requests go through (Koppeltaal: the trace headers) and the
default algorithm of its client assertions (Koppeltaal: RS512).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import requests

from fhir_burnout.errors import FhirConnectionError
from fhir_burnout.fhir import FhirClient
from fhir_burnout.settings import Ehr, Settings
from fhir_burnout.smart_launch import DiscoveryError, backend_token_source, discover
from fhir_burnout.sync import Claimed, NoAuthorisationError, WriteAccess


@dataclass(frozen=True)
class Connection:
    """What the pool takes from a mode's adapter: a new HTTP session for each client (its
    discovery, token requests and FHIR requests all go through it), and the default
    algorithm of its client assertions (None: SMART's, the key's own ``alg``)."""

    session: Callable[[], requests.Session] = requests.Session
    algorithm: str | None = None


def backend_client(  # noqa: PLR0917 - the credentials of one Backend Services client
    fhir_base: str,
    client_id: str,
    private_jwk: dict[str, Any],
    scope: str,
    alg: str | None = None,
    connection: Connection = Connection(),
) -> FhirClient:
    """A FHIR client of ``fhir_base`` with a Backend Services token source: the token
    endpoint from SMART discovery, assertions signed with ``alg`` (configured), else the
    key's, else the connection's default; every request through one session of
    ``connection``. The pool's clients are these; so is ``fhir-burnout publish``'s."""
    session = connection.session()
    source = backend_token_source(
        _token_endpoint(fhir_base, session), client_id, private_jwk, scope,
        alg=alg, default_alg=connection.algorithm, session=session,
    )  # fmt: skip
    return FhirClient(fhir_base, session=session, token_source=source)


def _token_endpoint(fhir_base: str, session: requests.Session) -> str:
    """The EHR's token endpoint (SMART discovery, with the /metadata fallback). An EHR that
    does not answer is a FhirConnectionError, as any request to it: the worker tries again,
    a machine caller is told to (503)."""
    try:
        return discover(fhir_base, session).token_endpoint
    except DiscoveryError as exc:
        url = f"{fhir_base.rstrip('/')}/.well-known/smart-configuration"
        raise FhirConnectionError(str(exc), method="GET", url=url) from None


class SessionTokens(Protocol):
    """Access tokens of signed-in people's launch sessions, for the writes they caused (the
    web layer keeps the sessions and composes this; the pool never imports it)."""

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
    """A FHIR client per EHR and thread, each with a Backend Services token source from the
    settings; ``get`` is what :class:`~fhir_burnout.sync.Worker` and the polls take as
    ``client_for``, and ``access`` what the worker takes as ``access_for``
    (``session_tokens``: the people's own tokens, for EHRs with ``writes = "user"``).
    ``connections``: per mode (``smart``, ``koppeltaal``) what its adapter differs in; a
    mode not named gets the plain :class:`Connection`."""

    def __init__(
        self,
        settings: Settings,
        session_tokens: SessionTokens | None = None,
        *,
        connections: Mapping[str, Connection] | None = None,
    ) -> None:
        self.settings = settings
        self.session_tokens = session_tokens
        self.connections = dict(connections or {})
        self._lock = threading.Lock()
        self._clients: dict[tuple[str, int], FhirClient] = {}

    def get(self, fhir_base: str) -> FhirClient:
        """The client for ``fhir_base`` on this thread (made on first use)."""
        key = (fhir_base.rstrip("/"), threading.get_ident())
        with self._lock:
            if key not in self._clients:
                self._clients[key] = self._backend_client(self.settings.ehr(fhir_base))
            return self._clients[key]

    def _backend_client(self, ehr: Ehr) -> FhirClient:
        """A new client writing with Backend Services, through its mode's connection."""
        if ehr.worker_private_jwk is None:
            hint = ', and this EHR is not set to writes = "user"' if ehr.mode == "smart" else ""
            raise NoAuthorisationError(
                "no-worker",
                f"{ehr.fhir_base}: the worker has no key for SMART Backend Services "
                f"(fhir-burnout keys){hint}",
            )
        return backend_client(
            ehr.fhir_base, ehr.worker_client_id, ehr.worker_private_jwk, ehr.worker_scope,
            alg=ehr.assertion_alg, connection=self.connections.get(ehr.mode, Connection()),
        )  # fmt: skip

    def access(self, entry: Claimed) -> WriteAccess:
        """How ``entry`` is written: with Backend Services, or (``writes = "user"``) with
        the authorisation of the person whose action caused it."""
        if self.settings.ehr(entry.fhir_base).writes != "user":
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
        if ehr.writes == "user":
            return "writes with the signed-in user's authorisation"
        if ehr.worker_private_jwk is None:
            return "writes with SMART Backend Services, but has no key for it (fhir-burnout keys)"
        return f"writes with SMART Backend Services as {ehr.worker_client_id}"

    def close(self) -> None:
        """Close every client."""
        for client in self._clients.values():
            client.close()
