"""A validation problem: one clear line saying where, what is wrong and what to do."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class Problem:
    """One problem found in the content or a built resource."""

    file: str
    location: str
    message: str
    fix: str = ""

    def __str__(self) -> str:
        where = f"{self.file}: {self.location}" if self.location else self.file
        return f"{where}: {self.message}" + (f"; fix: {self.fix}" if self.fix else "")
