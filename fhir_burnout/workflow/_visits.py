"""When a care professional last looked at a client's page: the default start of "Sinds de
vorige sessie" where the EHR tells us no last contact.

A care professional opens a client's page to prepare a session, and again during or after
it; what is new for the next session is what happened after that preparation. So we keep,
per care professional and client, the first time they opened the page on each day (one row
per day, never the later views of that day), and the summary starts at the first view of
the latest earlier day. Only the two latest days are kept: nothing more is needed, and the
table says no more about anyone than "looked at this client on these days" (no health
data; the same fact the EHR's own audit log keeps).
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlalchemy import DateTime, String, delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from fhir_burnout.db import Base

#: The days kept per care professional and client: today's and the one before it.
KEPT_DAYS = 2


class VisitRow(Base):
    """The first time a care professional opened a client's page on one day (UTC)."""

    __tablename__ = "practitioner_visit"
    fhir_base: Mapped[str] = mapped_column(String(512), primary_key=True)
    patient: Mapped[str] = mapped_column(String(128), primary_key=True)
    practitioner: Mapped[str] = mapped_column(String(256), primary_key=True)
    day: Mapped[str] = mapped_column(String(10), primary_key=True)  # ISO date, UTC
    first_seen: Mapped[datetime] = mapped_column(DateTime(timezone=True))


def _aware(value: datetime) -> datetime:
    # SQLite hands timezone-aware columns back naive; they were written in UTC.
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _day(now: datetime) -> date:
    return now.astimezone(UTC).date()


def last_visit(
    db: Session, *, fhir_base: str, patient: str, practitioner: str, now: datetime
) -> datetime | None:
    """The first view, on the latest day before ``now``'s, of this client's page by this
    care professional; None when they have not looked before today."""
    found = db.scalar(
        select(VisitRow.first_seen)
        .where(
            VisitRow.fhir_base == fhir_base.rstrip("/"),
            VisitRow.patient == patient,
            VisitRow.practitioner == practitioner,
            VisitRow.day < _day(now).isoformat(),
        )
        .order_by(VisitRow.day.desc())
        .limit(1)
    )
    return _aware(found) if found is not None else None


def record_visit(
    db: Session, *, fhir_base: str, patient: str, practitioner: str, now: datetime
) -> None:
    """Remember that this care professional looked at this client's page now, if it is
    their first look today; forget the days before the two latest. In the caller's
    transaction; two first looks at the same moment keep one row."""
    fhir_base, today = fhir_base.rstrip("/"), _day(now).isoformat()
    who = (
        VisitRow.fhir_base == fhir_base,
        VisitRow.patient == patient,
        VisitRow.practitioner == practitioner,
    )
    if db.get(VisitRow, (fhir_base, patient, practitioner, today)) is not None:
        return
    try:
        with db.begin_nested():
            db.add(VisitRow(fhir_base=fhir_base, patient=patient, practitioner=practitioner,
                            day=today, first_seen=now))  # fmt: skip
    except IntegrityError:
        return  # another request of theirs wrote today's row first: that one counts
    days = db.scalars(select(VisitRow.day).where(*who).order_by(VisitRow.day.desc())).all()
    if len(days) > KEPT_DAYS:
        db.execute(delete(VisitRow).where(*who, VisitRow.day < days[KEPT_DAYS - 1]))
