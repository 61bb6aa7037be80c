"""The integration skeleton shared by every way of connecting an EHR: SMART, Koppeltaal, a
future third (docs/architecture.md, the adapter seam). An adapter (``referral``,
``koppeltaal``) brings only what differs: here are the poller and its poll-state table, the
feeds each configured EHR has, the notification channel (its URL and token) and the one
way we subscribe.
"""

from __future__ import annotations

from fhir_burnout.integration._channel import Channel, channel_id
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
__all__ += [  # polls: the poller, its feeds and state, notification channels, subscribing
    "DEFAULT_INTERVAL", "KOPPELTAAL_TASKS", "REFERRALS", "Channel", "Feed", "PollOutcome",
    "PollResult", "PollRow", "Poller", "Subscribed", "Watched", "changed_since", "channel_id",
    "poll_row", "subscribe", "want_poll", "watched",
]  # fmt: skip
