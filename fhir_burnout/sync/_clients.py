"""FHIR clients for the worker: one per EHR and thread, with Backend Services tokens."""

from __future__ import annotations

import threading

import requests

from fhir_burnout.errors import FhirBurnoutError, FhirConnectionError
from fhir_burnout.fhir import FhirClient
from fhir_burnout.settings import Settings
from fhir_burnout.smart_launch import BackendTokenSource


class EhrClients:
    """A FHIR client per EHR and worker thread, each with a Backend Services token source
    from the settings; ``get`` is what :class:`Worker` takes as ``client_for``."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._clients: dict[tuple[str, int], FhirClient] = {}

    def get(self, fhir_base: str) -> FhirClient:
        """The client for ``fhir_base`` on this thread (made on first use)."""
        key = (fhir_base, threading.get_ident())
        with self._lock:
            if key not in self._clients:
                backend = self.settings.backend(fhir_base)
                if backend.private_jwk is None:
                    raise FhirBurnoutError(
                        f"{fhir_base}: no key for the worker (fhir-burnout keys)"
                    )
                url = f"{fhir_base.rstrip('/')}/.well-known/smart-configuration"
                try:
                    smart = requests.get(url, timeout=30).json()
                except (requests.RequestException, ValueError):
                    raise FhirConnectionError(f"GET {url}: no usable answer") from None
                source = BackendTokenSource(
                    smart["token_endpoint"], backend.client_id, backend.private_jwk, backend.scope
                )
                self._clients[key] = FhirClient(fhir_base, token_source=source)
            return self._clients[key]

    def close(self) -> None:
        """Close every client."""
        for client in self._clients.values():
            client.close()
