"""Writes that wait out another writer: SQLite's "database is locked" is tried again, not a failure.

SQLite has one writer at a time. A statement waits for the lock up to the busy timeout
(archive.db); a writer that holds it longer (a big transaction of another process, a
backup, a ``BEGIN IMMEDIATE`` left open) makes the statement fail. Every write of the
archive is one short transaction, so trying it again, with backoff, is safe.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from sqlalchemy.exc import OperationalError

logger = logging.getLogger(__name__)
# How long a write keeps trying while the database is locked before its error stands.
PATIENCE_SECONDS = 300.0
_P = ParamSpec("_P")
_T = TypeVar("_T")


def is_busy(error: BaseException) -> bool:
    """Whether ``error`` says another writer holds the database (SQLite's SQLITE_BUSY / SQLITE_LOCKED)."""
    return isinstance(error, OperationalError) and "is locked" in str(error.orig)


def backoff(attempt: int) -> float:
    """Seconds before try ``attempt`` + 1: 0.05 doubling to at most 2."""
    return min(0.05 * 2.0 ** attempt, 2.0)


def retry_while_busy(write: Callable[_P, _T]) -> Callable[_P, _T]:
    """Run ``write`` again (it must be one whole transaction) while the database is locked, for up to
    PATIENCE_SECONDS."""

    @functools.wraps(write)
    def patient(*args: _P.args, **kwargs: _P.kwargs) -> _T:
        deadline = time.monotonic() + PATIENCE_SECONDS
        attempt = 0
        while True:
            try:
                return write(*args, **kwargs)
            except OperationalError as error:
                if not is_busy(error) or time.monotonic() + backoff(attempt) > deadline:
                    raise
                logger.info("%s: the database is locked by another writer; trying again", write.__name__)
                time.sleep(backoff(attempt))
                attempt += 1

    return patient
