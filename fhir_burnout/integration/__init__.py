"""The integration skeleton shared by every way of connecting an EHR: SMART, Koppeltaal, a
future third (docs/architecture.md, "The seam where an EHR connects").

What is the same for every mode lives here; what differs is handed in by the mode's
adapter where the parts are composed (the worker command, the web app factory, the demo),
so this package never imports an adapter.
"""

from __future__ import annotations

from fhir_burnout.integration._clients import (
    Connection,
    EhrClients,
    SessionTokens,
    backend_client,
)

__all__: list[str] = []
__all__ += [  # clients: one pool per process, per EHR and thread, its discovery and tokens
    "Connection", "EhrClients", "SessionTokens", "backend_client",
]  # fmt: skip
