"""Alembic environment: migrations run on the connection ``fhir_burnout.db.upgrade`` passes."""

from __future__ import annotations

from alembic import context

from fhir_burnout.db import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through fhir_burnout.db.upgrade(engine)")
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters by copying tables
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
