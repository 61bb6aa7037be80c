"""``POST /referrals/notify?ehr=<id>``: an EHR's Subscription notification (R4 rest-hook).

The notification only says that something matching our criteria changed; R4 lets it come
without a body or with just an id, so the body is not read at all. The endpoint records
that a poll of that EHR is wanted (``referral_poll.wanted_at``) and answers 200 at once;
the worker's :class:`~fhir_burnout.referral.ReferralPoller` does the poll. It never calls
the EHR itself, so a slow EHR cannot make its own notifications time out.

``ehr`` names the EHR (:func:`~fhir_burnout.referral.ehr_id` of its FHIR base); the
``Authorization: Bearer`` token must be that EHR's (the Subscription's ``channel.header``,
see ``fhir-burnout referrals subscribe``). Unknown EHR: 404; a missing or wrong token: 401;
both as an OperationOutcome.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from flask import Blueprint, Response, request
from sqlalchemy.orm import Session

from fhir_burnout.db import upsert
from fhir_burnout.errors import FhirBurnoutError
from fhir_burnout.referral import PollRow, ehr_id, notify_token_ok
from fhir_burnout.settings import Settings
from fhir_burnout.web._context import app_context
from fhir_burnout.web._csrf import csrf_exempt
from fhir_burnout.web._outcomes import (
    FHIR_JSON,
    NotifyTokenError,
    UnknownEhrError,
    outcome_response,
)

bp = Blueprint("referral_notify", __name__, url_prefix="/referrals")


def _configured(settings: Settings, ehr: str) -> str | None:
    bases = {e.fhir_base.rstrip("/") for e in settings.ehrs}
    return next((base for base in sorted(bases) if ehr_id(base) == ehr), None)


@bp.post("/notify")
@csrf_exempt
def notify() -> Response:
    """Record that the EHR named by ``ehr`` asks for a poll; 200 at once."""
    state = app_context()
    settings: Settings = state.settings
    nothing = {"Cache-Control": "no-store"}
    fhir_base = _configured(settings, request.args.get("ehr", ""))
    if fhir_base is None:
        error: FhirBurnoutError = UnknownEhrError(
            "no EHR of this app has that id: subscribe again (fhir-burnout referrals subscribe)"
        )
        return outcome_response(error, 404, nothing)
    if not notify_token_ok(settings.secret_key, fhir_base, request.headers.get("Authorization")):
        error = NotifyTokenError("a notification needs the bearer token of its Subscription")
        challenge = {**nothing, "WWW-Authenticate": 'Bearer realm="referrals"'}
        return outcome_response(error, 401, challenge)
    wanted = {"fhir_base": fhir_base, "wanted_at": datetime.now(UTC)}
    with Session(state.engine) as db, db.begin():
        upsert(db, PollRow, [wanted], "fhir_base")
    ok = {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "information", "code": "informational",
                   "diagnostics": "notification received; the referrals are fetched shortly"}],
    }  # fmt: skip
    return Response(json.dumps(ok), status=200, mimetype=FHIR_JSON, headers=nothing)
