"""SMART App Launch and Backend Services (grows in the SMART launch issue)."""

from __future__ import annotations

from fhir_burnout.smart_launch._backend_services import (
    AccessToken,
    TokenRequestError,
    backend_token,
    client_assertion,
)

__all__ = ["AccessToken", "TokenRequestError", "backend_token", "client_assertion"]
