"""The answers of the app's FHIR-speaking endpoints when they refuse: an OperationOutcome
(``application/fhir+json``) with the HTTP status and headers the refusal needs, and the
errors the notification endpoints share."""

from __future__ import annotations

import json

from flask import Response

from fhir_burnout.errors import FhirBurnoutError

FHIR_JSON = "application/fhir+json"


class UnknownEhrError(FhirBurnoutError, ValueError):
    """A request names an EHR (or Koppeltaal domain) this app is not configured for."""

    code = "not-found"


class NotifyTokenError(FhirBurnoutError):
    """A notification does not carry the token of the EHR it names."""

    code = "login"


def outcome_response(
    error: FhirBurnoutError, status: int, headers: dict[str, str] | None = None
) -> Response:
    """``error`` as an OperationOutcome answer."""
    response = Response(
        json.dumps(error.outcome(), ensure_ascii=False), status=status, mimetype=FHIR_JSON
    )
    response.headers.update(headers or {})
    return response
