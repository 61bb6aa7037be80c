"""The content model, the builder of FHIR resources, the package writer and validation."""

from __future__ import annotations

from fhir_burnout.fhir import safe_xml_parser
from fhir_burnout.resources._build import build_resources, load_questionnaire
from fhir_burnout.resources._content import load_programme
from fhir_burnout.resources._fhirjson import translations
from fhir_burnout.resources._model import Module, Phase, Programme, Text, Track
from fhir_burnout.resources._package import (
    WrittenPackage,
    bundle_from_xml,
    bundle_to_xml,
    read_package,
    write_package,
)
from fhir_burnout.resources._problems import Problem
from fhir_burnout.resources._publish import PublishStep, plan_request, publish
from fhir_burnout.resources._safety_rules import load_safety_rules
from fhir_burnout.resources._validate import load_artifact, validate_artifact, validate_sources

__all__ = [
    "Module",
    "Phase",
    "Problem",
    "Programme",
    "Text",
    "Track",
    "WrittenPackage",
    "build_resources",
    "bundle_from_xml",
    "bundle_to_xml",
    "load_artifact",
    "load_programme",
    "load_safety_rules",
    "read_package",
    "safe_xml_parser",
    "validate_artifact",
    "validate_sources",
    "write_package",
]
__all__ += [  # imports18: what the CLI and the demo used from private modules
    "PublishStep",
    "load_questionnaire",
    "plan_request",
    "publish",
    "translations",
]
