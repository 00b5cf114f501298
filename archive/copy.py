"""Copying a whole archive to another database (SQLite to PostgreSQL, or back): `zwgk db copy`.

Rows keep their ids, so document ids, links and exports stay the same. Tables are
copied in dependency order in batches (memory stays flat), the search index is
rebuilt on the target by its own backend's means, and PostgreSQL's id sequences
are moved past the copied ids. The target must be empty; leases are not copied
(they belong to running processes), nor the scheduler's job store (the scheduler
writes its jobs again when it starts).
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Connection, Engine, func, inspect, select, text

from .db import create_archive_engine, ensure_schema
from .errors import ArchiveError
from .models import Base, Lease, SearchText
from .search import index_existing_versions

SKIPPED = {Lease.__tablename__, SearchText.__tablename__}


def copy_archive(source: Engine, target_url: str, batch: int = 1000,
                 progress: Callable[[str, int], None] = lambda table, rows: None) -> dict[str, int]:
    """Copy every row of ``source`` into the empty archive at ``target_url``; returns rows per table."""
    target = create_archive_engine(target_url)
    try:
        ensure_schema(target)
        if any(table_counts(target).values()):
            raise ArchiveError(f"{target.url.render_as_string()} already holds data: copy into an empty archive")
        copied: dict[str, int] = {}
        with source.connect() as reading, target.begin() as writing:
            for table in Base.metadata.sorted_tables:
                if table.name in SKIPPED:
                    continue
                rows = reading.execution_options(yield_per=batch).execute(select(table).order_by(*table.primary_key))
                count = 0
                for chunk in rows.partitions(batch):
                    writing.execute(table.insert(), [row._asdict() for row in chunk])
                    count += len(chunk)
                    progress(table.name, count)
                copied[table.name] = count
            index_existing_versions(writing)
            copied[SearchText.__tablename__] = writing.execute(
                select(func.count()).select_from(SearchText)).scalar_one()
            if writing.dialect.name == "postgresql":
                _move_sequences(writing)
        return copied
    finally:
        target.dispose()


def _move_sequences(connection: Connection) -> None:
    """Explicit ids leave PostgreSQL's sequences behind: start them after the largest copied id."""
    for table in Base.metadata.sorted_tables:
        columns = [column for column in table.primary_key if column.autoincrement is True or (
            column.autoincrement == "auto" and column.type.python_type is int and len(table.primary_key) == 1)]
        for column in columns:
            sequence = connection.scalar(text("SELECT pg_get_serial_sequence(:table, :column)"),
                                         {"table": table.name, "column": column.name})
            if sequence:
                connection.execute(text(f"SELECT setval(:sequence, COALESCE((SELECT max({column.name}) "
                                        f"FROM {table.name}), 0) + 1, false)"), {"sequence": sequence})


def table_counts(engine: Engine) -> dict[str, int]:
    """Rows per archive table, to compare a copy with its original."""
    names = set(inspect(engine).get_table_names())
    with engine.connect() as connection:
        return {table.name: connection.execute(select(func.count()).select_from(table)).scalar_one()
                for table in Base.metadata.sorted_tables if table.name in names and table.name not in SKIPPED}
