"""The workflow's errors: what does not exist, what its state refuses, and a lost race."""

from __future__ import annotations

from fhir_burnout.errors import FhirBurnoutError


class NotFoundError(FhirBurnoutError, LookupError):
    """An enrolment, phase or Task that does not exist."""

    code = "not-found"


class EnrolmentStateError(FhirBurnoutError, ValueError):
    """The enrolment is not in a state that allows this (resume what is not paused, say)."""

    code = "business-rule"


class TaskChangedError(FhirBurnoutError):
    """A Task read earlier (``expect``) was changed by someone else before this change."""

    code = "conflict"
