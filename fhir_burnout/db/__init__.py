"""The app's own database: one SQLAlchemy metadata, engines, and Alembic migrations.

SQLite is the embedded default (demo, small practice); PostgreSQL is for production, where
web processes and sync workers share one database. Tables are declared by the packages that
own them (``web``, ``workflow``, ``sync``) on :class:`Base`; the schema only changes through
the migrations in ``fhir_burnout/db/migrations``, which :func:`upgrade` applies.
"""

from __future__ import annotations

from fhir_burnout.db._base import Base
from fhir_burnout.db._engine import create_db_engine, is_postgresql, reader
from fhir_burnout.db._migrate import DatabaseError, current_revision, head_revision, upgrade
from fhir_burnout.db._upsert import upsert

__all__ = [
    "Base",
    "DatabaseError",
    "create_db_engine",
    "current_revision",
    "head_revision",
    "is_postgresql",
    "reader",
    "upgrade",
    "upsert",
]
