"""INSERT … ON CONFLICT DO UPDATE, on SQLite and PostgreSQL alike."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session


def upsert(
    db: Session, table: type[Any], rows: Sequence[dict[str, Any]], key: str | tuple[str, ...]
) -> None:
    """Insert ``rows`` into ``table`` (a mapped class), or where a row with the same ``key``
    (its primary key: a column, or a tuple of them) exists, set the other columns given: one
    statement, and no race between a look and a write when two processes record the same
    thing at once."""
    insert = postgresql_insert if db.get_bind().dialect.name == "postgresql" else sqlite_insert
    statement = insert(table)
    keys = (key,) if isinstance(key, str) else key
    columns = [c for c in rows[0] if c not in keys]
    db.execute(
        statement.on_conflict_do_update(
            index_elements=list(keys), set_={c: statement.excluded[c] for c in columns}
        ),
        list(rows),
    )
