"""What every launch's callback does first, whatever launched it (SMART at ``/callback``,
Koppeltaal at ``/koppeltaal/callback``; docs/architecture.md, "The seam where an EHR
connects"): keep only a callback's parameters, take the pending launch this browser started
(once), check it was started by the same kind of launch, find its EHR; and, when the launch
is refused, one log line an integrator can act on.
"""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from flask import request, session

from fhir_burnout.settings import Ehr
from fhir_burnout.smart_launch import PendingLaunch, StateError
from fhir_burnout.web._context import app_context

log = logging.getLogger(__name__)

#: What an authorization server sends back (RFC 6749 §4.1.2 and §4.1.2.1); nothing else of
#: the query is read.
CALLBACK_PARAMS = ("code", "state", "error", "error_description")
#: What of an authorization server's words may reach our log: no control characters (a
#: forged line), and not more than a sentence.
_UNSAFE = re.compile(r"[^\w .,:;()/'-]")


def browser_id() -> str:
    """The opaque id that binds pending launches to this browser (kept in its session)."""
    if "browser" not in session:
        session["browser"] = secrets.token_urlsafe(24)
    return str(session["browser"])


@dataclass
class Callback:
    """A callback being handled: its parameters and, once taken, its pending launch, what
    was kept with it, and its EHR."""

    params: dict[str, str]
    pending: PendingLaunch | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    ehr: Ehr | None = None

    def take(
        self, find: Callable[[str, Sequence[Ehr]], Ehr], *, koppeltaal: bool
    ) -> tuple[PendingLaunch, dict[str, Any], Ehr]:
        """The pending launch for the callback's ``state`` (taken once, bound to this
        browser), what was kept with it, and its EHR (``find``: ``trusted_ehr`` or
        ``koppeltaal_ehr``). StateError when the other kind of launch started it."""
        state = app_context()
        self.pending, self.extra = state.store.take_pending(
            self.params.get("state", ""), browser_id()
        )
        if bool(self.extra.get("koppeltaal")) != koppeltaal:
            raise StateError("this sign-in was started by another kind of launch")
        self.ehr = find(self.pending.fhir_base, state.settings.ehrs)
        return self.pending, self.extra, self.ehr

    def refused(self, exc: Exception, reference: str) -> None:
        """Log a refused launch under ``reference`` (the page shows it too): the reason, the
        EHR, the authorization server's own error and description; never a code, state or
        token."""
        said = _UNSAFE.sub(" ", self.params.get("error_description", ""))[:160].strip()
        log.warning(
            "launch refused [%s]: %s; iss=%s; error=%s; description=%s",
            reference, type(exc).__name__, self.pending.fhir_base if self.pending else "?",
            _UNSAFE.sub(" ", self.params.get("error", ""))[:40] or "-", said or "-",
        )  # fmt: skip


def callback() -> Callback:
    """This request's callback, with only the parameters a callback has."""
    return Callback({k: v for k, v in request.args.items() if k in CALLBACK_PARAMS})
