"""Commands for the operator: the database schema, this machine's readers, the scheduler."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import click

from .common import (
    archive_errors,
    check_redis,
    config_option,
    db_option,
    echo_json,
    json_option,
    open_archive_or_fail,
    settings_option,
    shared_redis,
    sources_option,
    usage_errors,
)


@click.command()
def doctor() -> None:
    """Show which attachment formats this machine can read, and with what.

    A format whose reader is missing is archived with the error "not extracted"
    and its reason; install the reader (for old Word and WPS files: antiword or
    catdoc, e.g. `apt-get install antiword`) and run `zwgk reextract`.
    """
    from crawler.extract.files import converters

    missing = 0
    for file_format, reader in converters().items():
        click.echo(f"{file_format:>8}: {reader or 'MISSING'}")
        missing += reader is None
    if missing:
        click.echo(f"{missing} format(s) cannot be read here; their attachments are kept with the reason.", err=True)


@click.group()
def db() -> None:
    """Manage the archive's database schema."""


@db.command()
@db_option
def upgrade(db_url: str | None) -> None:
    """Apply the archive's migrations (a new database is set up on first use anyway)."""
    from archive import resolve_db_url
    from archive.db import create_archive_engine, current_revision, head_revision
    from archive.db import upgrade as apply_migrations

    with archive_errors():
        engine = create_archive_engine(resolve_db_url(db_url))
        before = current_revision(engine)
        apply_migrations(engine)
    click.echo(f"schema at {head_revision(engine)} (was {before or 'empty'})")


@db.command("copy")
@click.option("--to", "target", required=True, metavar="URL", help="The empty archive to copy into.")
@db_option
def db_copy(target: str, db_url: str | None) -> None:
    """Copy the whole archive into another database, ids and all.

    \b
      zwgk db copy --db sqlite:///zwgk.sqlite3 --to postgresql+psycopg://zwgk@db/zwgk
    For moving an SQLite archive to PostgreSQL (or back). The target must be
    empty; its schema is created, the search index rebuilt, and each table's
    rows counted against the original. Stop crawls and the scheduler first.
    """
    from archive.copy import copy_archive, table_counts

    archive = open_archive_or_fail(db_url, read_only=True)
    shown: dict[str, int] = {}

    def progress(table: str, rows: int) -> None:
        if rows - shown.get(table, 0) >= 10_000:
            shown[table] = rows
            click.echo(f"… {table}: {rows} rows", err=True)

    with archive_errors():
        copied = copy_archive(archive.engine, target, progress=progress)
        expected = table_counts(archive.engine)
    for table, rows in copied.items():
        click.echo(f"{table:<18} {rows:>10}")
    if mismatched := [table for table, rows in expected.items() if copied.get(table) != rows]:
        raise click.ClickException(f"row counts differ for {', '.join(mismatched)}")
    click.echo(f"copied into {target.split('@')[-1]}", err=True)


@click.group()
def schedule() -> None:
    """Harvest every source on its timetable (nightly by default).

    \b
    Each source has one job: by default nightly at a minute of its own between
    01:00 and 05:00 China time; a source's `schedule` in the registry or the
    [schedule] table of zwgk.toml changes that. Jobs live in the archive
    database, so a restart keeps them, and a night missed while the scheduler
    was down is crawled once when it is back.
    """


@contextmanager
def scheduler_errors() -> Iterator[None]:
    """A bad config, registry or ``-s`` item is a usage error; the archive's errors are its own."""
    from archive.config import ConfigError
    from crawler.overrides import SettingError
    from spiders.registry import RegistryError

    with archive_errors(), usage_errors(ConfigError, RegistryError, SettingError):
        yield


@schedule.command("run")
@config_option
@sources_option
@settings_option("A Scrapy setting for every scheduled crawl (repeatable).")
@click.option("--distributed", is_flag=True,
              help="Start each crawl as a shared crawl that `zwgk worker`s on other machines join.")
@click.option("--redis", "redis_url", envvar="ZWGK_REDIS", metavar="URL",
              help="The Redis the workers share (default: $ZWGK_REDIS).")
@db_option
def schedule_run(config_file: str | None, sources_file: str | None, settings: tuple[str, ...],
                 distributed: bool, redis_url: str | None, db_url: str | None) -> None:
    """Run the scheduler in the foreground until SIGTERM or Ctrl-C.

    Each crawl runs as `zwgk crawl SOURCE` in a process of its own, with the
    time limit of the config (3 hours by default); at most max_parallel (2) at
    once. Only one scheduler per archive is active: another one started
    against the same database stands by and takes over if the first dies.
    SIGTERM lets running crawls finish the notice in hand, then exits.
    With --distributed each crawl is shared with the `zwgk worker`s of the same Redis.
    """
    from scheduler import run_scheduler

    if redis_url := shared_redis(distributed, redis_url):
        check_redis(redis_url)
    with scheduler_errors():
        run_scheduler(db_url, sources_file, config_file, settings, redis_url,
                      on_standby=lambda message: click.echo(message, err=True))
    click.echo("scheduler stopped", err=True)


@schedule.command("list")
@config_option
@sources_option
@json_option(help="Print the jobs as JSON.")
@db_option
def schedule_list(config_file: str | None, sources_file: str | None, as_json: bool, db_url: str | None) -> None:
    """Show each source's job: its timetable and its next run (China time, or the config's zone)."""
    from scheduler import harvester_from_config

    with scheduler_errors():
        rows = [job.record() for job in harvester_from_config(db_url, sources_file, config_file).planned_jobs()]
    if as_json:
        echo_json(rows)
        return
    click.echo(f"{'source':<12} {'timetable':<16} {'next run':<25} state")
    for row in rows:
        click.echo(f"{row['source']:<12} {row['timetable'] or '—':<16} {row['next_run'] or '—':<25} {row['state']}")


COMMANDS = (doctor, db, schedule)
