"""SMART App Launch 2.2 and Backend Services: protocol code without web framework or storage."""

from __future__ import annotations

from fhir_burnout.smart_launch._access_token import require_scope, verify_access_token
from fhir_burnout.smart_launch._backend_services import (
    ASSERTION_TYPE,
    AccessToken,
    BackendTokenSource,
    TokenRequestError,
    assertion_algorithm,
    backend_token,
    backend_token_source,
    client_assertion,
    post_token_request,
    with_kid,
)
from fhir_burnout.smart_launch._discovery import DiscoveryCache, SmartConfiguration, discover
from fhir_burnout.smart_launch._errors import (
    AccessTokenError,
    AuthorizationDeniedError,
    DiscoveryError,
    IdTokenError,
    InsufficientScopeError,
    LaunchError,
    StateError,
    UntrustedIssuerError,
)
from fhir_burnout.smart_launch._id_token import fetch_jwks, jwt_header, verify_id_token
from fhir_burnout.smart_launch._keys import current_private_key, generate_key, public_jwks
from fhir_burnout.smart_launch._launch import (
    ID_TOKEN_NONCES,
    MODES,
    AuthMethod,
    CodeExchange,
    IdTokenNonce,
    IntegrationMode,
    LaunchClient,
    LaunchResult,
    PendingLaunch,
    Signing,
    authorization_request,
    begin_launch,
    complete_launch,
    exchange_code,
    probe_client_authentication,
    refresh,
    role_scopes,
    trusted_ehr,
)
from fhir_burnout.smart_launch._revocation import TokenKind, revocation_endpoint, revoke
from fhir_burnout.smart_launch._scopes import (
    ROLES,
    Role,
    ScopeRequest,
    covers,
    launch_scopes,
    missing_purposes,
    worker_scopes,
)

__all__ = [
    "ROLES",
    "AccessToken",
    "AccessTokenError",
    "AuthorizationDeniedError",
    "BackendTokenSource",
    "DiscoveryCache",
    "DiscoveryError",
    "IdTokenError",
    "InsufficientScopeError",
    "LaunchClient",
    "LaunchError",
    "LaunchResult",
    "PendingLaunch",
    "Role",
    "ScopeRequest",
    "SmartConfiguration",
    "StateError",
    "TokenRequestError",
    "UntrustedIssuerError",
    "backend_token",
    "begin_launch",
    "client_assertion",
    "complete_launch",
    "discover",
    "fetch_jwks",
    "launch_scopes",
    "missing_purposes",
    "refresh",
    "require_scope",
    "revocation_endpoint",
    "revoke",
    "role_scopes",
    "trusted_ehr",
    "verify_access_token",
    "verify_id_token",
]
__all__ += [  # imports18: what settings, the CLI, koppeltaal and web used from private modules
    "ASSERTION_TYPE",
    "MODES",
    "AuthMethod",
    "IntegrationMode",
    "TokenKind",
    "current_private_key",
    "generate_key",
    "jwt_header",
    "post_token_request",
    "probe_client_authentication",
    "public_jwks",
    "worker_scopes",
]
__all__ += [  # launch18: one authorization request, one code exchange, one client assertion
    "CodeExchange", "Signing", "assertion_algorithm", "authorization_request",
    "backend_token_source", "exchange_code", "with_kid",
]  # fmt: skip
__all__ += ["ID_TOKEN_NONCES", "IdTokenNonce"]  # kt19launch: id_token_nonce per EHR
__all__ += ["covers"]  # issue 21: may the launch read the client's Encounters
