"""The FHIR REST client, and FHIR XML read into FHIR JSON."""

from __future__ import annotations

from fhir_burnout.fhir._client import FhirClient
from fhir_burnout.fhir._xml import (
    FhirXmlError,
    resource_from_xml,
    resource_to_xml,
    safe_xml_parser,
)

__all__ = [
    "FhirClient",
    "FhirXmlError",
    "resource_from_xml",
    "resource_to_xml",
    "safe_xml_parser",
]
