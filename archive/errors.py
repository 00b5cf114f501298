"""What can go wrong with the archive, each with a one-line message and the exit code it deserves.

A usage error (a URL that cannot name a database) exits 2; an operational one (a
server away, a schema to upgrade, an archive not there yet) exits 1. The CLI maps
these to exits in one place and prints nothing but the message.
"""

from __future__ import annotations

USAGE = 2
OPERATIONAL = 1


class ArchiveError(Exception):
    """The archive could not do what was asked; the message says why."""

    exit_code = OPERATIONAL


class DatabaseURLError(ArchiveError):
    """The database URL cannot be used: not a URL, a directory, an unknown kind, a driver missing."""

    exit_code = USAGE


class DatabaseUnreachable(ArchiveError):
    """The database server does not answer, or refuses the connection."""


class SchemaOutOfDate(ArchiveError):
    """The archive's schema is older (or newer) than this zwgk's: `zwgk db upgrade` first."""

    def __init__(self, where: str, revision: str | None, needed: str) -> None:
        super().__init__(f"the archive at {where} is at schema {revision or 'an unknown revision'}, "
                         f"this zwgk needs {needed}: run `zwgk db upgrade` (back the database up first)")


class ArchiveMissing(ArchiveError):
    """A reading command was pointed at an archive that does not exist (reading never creates one)."""

    def __init__(self, where: str) -> None:
        super().__init__(f"no archive at {where}: crawl into it first (zwgk crawl), or give --db")


class AlertError(ArchiveError):
    """An alert rule or channel cannot be used."""
