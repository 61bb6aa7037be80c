"""The Dutch citizen service number (BSN) and its 11-test (elfproef)."""

from __future__ import annotations

#: The NamingSystem of the BSN in Dutch FHIR profiles (nl-core, zib Patient).
BSN_SYSTEM = "http://fhir.nl/fhir/NamingSystem/bsn"

_WEIGHTS = (9, 8, 7, 6, 5, 4, 3, 2, -1)


def valid_bsn(bsn: str) -> bool:
    """Whether ``bsn`` is 9 digits that pass the BSN 11-test.

    The 11-test (elfproef) every BSN passes: the digits, weighted 9, 8, ..., 2 and the
    last one -1, sum to a multiple of 11. Unlike the old bank-account test the last
    weight is -1; a sum of 0 (000000000) is refused too.
    """
    if len(bsn) != 9 or not bsn.isascii() or not bsn.isdigit():
        return False
    total = sum(int(digit) * weight for digit, weight in zip(bsn, _WEIGHTS, strict=True))
    return total != 0 and total % 11 == 0
