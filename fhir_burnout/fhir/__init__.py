"""The FHIR REST client."""

from __future__ import annotations

from fhir_burnout.fhir._client import FhirClient

__all__ = ["FhirClient"]
