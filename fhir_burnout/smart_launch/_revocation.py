"""OAuth 2.0 Token Revocation (RFC 7009) at an EHR's authorization server.

SMART App Launch 2.2 lists ``revocation_endpoint`` among the optional fields of
``.well-known/smart-configuration``; a server that only publishes a CapabilityStatement
names it in the ``oauth-uris`` extension as ``revoke``. The app authenticates there as at
the token endpoint (RFC 7009 §2.1). A server without one has nothing to revoke with: the
tokens then simply run out.
"""

from __future__ import annotations

from typing import Literal

import requests

from fhir_burnout.smart_launch._backend_services import TokenRequestError
from fhir_burnout.smart_launch._discovery import SmartConfiguration
from fhir_burnout.smart_launch._launch import LaunchClient, _client_auth

TokenKind = Literal["refresh_token", "access_token"]


def revocation_endpoint(config: SmartConfiguration) -> str | None:
    """Where the EHR revokes tokens, if it says."""
    found = config.raw.get("revocation_endpoint") or config.raw.get("revoke")
    return str(found) if found else None


def revoke(
    ehr: LaunchClient,
    config: SmartConfiguration,
    token: str,
    session: requests.Session,
    *,
    hint: TokenKind,
    timeout: float = 5.0,
) -> bool:
    """Ask the EHR to revoke ``token`` (RFC 7009 §2.1); False when it offers no revocation.
    :class:`TokenRequestError` when it does not answer or refuses (§2.2.1); a token it
    does not know counts as revoked (§2.2: it answers 200)."""
    endpoint = revocation_endpoint(config)
    if endpoint is None:
        return False
    extra, basic = _client_auth(ehr, config.token_endpoint)
    form = {"token": token, "token_type_hint": hint, **extra}
    try:
        response = session.post(endpoint, data=form, auth=basic, timeout=timeout)
    except requests.RequestException as exc:
        raise TokenRequestError("temporarily_unavailable", type(exc).__name__) from None
    if response.status_code != 200:
        try:
            error = str(response.json().get("error", ""))
        except (ValueError, AttributeError):
            error = ""
        raise TokenRequestError(error or f"HTTP {response.status_code}", "", response.status_code)
    return True
