"""What the app's machine-facing endpoints (``$apply``, ``POST /referrals``) share: who the
caller is, how much of a body is read, and how the EHR is asked on the caller's behalf.

A machine caller is a client the practice named: its id is in ``api_clients`` of the
``[[ehr]]`` whose authorization server issued its token, and the token is meant for the app
itself (``aud`` is our ``base_url``, RFC 8707 / RFC 9068 §4: a token for the EHR is not a
token for us), with a ``system/`` scope for the write (SMART Backend Services: the caller
acts for a system, never for a person). Each refusal is an OperationOutcome: 401 for a
token that is not for us, 403 for a client that is not a caller or lacks the scope.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from flask import request

from fhir_burnout.errors import FhirBurnoutError, FhirConnectionError, FhirServerError
from fhir_burnout.fhir import FhirClient
from fhir_burnout.smart_launch import TokenRequestError, require_scope
from fhir_burnout.web._bearer import UnknownCallerError, authenticate
from fhir_burnout.web._context import AppContext

log = logging.getLogger(__name__)

#: Seconds a caller is asked to wait when the EHR does not answer (unless it said longer).
RETRY_AFTER_SECONDS = 30


class UnsupportedMediaError(FhirBurnoutError, ValueError):
    """A Content-Type the endpoint does not take (HTTP 415)."""

    code = "not-supported"


class BodyTooLargeError(FhirBurnoutError, ValueError):
    """A body over the endpoint's limit (HTTP 413), refused before it is parsed."""

    code = "too-long"


class EhrUnavailableError(FhirBurnoutError):
    """The EHR did not answer, or not usably: try again later (HTTP 503)."""

    code = "transient"

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after

    def headers(self) -> dict[str, str]:
        """``Retry-After`` (RFC 9110 §10.2.3): ours, or longer when the EHR said so."""
        return {"Retry-After": str(max(RETRY_AFTER_SECONDS, int(self.retry_after or 0)))}


@dataclass(frozen=True)
class Caller:
    """A machine caller let in: its token's claims, the EHR whose authorization server
    issued it, and its client id."""

    claims: dict[str, Any]
    fhir_base: str
    client_id: str


def client_id_of(claims: dict[str, Any]) -> str:
    """The client a token was issued to: ``client_id`` (RFC 9068 §2.2), else ``azp`` (OIDC),
    else ``sub`` (a client_credentials token's subject is the client)."""
    for claim in ("client_id", "azp", "sub"):
        if isinstance(claims.get(claim), str) and claims[claim]:
            return str(claims[claim])
    return ""


def machine_caller(state: AppContext, resource_type: str, permissions: str = "c") -> Caller:
    """The caller of a machine endpoint that acts on ``resource_type``, once its token is
    for us, from a client the practice named, with a ``system/`` scope for each of
    ``permissions`` (c, r, u, d, s; SMART v2 scopes)."""
    claims, fhir_base = authenticate(state)
    client_id = client_id_of(claims)
    if not state.settings.api_client_allowed(fhir_base, client_id):
        raise UnknownCallerError(
            f"client {client_id[:64]!r} is not a caller of this practice's API"
            " (api_clients of its [[ehr]])"
        )
    # A machine caller acting for the practice: a person's user/ token (a patient's at the
    # portal, say) may never enrol or refer anyone, whatever its client.
    for action in permissions:
        require_scope(claims, resource_type, action, contexts=("system",))
    return Caller(claims, fhir_base, client_id)


def read_body(limit: int) -> bytes:
    """The body, refused once it is larger than ``limit`` without reading more of it than
    that (a declared length is refused before reading at all)."""
    declared = request.content_length
    if declared is not None and declared > limit:
        raise _too_large(declared, limit)
    data = request.stream.read(limit + 1)
    if len(data) > limit:
        raise _too_large(None, limit)
    return bytes(data)


def _too_large(size: int | None, limit: int) -> BodyTooLargeError:
    said = f"{size} bytes" if size is not None else "larger than that"
    return BodyTooLargeError(f"the body is {said}; at most {limit} bytes are accepted")


def ehr_client(state: AppContext, fhir_base: str) -> FhirClient:
    """The worker's Backend Services client for the EHR (one set per app, made on first use)."""
    client: FhirClient = state.ehr_clients.get(fhir_base)
    return client


@contextmanager
def asking_ehr(
    again: str, refused: Callable[[FhirServerError], FhirBurnoutError | None] = lambda _: None
) -> Iterator[None]:
    """Turn the EHR's silence into :class:`EhrUnavailableError` (``again`` tells the caller
    what to resend); ``refused`` maps an answer the caller can act on to its own error."""
    try:
        yield
    except (FhirConnectionError, TokenRequestError) as error:
        log.warning("machine caller: the EHR does not answer (%s)", type(error).__name__)
        raise EhrUnavailableError(
            f"the EHR does not answer; nothing was stored: {again} later"
        ) from None
    except FhirServerError as error:
        mapped = refused(error)
        if mapped is not None:
            raise mapped from None
        log.warning("machine caller: the EHR answered %s", error.status)
        raise EhrUnavailableError(
            f"the EHR answered {error.status}; nothing was stored: {again} later",
            error.retry_after,
        ) from None
