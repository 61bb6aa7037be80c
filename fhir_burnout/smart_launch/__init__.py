"""SMART App Launch 2.2 and Backend Services: protocol code without web framework or storage."""

from __future__ import annotations

from fhir_burnout.smart_launch._access_token import require_scope, verify_access_token
from fhir_burnout.smart_launch._backend_services import (
    ASSERTION_TYPE,
    AccessToken,
    BackendTokenSource,
    TokenRequestError,
    backend_token,
    client_assertion,
    post_token_request,
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
    MODES,
    AuthMethod,
    IntegrationMode,
    LaunchClient,
    LaunchResult,
    PendingLaunch,
    begin_launch,
    complete_launch,
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
