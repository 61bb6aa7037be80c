"""Crisis help within reach: the /hulp page, and error pages that keep it in view.

Someone in crisis may land on any page, signed in or not, with the database up or down.
So /hulp needs no sign-in and no database, and every error a person can meet (404, 405,
413, 500 and any exception nobody caught) is a readable page in their language with crisis
help and a way back, never Werkzeug's English page and never a stack trace. The error page
touches nothing but the request and the session cookie; when even rendering it fails, a
fixed bilingual page is the answer.

The app's FHIR-speaking endpoints (``/fhir/...``, ``/referrals``, the notification
endpoints) answer their callers, which are programs, with an OperationOutcome instead
(``web._outcomes``), as their own refusals already do.
"""

from __future__ import annotations

import logging
import secrets
import traceback

from flask import Blueprint, Flask, request
from werkzeug.exceptions import HTTPException, InternalServerError
from werkzeug.wrappers import Response

from fhir_burnout.errors import FhirBurnoutError
from fhir_burnout.web._i18n import translate
from fhir_burnout.web._outcomes import outcome_response
from fhir_burnout.web._rate_limits import retry_after
from fhir_burnout.web._render import language, render

bp = Blueprint("help", __name__)
log = logging.getLogger(__name__)

#: Paths of the endpoints that programs call: their errors are OperationOutcomes.
API_PREFIXES = ("/fhir/", "/referrals", "/koppeltaal/notify", "/.well-known/")

#: The message on the error page, by status; any other status gets ``error_page_other``.
_MESSAGES = {
    404: "error_page_not_found",
    405: "error_page_method",
    413: "error_too_large",
    429: "error_slow_down",
    500: "error_page_broken",
}

#: The last resort, when not even the error page renders: plain, in both languages.
FALLBACK = """<!doctype html>
<html lang="nl"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Er ging iets mis</title></head>
<body>
<h1>Er ging bij ons iets mis</h1>
<p>Dat ligt niet aan jou. Probeer het zo nog eens. <a href="/">Terug naar je overzicht</a></p>
<h2>Direct hulp nodig?</h2>
<p>Denk je aan zelfdoding? Bel 113 Zelfmoordpreventie: <a href="tel:08000113">0800-0113</a>
(gratis, dag en nacht) of chat op <a href="https://www.113.nl/">113.nl</a>.</p>
<p>Bel je huisarts, of 's avonds en in het weekend de huisartsenpost.</p>
<p>Is er direct gevaar? Bel <a href="tel:112">112</a>.</p>
<div lang="en">
<h2>Something went wrong on our side</h2>
<p>It is not your fault. Please try again in a moment. <a href="/">Back to your overview</a></p>
<p>Thinking about suicide? Call 113 Suicide Prevention: <a href="tel:08000113">0800-0113</a>
(free, day and night) or chat at <a href="https://www.113.nl/">113.nl</a>. Call your GP,
or in the evening and at weekends the out-of-hours GP service. In immediate danger? Call
<a href="tel:112">112</a>.</p>
</div>
</body></html>
"""


@bp.get("/hulp")
def crisis_help() -> tuple[str, int]:
    """Whom to call now: 113, the GP or out-of-hours GP, 112; no sign-in, no database."""
    return render("help.html")


class _HttpRefusalError(FhirBurnoutError):
    """An HTTP error (unknown path, wrong method, too large) on a FHIR-speaking endpoint."""

    def __init__(self, error: HTTPException) -> None:
        super().__init__(error.description or error.name)
        self.code = {
            404: "not-found",
            405: "not-supported",
            413: "too-long",
            429: "throttled",
        }.get(error.code or 500, "processing" if (error.code or 500) < 500 else "exception")


def _is_api() -> bool:
    return request.path.startswith(API_PREFIXES)


def error_page(status: int, reference: str | None = None) -> Response:
    """The page for ``status`` in the person's language, with crisis help and a way back
    (and the ``reference`` the log has, to quote to the practice)."""
    message_key = _MESSAGES.get(status, "error_page_other")
    try:
        message = translate(message_key, language())
        if reference:
            message += " " + translate("error_reference", language(), reference=reference)
        page, _ = render("error.html", message=message)
        return Response(page, status=status, mimetype="text/html")
    except Exception as exc:  # the last answer must not fail itself
        log.error("the error page failed too: %s", type(exc).__name__)
        return Response(FALLBACK, status=status, mimetype="text/html")


def _http_error(error: HTTPException) -> Response:
    status = error.code or 500
    api = _is_api()
    response = outcome_response(_HttpRefusalError(error), status) if api else error_page(status)
    allow = dict(error.get_headers()).get("Allow")
    if allow is not None:  # 405: the methods this address does take (RFC 9110, 15.5.6)
        response.headers["Allow"] = allow
    if status == 429:  # over a rate limit: when to come back (RFC 6585 §4)
        response.headers["Retry-After"] = retry_after()
    return response


def _unhandled(error: Exception) -> Response:
    # The type, a reference the page shows too, the route (its rule: a path can hold an
    # invitation code) and the frames (file, line, our source text), never the message:
    # a database error's message can hold values (PostgreSQL's DETAIL quotes the row),
    # which may be someone's answers or a token.
    reference = secrets.token_hex(4)
    route = request.url_rule.rule if request.url_rule is not None else "?"
    frames = "".join(traceback.format_tb(error.__traceback__))
    log.error("unhandled %s [%s] at %s\n%s", type(error).__name__, reference, route, frames)
    if _is_api():
        refusal = _HttpRefusalError(InternalServerError(f"internal error; reference {reference}"))
        return outcome_response(refusal, 500)
    return error_page(500, reference)


def init_app(app: Flask) -> None:
    """The /hulp page and the error pages on ``app``."""
    app.register_blueprint(bp)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unhandled)
