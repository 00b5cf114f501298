"""Opening the archive: engine set-up, SQLite pragmas, and migrations."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine, create_engine, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError

if TYPE_CHECKING:
    from alembic.config import Config

DEFAULT_DB_URL = "sqlite:///zwgk.sqlite3"
# The newest migration in archive/migrations/versions; tests check the two agree.
SCHEMA_REVISION = "0006"
_SQLITE_BUSY_TIMEOUT_MS = 30_000


class DatabaseURLError(ValueError):
    """The database URL cannot be used."""


def resolve_db_url(db_url: str | None = None) -> str:
    """``--db``, else ``ZWGK_DB``, else an SQLite file in the working directory."""
    return db_url or os.environ.get("ZWGK_DB") or DEFAULT_DB_URL


def create_archive_engine(db_url: str) -> Engine:
    """An engine for ``db_url``; SQLite gets WAL mode, a busy timeout and foreign keys."""
    try:
        url = make_url(db_url)
    except ArgumentError as error:
        raise DatabaseURLError(f"not a database URL: {db_url!r} (try sqlite:///zwgk.sqlite3)") from error
    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:":
            path = Path(url.database).expanduser()
            if path.is_dir():
                raise DatabaseURLError(f"{path} is a directory; give a file, e.g. sqlite:///{path}/zwgk.sqlite3")
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as error:
                raise DatabaseURLError(f"cannot create {path.parent}: {error.strerror}") from error
        engine = create_engine(url, connect_args={"timeout": _SQLITE_BUSY_TIMEOUT_MS / 1000})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    try:
        return create_engine(url, pool_pre_ping=True)
    except NoSuchModuleError as error:
        raise DatabaseURLError(f"unknown database kind {url.drivername!r} (try sqlite:/// or postgresql+psycopg://)") from error
    except ModuleNotFoundError as error:
        raise DatabaseURLError(
            f"the driver for {url.drivername} is not installed ({error.name}); "
            "for PostgreSQL install zwgk with: pip install '.[postgres]'"
        ) from error


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={_SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def alembic_config(engine: Engine) -> Config:
    from alembic.config import Config  # Alembic is only imported when migrating

    config = Config()
    config.set_main_option("script_location", "archive:migrations")
    config.attributes["engine"] = engine
    return config


def current_revision(engine: Engine) -> str | None:
    """The revision recorded in the database (Alembic's table), or None for an empty database."""
    if "alembic_version" not in inspect(engine).get_table_names():
        return None
    with engine.connect() as connection:
        return connection.scalar(text("SELECT version_num FROM alembic_version"))


def head_revision(engine: Engine) -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config(engine)).get_current_head()


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Apply the migrations up to ``revision``."""
    from alembic import command

    command.upgrade(alembic_config(engine), revision)


def ensure_schema(engine: Engine) -> None:
    """Create the schema in an empty database; refuse to work on an out-of-date one."""
    revision = current_revision(engine)
    head = SCHEMA_REVISION
    if revision == head:
        return
    if revision is None and not inspect(engine).get_table_names():
        try:
            upgrade(engine)
        except DBAPIError:
            if not _created_meanwhile(engine):  # not another process creating it at the same moment
                raise
        return
    if revision is None and _created_meanwhile(engine):  # tables without a revision: being created right now?
        return
    raise DatabaseURLError(
        f"the archive's schema is at {revision or 'an unknown revision'}, this zwgk needs {head}: "
        "run `zwgk db upgrade` (back the database up first)"
    )


def _created_meanwhile(engine: Engine, wait: float = 60.0) -> bool:
    """Whether another process (a worker started at the same moment) finishes creating the schema."""
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        try:
            if current_revision(engine) == SCHEMA_REVISION:
                return True
        except DBAPIError:
            pass
        time.sleep(0.5)
    return False


def open_archive(db_url: str | None = None, policy=None):
    """Open (and on first use create) the archive at ``db_url``; ``policy`` is its RevisitPolicy."""
    from .store import Archive

    engine = create_archive_engine(resolve_db_url(db_url))
    ensure_schema(engine)
    return Archive(engine, policy)
