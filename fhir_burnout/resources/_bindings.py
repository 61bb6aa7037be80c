"""Required code bindings of FHIR R4 that the fhir.resources models do not check.

Only the elements our package uses; each list is the whole required value set (R4 4.0.1).
"""

from __future__ import annotations

PUBLICATION_STATUS = frozenset({"draft", "active", "retired", "unknown"})

ITEM_TYPES = frozenset(
    {
        "group", "display", "boolean", "decimal", "integer", "date", "dateTime", "time",
        "string", "text", "url", "choice", "open-choice", "attachment", "reference",
        "quantity",
    }
)  # fmt: skip

ENABLE_WHEN_OPERATORS = frozenset({"exists", "=", "!=", ">", "<", ">=", "<="})
ENABLE_BEHAVIORS = frozenset({"all", "any"})

ACTION_RELATIONSHIPS = frozenset(
    {
        "before-start", "before", "before-end", "concurrent-with-start", "concurrent",
        "concurrent-with-end", "after-start", "after", "after-end",
    }
)  # fmt: skip
ACTION_BEHAVIORS = {
    "groupingBehavior": frozenset({"visual-group", "logical-group", "sentence-group"}),
    "selectionBehavior": frozenset(
        {"any", "all", "all-or-none", "exactly-one", "at-most-one", "one-or-more"}
    ),
    "requiredBehavior": frozenset({"must", "could", "must-unless-documented"}),
    "precheckBehavior": frozenset({"yes", "no"}),
    "cardinalityBehavior": frozenset({"single", "multiple"}),
}

REQUEST_INTENTS = frozenset(
    {
        "proposal", "plan", "directive", "order", "original-order", "reflex-order",
        "filler-order", "instance-order", "option",
    }
)  # fmt: skip
ACTIVITY_KINDS = frozenset(
    {
        "Appointment", "AppointmentResponse", "CarePlan", "Claim", "CommunicationRequest",
        "Contract", "DeviceRequest", "EnrollmentRequest", "ImmunizationRecommendation",
        "MedicationRequest", "NutritionOrder", "ServiceRequest", "SupplyRequest", "Task",
        "VisionPrescription",
    }
)  # fmt: skip

CODE_SYSTEM_CONTENT = frozenset({"not-present", "example", "fragment", "complete", "supplement"})
PROPERTY_TYPES = frozenset(
    {"code", "Coding", "string", "integer", "boolean", "dateTime", "decimal"}
)
STRUCTURE_KINDS = frozenset({"primitive-type", "complex-type", "resource", "logical"})
DERIVATIONS = frozenset({"specialization", "constraint"})
CONTEXT_TYPES = frozenset({"fhirpath", "element", "extension"})
UNITS_OF_TIME = frozenset({"s", "min", "h", "d", "wk", "mo", "a"})
RELATED_ARTIFACT_TYPES = frozenset(
    {
        "documentation", "justification", "citation", "predecessor", "successor",
        "derived-from", "depends-on", "composed-of",
    }
)  # fmt: skip
BUNDLE_TYPES = frozenset(
    {
        "document", "message", "transaction", "transaction-response", "batch",
        "batch-response", "history", "searchset", "collection",
    }
)  # fmt: skip
