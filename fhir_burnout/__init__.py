"""fhir_burnout: a burn-out self-help programme delivered as FHIR R4 resources."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
