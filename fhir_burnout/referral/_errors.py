"""Why a referral letter was refused: one problem per thing wrong, each with its place.

:class:`ReferralLetterError` sits in the error tree of :mod:`fhir_burnout.errors` as::

    FhirBurnoutError
    └── ReferralLetterError, ValueError   (invalid, or too-long)   a letter we refuse

Messages are written for an integrator at a practice: what is wrong and where (line and
element path), never the letter's content, so an error can be logged or shown without
leaking patient data.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from fhir_burnout.errors import FhirBurnoutError


@dataclass(frozen=True)
class LetterProblem:
    """One thing wrong with a letter: where (line, element path) and what.

    ``code`` is the FHIR R4 issue-type (http://hl7.org/fhir/R4/valueset-issue-type.html)
    the problem is reported with: ``invalid``, ``structure`` (not XML, not our letter) or
    ``too-long`` (over the size limit).
    """

    line: int | None
    path: str
    message: str
    code: str = "invalid"

    def __str__(self) -> str:
        where = ", ".join(
            part for part in (f"line {self.line}" if self.line else "", self.path) if part
        )
        return f"{where}: {self.message}" if where else self.message


class ReferralLetterError(FhirBurnoutError, ValueError):
    """The referral letter was refused; ``problems`` says every reason, one per line."""

    code = "invalid"

    def __init__(self, problems: Sequence[LetterProblem]) -> None:
        self.problems = tuple(problems)
        if self.problems and all(p.code == "too-long" for p in self.problems):
            self.code = "too-long"
        lines = "\n".join(f"  {p}" for p in self.problems)
        super().__init__(f"the referral letter was refused:\n{lines}")

    def issues(self) -> list[dict[str, Any]]:
        """One OperationOutcome issue per problem; ``location`` is its element path
        (R4 OperationOutcome.issue.location: a simple XPath of element names)."""
        issues = []
        for problem in self.problems:
            issue: dict[str, Any] = {
                "severity": "error",
                "code": problem.code,
                "diagnostics": str(problem),
            }
            if problem.path:
                issue["location"] = [problem.path]
            issues.append(issue)
        return issues
