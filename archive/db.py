"""Opening the archive: engine set-up, SQLite pragmas, migrations, and read-only access.

A read-only archive (``open_archive(..., read_only=True)``: the web app and the
reading commands) never creates, migrates or writes anything: SQLite is opened
with ``mode=ro``, and every PostgreSQL transaction is READ ONLY, so the database
itself refuses a write.
"""

from __future__ import annotations

import functools
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote, unquote

from sqlalchemy import Engine, create_engine, event, inspect, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, OperationalError

from .errors import ArchiveMissing, DatabaseUnreachable, DatabaseURLError, SchemaOutOfDate

if TYPE_CHECKING:
    from alembic.config import Config
    from sqlalchemy.engine.interfaces import DBAPIConnection

    from .revisits import RevisitPolicy
    from .store import Archive

DEFAULT_DB_URL = "sqlite:///zwgk.sqlite3"
# The newest migration in archive/migrations/versions; tests check the two agree.
SCHEMA_REVISION = "0006"
# How long an SQLite statement waits for another writer before it fails "database is locked"
# (ZWGK_SQLITE_BUSY_TIMEOUT seconds overrides it); the archive's writes then retry (archive.busy).
_SQLITE_BUSY_TIMEOUT_MS = 30_000


def sqlite_busy_timeout_ms() -> int:
    """The busy timeout: ZWGK_SQLITE_BUSY_TIMEOUT (seconds), else 30 s."""
    value = os.environ.get("ZWGK_SQLITE_BUSY_TIMEOUT")
    if not value:
        return _SQLITE_BUSY_TIMEOUT_MS
    try:
        seconds = float(value)
    except ValueError:
        raise DatabaseURLError(f"ZWGK_SQLITE_BUSY_TIMEOUT={value!r}: give a number of seconds") from None
    if seconds < 0:
        raise DatabaseURLError(f"ZWGK_SQLITE_BUSY_TIMEOUT={value!r}: cannot be negative")
    return int(seconds * 1000)


def resolve_db_url(db_url: str | None = None) -> str:
    """``--db``, else ``ZWGK_DB``, else an SQLite file in the working directory."""
    return db_url or os.environ.get("ZWGK_DB") or DEFAULT_DB_URL


def create_archive_engine(db_url: str, read_only: bool = False) -> Engine:
    """An engine for ``db_url``; SQLite gets WAL mode, a busy timeout and foreign keys.

    ``read_only``: the database must exist already, and the engine cannot write to it.
    """
    try:
        url = make_url(db_url)
    except ArgumentError as error:
        raise DatabaseURLError(f"not a database URL: {db_url!r} (try sqlite:///zwgk.sqlite3)") from error
    if url.get_backend_name() == "sqlite":
        return _sqlite_engine(url, read_only)
    try:
        return create_engine(url, pool_pre_ping=True, connect_args=_READ_ONLY_SERVER if read_only else {})
    except NoSuchModuleError as error:
        raise DatabaseURLError(
            f"unknown database kind {url.drivername!r} (try sqlite:/// or postgresql+psycopg://)") from error
    except ModuleNotFoundError as error:
        raise DatabaseURLError(
            f"the driver for {url.drivername} is not installed ({error.name}); "
            "for PostgreSQL install zwgk with: pip install '.[postgres]'"
        ) from error


# Every transaction of the session starts READ ONLY (libpq's options, applied by the server).
_READ_ONLY_SERVER = {"options": "-c default_transaction_read_only=on"}


def _sqlite_engine(url: URL, read_only: bool) -> Engine:
    path = None if not url.database or url.database == ":memory:" else Path(url.database).expanduser()
    if path is not None and path.is_dir():
        raise DatabaseURLError(f"{path} is a directory; give a file, e.g. sqlite:///{path}/zwgk.sqlite3")
    if read_only:
        if path is None or not path.is_file():
            raise ArchiveMissing(str(path or ":memory:"))
        url = url.set(database=f"file:{quote(str(path.resolve()))}", query={**url.query, "mode": "ro", "uri": "true"})
    elif path is not None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise DatabaseURLError(f"cannot create {path.parent}: {error.strerror}") from error
    busy_ms = sqlite_busy_timeout_ms()
    engine = create_engine(url, connect_args={"timeout": busy_ms / 1000})
    pragmas = _sqlite_read_pragmas if read_only else _sqlite_pragmas
    event.listen(engine, "connect", functools.partial(pragmas, busy_ms))
    return engine


def _sqlite_pragmas(busy_ms: int, dbapi_connection: DBAPIConnection, _record: object) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={busy_ms}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _sqlite_read_pragmas(busy_ms: int, dbapi_connection: DBAPIConnection, _record: object) -> None:
    """A reader changes no journal mode (that would write): it only waits for the writer."""
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout={busy_ms}")
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
        revision: str | None = connection.scalar(text("SELECT version_num FROM alembic_version"))
        return revision


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
    raise SchemaOutOfDate(_where(engine), revision, head)


def check_schema(engine: Engine) -> None:
    """For a read-only archive: it must exist and be at this zwgk's schema (nothing is created)."""
    revision = current_revision(engine)
    if revision == SCHEMA_REVISION:
        return
    if revision is None and not inspect(engine).get_table_names():
        raise ArchiveMissing(_where(engine))
    raise SchemaOutOfDate(_where(engine), revision, SCHEMA_REVISION)


def _where(engine: Engine) -> str:
    """The archive as a user names it: an SQLite file's path, else the URL without its password."""
    url = engine.url
    if url.get_backend_name() != "sqlite":
        return url.render_as_string(hide_password=True)
    database = url.database or ":memory:"
    return unquote(database.removeprefix("file:")) if database.startswith("file:") else database


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


def open_archive(db_url: str | None = None, policy: RevisitPolicy | None = None, read_only: bool = False) -> Archive:
    """Open the archive at ``db_url`` (``policy`` is its RevisitPolicy).

    On first use the archive is created, unless ``read_only``: then it must exist,
    at this zwgk's schema, and nothing can be written through it.
    """
    from .store import Archive

    engine = create_archive_engine(resolve_db_url(db_url), read_only)
    try:
        if read_only:
            check_schema(engine)
        else:
            ensure_schema(engine)
    except OperationalError as error:
        raise DatabaseUnreachable(f"cannot open the archive: {first_line(error)}") from error
    return Archive(engine, policy)


def first_line(error: DBAPIError) -> str:
    """The driver's own message, without SQLAlchemy's statement and background link."""
    return str(error.orig or error).strip().splitlines()[0]
