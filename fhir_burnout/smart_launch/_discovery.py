"""SMART discovery (SMART App Launch 2.2 §"Conformance"): where to authorize and what is supported.

``{fhir_base}/.well-known/smart-configuration`` first; servers that predate it publish the
endpoints in the CapabilityStatement's ``oauth-uris`` extension, so that is the fallback.
Results are cached per FHIR base with an expiry, on an injected clock.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import requests

from fhir_burnout.smart_launch._errors import DiscoveryError

OAUTH_URIS = "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"


@dataclass(frozen=True)
class SmartConfiguration:
    """The parts of a SMART configuration the app relies on."""

    fhir_base: str
    authorization_endpoint: str
    token_endpoint: str
    issuer: str | None = None
    jwks_uri: str | None = None
    capabilities: frozenset[str] = frozenset()
    code_challenge_methods: frozenset[str] = frozenset()
    raw: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def supports_v2_scopes(self) -> bool:
        """Whether the server advertises SMART v2 scopes (``permission-v2``)."""
        return "permission-v2" in self.capabilities

    @property
    def source(self) -> str:
        """Where the endpoints came from: ``smart-configuration``, or ``metadata`` (the
        CapabilityStatement fallback)."""
        return (
            "metadata" if self.raw.get("from") == "CapabilityStatement" else "smart-configuration"
        )

    @property
    def supports_pkce_s256(self) -> bool:
        """Whether the server says it takes PKCE with S256."""
        return "S256" in self.code_challenge_methods


def _from_document(fhir_base: str, doc: dict[str, Any]) -> SmartConfiguration:
    try:
        return SmartConfiguration(
            fhir_base=fhir_base,
            authorization_endpoint=str(doc["authorization_endpoint"]),
            token_endpoint=str(doc["token_endpoint"]),
            issuer=doc.get("issuer"),
            jwks_uri=doc.get("jwks_uri"),
            capabilities=frozenset(doc.get("capabilities", [])),
            code_challenge_methods=frozenset(doc.get("code_challenge_methods_supported", [])),
            raw=doc,
        )
    except KeyError as missing:
        raise DiscoveryError(f"{fhir_base}: the SMART configuration has no {missing}") from None


def _from_capability_statement(fhir_base: str, cs: dict[str, Any]) -> SmartConfiguration:
    for rest in cs.get("rest", []):
        for ext in rest.get("security", {}).get("extension", []):
            if ext.get("url") != OAUTH_URIS:
                continue
            uris = {e.get("url"): e.get("valueUri") for e in ext.get("extension", [])}
            if uris.get("authorize") and uris.get("token"):
                return SmartConfiguration(
                    fhir_base=fhir_base,
                    authorization_endpoint=str(uris["authorize"]),
                    token_endpoint=str(uris["token"]),
                    raw={"from": "CapabilityStatement", **uris},
                )
    raise DiscoveryError(f"{fhir_base}: no SMART configuration and no oauth-uris in /metadata")


def _get_json(session: requests.Session, url: str, timeout: float) -> dict[str, Any] | None:
    try:
        response = session.get(url, headers={"Accept": "application/json"}, timeout=timeout)
    except requests.RequestException as exc:
        raise DiscoveryError(f"{url}: no answer ({type(exc).__name__})") from None
    if response.status_code != 200:
        return None
    try:
        data = response.json()
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def discover(
    fhir_base: str, session: requests.Session, *, timeout: float = 15.0
) -> SmartConfiguration:
    """Fetch the SMART configuration of a FHIR server (with the CapabilityStatement fallback)."""
    base = fhir_base.rstrip("/")
    doc = _get_json(session, f"{base}/.well-known/smart-configuration", timeout)
    if doc is not None:
        return _from_document(base, doc)
    cs = _get_json(session, f"{base}/metadata", timeout)
    if cs is None:
        raise DiscoveryError(
            f"{base}: neither .well-known/smart-configuration nor /metadata answered"
        )
    return _from_capability_statement(base, cs)


class DiscoveryCache:
    """SMART configurations per FHIR base, each kept for ``ttl`` seconds."""

    def __init__(
        self,
        session: requests.Session,
        *,
        ttl: float = 3600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._session, self._ttl, self._clock = session, ttl, clock
        self._entries: dict[str, tuple[float, SmartConfiguration]] = {}

    def get(self, fhir_base: str) -> SmartConfiguration:
        """The cached configuration, fetched again once expired."""
        base = fhir_base.rstrip("/")
        now = self._clock()
        cached = self._entries.get(base)
        if cached and cached[0] > now:
            return cached[1]
        config = discover(base, self._session)
        self._entries[base] = (now + self._ttl, config)
        return config
