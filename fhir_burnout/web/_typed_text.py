"""Text that people type and API callers send: no control characters but tab, LF and CR.

FHIR R4 §2.24.0.1 (string): "Strings SHALL NOT contain Unicode character points below 32,
except for u0009 (horizontal tab), u000D (carriage return) and u000A (line feed)". Other
control characters (C0, DEL and C1) forge log lines, break a referral letter and make
PostgreSQL refuse the row (NUL); a lone surrogate cannot even be written as UTF-8. So they
are refused where they come in, in one place:

- a person's form (any POST of a page): the characters are taken out of the form before any
  view reads it, so nothing stores them, and :func:`refused_fields` names the fields they
  were in; the view shows its page again with a message there and everything else typed.
- an API caller's JSON (``/fhir/...``, ``/referrals``): once its token verified, 400 with an
  OperationOutcome naming where the first one is. XML needs nothing of ours: XML 1.0
  forbids them (lxml refuses).
"""

from __future__ import annotations

import io
import json
import re
from typing import Any

from flask import Flask, g, request
from werkzeug.datastructures import ImmutableMultiDict
from werkzeug.wrappers import Response

from fhir_burnout.errors import FhirBurnoutError
from fhir_burnout.web._crisis_pages import API_PREFIXES
from fhir_burnout.web._outcomes import outcome_response
from fhir_burnout.web._rate_limits import verified_caller

UNSAFE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")
FORMS = ("application/x-www-form-urlencoded", "multipart/form-data")
JSON_TYPES = ("application/json", "application/fhir+json")


class ControlCharacterError(FhirBurnoutError, ValueError):
    """A string in the request holds a control character FHIR strings may not hold."""

    code = "invalid"


def refused_fields() -> list[str]:
    """The fields of this request's form that held control characters (now taken out)."""
    return list(g.get("refused_text", ()))


def _first_unsafe(value: Any, path: str) -> str | None:
    """Where in a JSON value the first string with a control character is, if any."""
    if isinstance(value, str):
        return path if UNSAFE.search(value) else None
    if isinstance(value, dict):
        items: Any = value.items()
    elif isinstance(value, list):
        items = ((f"[{n}]", v) for n, v in enumerate(value))
    else:
        return None
    for key, child in items:
        if isinstance(key, str) and UNSAFE.search(key):
            return path
        step = key if key.startswith("[") else f".{key}"
        found = _first_unsafe(child, path + step)
        if found:
            return found
    return None


def _clean_form() -> None:
    if request.method != "POST" or request.mimetype not in FORMS:
        return
    if request.path.startswith(API_PREFIXES):
        return
    pairs = list(request.form.items(multi=True))
    refused = [name for name, value in pairs if UNSAFE.search(value)]
    if refused:
        # request.form is computed once and kept in the request's __dict__ (Werkzeug's
        # cached_property): every view after this reads the cleaned copy.
        cleaned = [(name, UNSAFE.sub("", value)) for name, value in pairs]
        request.__dict__["form"] = ImmutableMultiDict(cleaned)
        g.refused_text = list(dict.fromkeys(refused))


def _refuse_json() -> Response | None:
    if request.mimetype not in JSON_TYPES or not request.path.startswith(API_PREFIXES):
        return None
    if not verified_caller():
        return None  # the token comes first: the endpoint refuses it (401, 403)
    data = request.stream.read()  # within MAX_CONTENT_LENGTH (413 beyond it, as always)
    # Put back for the endpoint, which reads the stream itself (to refuse a large body
    # without reading it all): Werkzeug keeps ``stream`` in the request's __dict__.
    request.__dict__["stream"] = io.BytesIO(data)
    try:
        body = json.loads(data or b"null")
    except ValueError:
        return None  # not JSON: the endpoint says so in its own words
    where = _first_unsafe(
        body, str(body.get("resourceType", "$")) if isinstance(body, dict) else "$"
    )
    if where is None:
        return None
    error = ControlCharacterError(
        f"{where} holds a control character; FHIR strings may hold none but tab, line feed "
        "and carriage return (R4 §2.24.0.1)"
    )
    return outcome_response(error, 400)


def init_app(app: Flask) -> None:
    """Refuse control characters in every form and API body of ``app``."""
    app.before_request(_clean_form)
    app.before_request(_refuse_json)
