"""When a failing periodic job (the reconciliation poll of an EHR, the Task poll of a
Koppeltaal domain) may run again: ``base * 2**(failures - 1)`` seconds after its last
failure, capped; a success forgets the failures. Kept in the process only."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from fhir_burnout.errors import FhirServerError


@dataclass
class Retries:
    """Per key (an EHR's FHIR base): how many failures in a row, and when to try again."""

    base: float = 5.0
    cap: float = 300.0
    _failures: dict[str, int] = field(default_factory=dict, repr=False)
    _retry_at: dict[str, datetime] = field(default_factory=dict, repr=False)

    def waiting(self, key: str, now: datetime) -> bool:
        """Whether ``key`` failed recently and must wait still."""
        retry_at = self._retry_at.get(key)
        return retry_at is not None and now < retry_at

    def failed(self, key: str, now: datetime) -> float:
        """Record a failure; the seconds until ``key`` may run again."""
        failures = self._failures.get(key, 0) + 1
        self._failures[key] = failures
        delay = min(self.cap, self.base * 2.0 ** (failures - 1))
        self._retry_at[key] = now + timedelta(seconds=delay)
        return delay

    def succeeded(self, key: str) -> None:
        """Forget ``key``'s failures."""
        self._failures.pop(key, None)
        self._retry_at.pop(key, None)


def error_kind(error: Exception) -> str:
    """What a failure may say in a log: its kind and HTTP status, never its message (those
    quote URLs with search parameters, and database errors quote statements: health data)."""
    status = error.status if isinstance(error, FhirServerError) else None
    return type(error).__name__ + (f" {status}" if status else "")
