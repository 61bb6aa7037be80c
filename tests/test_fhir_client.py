"""The FHIR client's reading of server answers."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from fhir_burnout.fhir._client import retry_after


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("7", 7.0),
        ("Thu, 26 Nov 2026 10:00:30 GMT", 30.0),
        ("Thu, 26 Nov 2026 09:59:00 GMT", 0.0),
        ("soon", None),
        (None, None),
    ],
)
def test_retry_after_is_read_as_seconds_or_as_a_date(header, seconds):
    now = datetime(2026, 11, 26, 10, 0, 0, tzinfo=UTC).timestamp()
    assert retry_after(header, now=now) == seconds
