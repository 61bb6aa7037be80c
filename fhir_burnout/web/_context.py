"""The app's shared state, typed: one :class:`AppContext` per app, read with
:func:`app_context` (docs/architecture.md, "web").

What ``create_app`` builds once (settings, engines, content, the session store, the HTTP
session, the SMART discovery and the FHIR client pool) is fixed for the app's life: the
dataclass is frozen, so no view can swap a part for the next request. What is filled on
first use (the pool's Backend Services clients, an authorization server's keys) is cached
inside it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import requests
from flask import Flask, current_app
from sqlalchemy import Engine

from fhir_burnout.integration import EhrClients
from fhir_burnout.questionnaire import SafetyRule
from fhir_burnout.referral import TriageContent
from fhir_burnout.settings import Settings
from fhir_burnout.smart_launch import DiscoveryCache
from fhir_burnout.workflow import Definitions

if TYPE_CHECKING:
    from flask_limiter import Limiter

    from fhir_burnout.web._memo import Memo
    from fhir_burnout.web._sessions import SessionStore

__all__ = ["EXTENSION", "AppContext", "app_context"]

#: The key of the context in ``app.extensions``.
EXTENSION = "fhir_burnout"


@dataclass(frozen=True, eq=False)
class AppContext:
    """Everything a request of this app shares with the others."""

    settings: Settings
    engine: Engine
    reader: Engine  # for requests that only read (``db.reader``)
    definitions: Definitions
    triage: TriageContent
    safety_rules: tuple[SafetyRule, ...]
    memo: Memo
    store: SessionStore
    http: requests.Session
    discovery: DiscoveryCache
    #: The FHIR clients with the app's Backend Services tokens, per EHR and thread, with
    #: each mode's connection (``create_app``; docs/architecture.md, "The seam where an EHR
    #: connects").
    ehr_clients: EhrClients
    limiter: Limiter | None = None
    #: An authorization server's keys by their URI, with the monotonic time they were read.
    jwks_cache: dict[str, tuple[float, dict[str, Any]]] = field(default_factory=dict)

    def __getitem__(self, name: str) -> Any:
        """``context["engine"]``: the old dict's spelling, kept for tests and scripts that
        read the app's parts that way (``bench/``, ``tests/``); new code uses attributes."""
        if name.startswith("_") or name not in _FIELDS:
            raise KeyError(name)
        return getattr(self, name)


_FIELDS = frozenset(AppContext.__dataclass_fields__)


def app_context(app: Flask | None = None) -> AppContext:
    """``app``'s context, else the current app's (inside a request or an app context)."""
    context: AppContext = (app or current_app).extensions[EXTENSION]
    return context
