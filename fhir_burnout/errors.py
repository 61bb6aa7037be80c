"""The one error tree of fhir_burnout.

Everything fhir_burnout raises derives from :class:`FhirBurnoutError`, carries the FHIR
issue severity and type, and renders itself as an OperationOutcome::

    FhirBurnoutError                    (exception)
    ├── ContentError, ValueError        (invalid)      content/ or questionnaires/ unreadable
    │   └── settings.SafetyConfigError  (invalid)      no safety promise or owner: no app
    ├── ValidationProblemsError, ValueError    (invalid)      validation found problems
    ├── referral.ReferralLetterError, ValueError  (invalid, too-long)  a letter we refuse
    └── FhirServerError                 (exception)    a FHIR server answered with an error
        ├── FhirConnectionError         (transient)    no answer: refused, timed out, reset
        └── ForeignUrlError             (security)     a link to elsewhere: our token stays home

Bad-input errors also subclass ``ValueError``, as requests does.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = [
    "ContentError",
    "FhirBurnoutError",
    "FhirConnectionError",
    "FhirServerError",
    "ForeignUrlError",
    "ValidationProblemsError",
]


class FhirBurnoutError(Exception):
    """Root of every error fhir_burnout raises."""

    severity, code = "error", "exception"  # FHIR issue-severity, issue-type

    def issues(self) -> list[dict[str, Any]]:
        """The OperationOutcome issues that describe this error."""
        return [{"severity": self.severity, "code": self.code, "diagnostics": str(self)}]

    def outcome(self) -> dict[str, Any]:
        """This error as a FHIR OperationOutcome (JSON)."""
        return {"resourceType": "OperationOutcome", "issue": self.issues()}


class ContentError(FhirBurnoutError, ValueError):
    """The programme's source files cannot be read (a file, a location, what is wrong)."""

    code = "invalid"

    def __init__(self, file: str, location: str, message: str) -> None:
        super().__init__(f"{file}: {location}: {message}" if location else f"{file}: {message}")
        self.file, self.location, self.message = file, location, message


class ValidationProblemsError(FhirBurnoutError, ValueError):
    """Validation found problems; each is one line of the message."""

    code = "invalid"

    def __init__(self, problems: Sequence[object]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))

    def issues(self) -> list[dict[str, Any]]:
        """One OperationOutcome issue per problem."""
        return [
            {"severity": "error", "code": "invalid", "diagnostics": str(p)} for p in self.problems
        ]


class FhirServerError(FhirBurnoutError):
    """A FHIR server answered with an error status; keeps its OperationOutcome and request."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        method: str = "",
        url: str = "",
        outcome: dict[str, Any] | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.method, self.url = status, method, url
        self.server_outcome = outcome
        #: seconds the server asked us to wait (Retry-After on 429 and 503), if it said
        self.retry_after = retry_after

    def issues(self) -> list[dict[str, Any]]:
        """The server's own issues when it sent an OperationOutcome, else ours."""
        if self.server_outcome and self.server_outcome.get("issue"):
            return list(self.server_outcome["issue"])
        return super().issues()

    def __str__(self) -> str:
        text = super().__str__()
        for issue in (self.server_outcome or {}).get("issue", []):
            detail = issue.get("diagnostics") or issue.get("details", {}).get("text", "")
            where = ", ".join(issue.get("expression", []) or issue.get("location", []))
            text += f"\n  {issue.get('severity', 'error')}: {detail}" + (
                f" (at {where})" if where else ""
            )
        return text


class FhirConnectionError(FhirServerError):
    """The FHIR server could not be reached or did not answer in time."""

    code = "transient"


class ForeignUrlError(FhirServerError):
    """A FHIR server's answer sent us to an address outside its base (a Bundle's ``next``
    link to another host, say). Following it would hand our bearer token to whoever is
    there, so the client refuses (as httpx drops credentials on a cross-origin redirect)."""

    code = "security"
