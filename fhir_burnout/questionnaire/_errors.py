"""Errors of the questionnaire engine."""

from __future__ import annotations

from typing import Any

from fhir_burnout.errors import FhirBurnoutError


class QuestionnaireError(FhirBurnoutError, ValueError):
    """A Questionnaire the engine cannot render; ``problems`` lists every reason (linkId, text)."""

    code = "invalid"

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{link}: {text}" if link else text for link, text in problems))

    def issues(self) -> list[dict[str, Any]]:
        """One OperationOutcome issue per problem, the linkId as expression."""
        return [
            {
                "severity": "error",
                "code": "invalid",
                "diagnostics": text,
                **({"expression": [f"Questionnaire.item.where(linkId='{link}')"]} if link else {}),
            }
            for link, text in self.problems
        ]
