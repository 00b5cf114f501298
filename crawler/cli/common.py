"""What the commands share: the common options, the archive and registry they open, and the one place
where the libraries' errors become exits (usage errors 2, operational errors 1)."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import click

DB_HELP = "Archive database URL (SQLAlchemy), else $ZWGK_DB, else sqlite:///zwgk.sqlite3."
SOURCES_HELP = "Sources registry file (TOML), else $ZWGK_SOURCES, else the bundled one."
CONFIG_HELP = "Config file (TOML, see README), else $ZWGK_CONFIG, else ./zwgk.toml if present."
REDIS_HELP = "The Redis the workers share, e.g. redis://10.0.0.5:6379/0 (default: $ZWGK_REDIS)."

db_option = click.option("--db", "db_url", metavar="URL", help=DB_HELP)
sources_option = click.option("--sources", "sources_file", metavar="FILE", help=SOURCES_HELP)
config_option = click.option("--config", "config_file", metavar="FILE", help=CONFIG_HELP)
json_option = functools.partial(click.option, "--json", "as_json", is_flag=True)
# Terminal escape sequences (CSI, OSC, two-character ESC sequences) and every other control
# character but tab and newline: crawled text must not move the cursor, retitle the window
# or hide what is printed.
_TERMINAL_CONTROL = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[ -~]?|\x9b[0-?]*[ -/]*[@-~]"
    r"|[\x00-\x08\x0b-\x1f\x7f-\x9f]"
)


def terminal_safe(text: str) -> str:
    """``text`` without terminal escape sequences and control characters (tab and newline stay)."""
    return _TERMINAL_CONTROL.sub("", text)


def echo(message: str = "", err: bool = False) -> None:
    """:func:`click.echo` for a line that holds crawled text: nothing in it reaches the terminal as a command."""
    click.echo(terminal_safe(message), err=err)


def settings_option(help_text: str) -> Callable:
    """``-s NAME=VALUE`` (repeatable): Scrapy settings, read by crawler.overrides."""
    return click.option("-s", "--set", "settings", multiple=True, metavar="NAME=VALUE", help=help_text)


@contextmanager
def archive_errors() -> Iterator[None]:
    """The one place where the archive's errors become exits: one line, and the error's exit code
    (2 for a bad URL, 1 for the rest; a database that stops answering mid-command is the rest)."""
    from sqlalchemy.exc import OperationalError

    from archive import ArchiveError
    from archive.db import first_line

    try:
        yield
    except ArchiveError as error:
        failure = click.ClickException(str(error))
        # click types exit_code as a ClassVar, but reads it from the instance: this one error's code.
        failure.exit_code = error.exit_code  # type: ignore[misc]
        raise failure from error
    except OperationalError as error:
        raise click.ClickException(f"cannot open the archive: {first_line(error)}") from error


@contextmanager
def usage_errors(*kinds: type[Exception]) -> Iterator[None]:
    """Errors of these kinds are the user's doing (a bad option, file or query): a usage error, exit 2."""
    try:
        yield
    except kinds as error:
        # A KeyError's str() is the repr of its message.
        message = error.args[0] if isinstance(error, KeyError) and error.args else error
        raise click.UsageError(str(message)) from error


def open_archive_or_fail(db_url: str | None, read_only: bool = False):
    """The archive at ``db_url``; ``read_only`` for commands that only read (they never create one)."""
    from archive import open_archive

    with archive_errors():
        return open_archive(db_url, read_only=read_only)


def find_or_fail(archive, document: str):
    """The archived notice a user names by URL or document id."""
    with archive_errors():
        found = archive.find_document(document)
    if found is None:
        raise click.ClickException(f"no archived notice {document!r} (give its URL or document id)")
    return found


def load_registry(sources_file: str | None):
    from spiders.registry import RegistryError, load_sources

    with usage_errors(RegistryError):
        return load_sources(sources_file)


def choose_sources(registry, keys: Sequence[str], every: bool = False, none_is_every: bool = False):
    """The registry's sources a command is given (spiders.registry.select_sources)."""
    from spiders.registry import RegistryError, select_sources

    with usage_errors(RegistryError):
        return select_sources(registry, keys, every, none_is_every)


def shared_redis(distributed: bool, redis_url: str | None) -> str | None:
    """The Redis a ``--distributed`` command shares its crawls through; None when not distributed."""
    if distributed and not redis_url:
        raise click.UsageError("--distributed needs the shared Redis: --redis URL or ZWGK_REDIS")
    return redis_url if distributed else None


def check_redis(url: str) -> None:
    """Fail in one line when the shared Redis does not answer."""
    from redis.exceptions import RedisError

    from crawler.distributed import connect

    try:
        connect(url).close()
    except (RedisError, ValueError) as error:
        raise click.ClickException(f"cannot reach the shared Redis at {url}: {error}") from error


FILTERS = (("source", "Only these sources (comma-separated keys)."),
           ("doc_type", "Only this 文种, e.g. 通知, 办法, 批复."),
           ("issuer", "Only notices whose issuer (发布机构) contains this."),
           ("docno", "Only this 文号 prefix, e.g. 沪交办."),
           ("year", "Only notices published in this year."),
           ("from", "Published on or after this date (YYYY[-MM[-DD]])."),
           ("to", "Published on or before this date (YYYY[-MM[-DD]])."))


def filter_options(command):
    """Add the search filters as options (they can also be written in a query as name:value);
    the command receives them as one ``filters`` dict."""
    @functools.wraps(command)
    def run(**kwargs):
        return command(filters={name: kwargs.pop(f"filter_{name}") for name, _ in FILTERS}, **kwargs)

    for name, help_text in reversed(FILTERS):
        run = click.option("--" + name.replace("_", "-"), f"filter_{name}",
                           metavar="DATE" if name in ("from", "to") else "TEXT", help=help_text)(run)
    return run


def parse_search(query: str, filters: dict[str, str | None]):
    from archive.search import QueryError, parse_query

    with usage_errors(QueryError):
        return parse_query(query, **filters)


def echo_json(value: object) -> None:
    """``value`` as indented JSON, Chinese as it is; sets and other iterables as lists."""
    import json

    click.echo(json.dumps(value, ensure_ascii=False, indent=2, default=list))
