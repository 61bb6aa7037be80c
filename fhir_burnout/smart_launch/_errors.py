"""Errors of the launch: each is a refusal a person or integrator can act on.

FhirBurnoutError
└── LaunchError                (security)   the launch cannot go on
    ├── UntrustedIssuerError               ``iss`` is not a configured EHR
    ├── DiscoveryError                     no usable SMART configuration
    ├── StateError                         unknown, reused or mismatched ``state``
    ├── AuthorizationDeniedError           the server sent ``error=`` to the callback
    └── IdTokenError                       the id_token failed verification
AccessTokenError               (login)      a bearer token sent to us does not verify (401)
InsufficientScopeError         (forbidden)  it verifies, but does not allow this (403)
TokenRequestError (in _backend_services)   the token endpoint refused a request
"""

from __future__ import annotations

from fhir_burnout.errors import FhirBurnoutError


class LaunchError(FhirBurnoutError):
    """A SMART launch was refused; the message is safe to show (no tokens, no secrets)."""

    code = "security"


class UntrustedIssuerError(LaunchError):
    """The ``iss`` of a launch is not one of the configured, trusted EHRs."""


class DiscoveryError(LaunchError):
    """The EHR's SMART configuration could not be found or lacks what we need."""


class StateError(LaunchError):
    """The callback's ``state`` is unknown, already used, or belongs to another launch."""


class AuthorizationDeniedError(LaunchError):
    """The authorization server answered the callback with an OAuth2 error."""

    def __init__(self, error: str, description: str = "") -> None:
        super().__init__(f"{error}: {description}" if description else error)
        self.error, self.description = error, description


class IdTokenError(LaunchError):
    """The id_token's signature or claims are not acceptable (OpenID Connect Core §3.1.3.7)."""


class AccessTokenError(FhirBurnoutError):
    """A bearer token presented to the app's API is missing, invalid or expired (HTTP 401)."""

    code = "login"


class InsufficientScopeError(FhirBurnoutError):
    """A valid bearer token whose scopes do not cover the request (HTTP 403)."""

    code = "forbidden"
