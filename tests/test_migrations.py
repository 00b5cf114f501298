"""The migrations: down to nothing and up again on both backends, ending where the models are."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from archive.db import (
    SCHEMA_REVISION,
    alembic_config,
    create_archive_engine,
    current_revision,
    upgrade,
)
from archive.models import Base

# Built by migration 0004 beside the models: the search index (an FTS5 table, a tsvector column).
SEARCH_INDEX = ("search_fts", "ix_search_texts_tokens", "tokens")


def differences(engine) -> list:
    with engine.connect() as connection:
        found = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    return [diff for diff in found if not any(name in repr(diff) for name in SEARCH_INDEX)]


def test_migrations_go_down_and_up_and_match_the_models(db_url: str) -> None:
    engine = create_archive_engine(db_url)
    upgrade(engine)
    assert current_revision(engine) == SCHEMA_REVISION
    assert differences(engine) == []
    command.downgrade(alembic_config(engine), "base")
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    upgrade(engine)
    assert current_revision(engine) == SCHEMA_REVISION and differences(engine) == []
    engine.dispose()
