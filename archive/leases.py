"""Named leases in the archive database: one holder at a time, across processes and machines.

A crawl of a source and the active scheduler each hold one. The holder renews its
lease from a background thread; a holder that dies (killed, machine lost) stops
renewing and its lease lapses after ``ttl`` seconds, so nobody waits on a ghost.
Taking a lease is one INSERT, or one UPDATE of a lapsed row: no check-then-write
race on either backend.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import delete, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from .errors import ArchiveError
from .models import Lease as LeaseRow
from .models import utcnow
from .records import china_time
from .store import Archive

logger = logging.getLogger(__name__)
DEFAULT_TTL = 120.0


class LeaseTaken(ArchiveError):
    """Someone else holds the lease."""

    def __init__(self, name: str, holder: str, expires_at: dt.datetime) -> None:
        super().__init__(f"{name} is held by {holder} (until {china_time(expires_at)} unless renewed)")
        self.holder, self.expires_at = holder, expires_at


def this_process() -> str:
    return f"{socket.gethostname()} pid {os.getpid()}"


@dataclass
class Lease:
    """``with Lease(archive, "crawl:shanghai"):`` holds the lease for the block, or raises LeaseTaken."""

    archive: Archive
    name: str
    ttl: float = DEFAULT_TTL
    holder: str = ""
    # Called (from the renewal thread) when the lease is lost: taken over after this process
    # stalled, or not renewable before it lapsed. The holder must then stop what it guards.
    on_lost: Callable[[], None] | None = None

    def __post_init__(self) -> None:
        self.holder = self.holder or this_process()
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None

    def acquire(self) -> None:
        now = utcnow()
        expires = now + dt.timedelta(seconds=self.ttl)
        try:
            with self.archive.engine.begin() as connection:
                connection.execute(insert(LeaseRow).values(name=self.name, holder=self.holder, acquired_at=now,
                                                           expires_at=expires))
        except IntegrityError:
            self._take_over(now, expires)
        self._stop.clear()
        self._renewer = threading.Thread(target=self._renew, name=f"lease {self.name}", daemon=True)
        self._renewer.start()

    def _take_over(self, now: dt.datetime, expires: dt.datetime) -> None:
        """The row exists: take it if it has lapsed or is held under our holder name, else say who holds it.

        Workers that share one crawl share its holder name, so each of them can join and renew it.
        """
        try:
            with self.archive.engine.begin() as connection:
                taken = connection.execute(
                    update(LeaseRow).where(LeaseRow.name == self.name,
                                           or_(LeaseRow.expires_at < now, LeaseRow.holder == self.holder))
                    .values(holder=self.holder, acquired_at=now, expires_at=expires)).rowcount
                if not taken:
                    row = connection.execute(select(LeaseRow.holder, LeaseRow.expires_at)
                                             .where(LeaseRow.name == self.name)).first()
                    if row is not None:
                        raise LeaseTaken(self.name, row.holder, row.expires_at) from None
                    connection.execute(insert(LeaseRow).values(  # released between our two statements
                        name=self.name, holder=self.holder, acquired_at=now, expires_at=expires))
        except IntegrityError:  # someone else took it between our statements
            raise LeaseTaken(self.name, "another process", expires) from None
        if taken:
            logger.info("took %s: its holder had stopped renewing it, or shares it with us", self.name)

    def _renew(self) -> None:
        renewed = utcnow()
        while not self._stop.wait(self.ttl / 3):
            try:
                with self.archive.engine.begin() as connection:
                    kept = connection.execute(
                        update(LeaseRow).where(LeaseRow.name == self.name, LeaseRow.holder == self.holder)
                        .values(expires_at=utcnow() + dt.timedelta(seconds=self.ttl))).rowcount
            except Exception as error:  # a database hiccup: try again at the next beat, while the lease lasts
                logger.warning("could not renew %s: %s", self.name, error)
                if (utcnow() - renewed).total_seconds() < self.ttl:
                    continue
                kept = 0
            if not kept:
                logger.error("lost %s (this process stalled or lost the database past its lease): stopping",
                             self.name)
                if self.on_lost is not None:
                    self.on_lost()
                return
            renewed = utcnow()

    def stop_renewing(self) -> None:
        """Leave the lease to its other sharers (or to lapse)."""
        self._stop.set()
        if self._renewer is not None:
            self._renewer.join()
            self._renewer = None

    def release(self) -> None:
        self.stop_renewing()
        with self.archive.engine.begin() as connection:
            connection.execute(delete(LeaseRow).where(LeaseRow.name == self.name, LeaseRow.holder == self.holder))

    def __enter__(self) -> Lease:
        self.acquire()
        return self

    def __exit__(self, *_exc_info: object) -> None:
        self.release()
