"""The integration skeleton shared by every way of connecting an EHR: SMART, Koppeltaal, a
future third (docs/architecture.md, "The seam where an EHR connects").

What is the same for every mode lives here: the client pool with its discovery and tokens,
the poller and its poll-state table, the feeds each configured EHR has, the notification
channel (its URL and token) and the one way we subscribe. What differs is handed in by the
mode's adapter where the parts are composed (the worker command, the web app factory, the
demo), so this package never imports an adapter.
"""

from __future__ import annotations

from fhir_burnout.integration._channel import Channel, channel_id
from fhir_burnout.integration._clients import (
    Connection,
    EhrClients,
    SessionTokens,
    backend_client,
)
from fhir_burnout.integration._feeds import KOPPELTAAL_TASKS, REFERRALS, Watched, watched
from fhir_burnout.integration._poll import (
    Feed,
    PollResult,
    changed_since,
    poll_row,
    want_poll,
)
from fhir_burnout.integration._poller import DEFAULT_INTERVAL, Poller, PollOutcome
from fhir_burnout.integration._subscription import Subscribed, subscribe
from fhir_burnout.integration._tables import PollRow

__all__: list[str] = []
__all__ += [  # clients: one pool per process, per EHR and thread, its discovery and tokens
    "Connection", "EhrClients", "SessionTokens", "backend_client",
]  # fmt: skip
__all__ += [  # polls: the poller, its feeds and state, notification channels, subscribing
    "DEFAULT_INTERVAL", "KOPPELTAAL_TASKS", "REFERRALS", "Channel", "Feed", "PollOutcome",
    "PollResult", "PollRow", "Poller", "Subscribed", "Watched", "changed_since", "channel_id",
    "poll_row", "subscribe", "want_poll", "watched",
]  # fmt: skip
