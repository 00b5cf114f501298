"""Named leases in the archive database: one holder at a time, across processes and machines.

A crawl of a source and the active scheduler each hold one. The holder renews its
lease from a background thread; a holder that dies (killed, machine lost) stops
renewing and its lease lapses after ``ttl`` seconds, so nobody waits on a ghost.
A holder names its host, pid and process start time: a lease held by a process of
this same host that is gone (no such pid, or the pid now belongs to a process started
at another time) is taken over at once, without waiting for it to lapse.
Taking a lease is one INSERT, or one UPDATE of a lapsed row: no check-then-write
race on either backend.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import delete, insert, or_, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from .busy import retry_while_busy
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
    """``HOST pid N started T``: T (the process start time) tells this process from a later one given its pid."""
    pid = os.getpid()
    started = process_start_time(pid)
    return f"{socket.gethostname()} pid {pid}" + (f" started {started}" if started else "")


def process_start_time(pid: int) -> str | None:
    """When process ``pid`` started (clock ticks after boot, field 22 of /proc/PID/stat); None if it is gone.

    Raises OSError where there is no /proc to ask (not Linux): then nobody can tell, and leases lapse by time.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        if not Path("/proc/self/stat").exists():
            raise OSError("no /proc on this system") from None
        return None
    return stat.rsplit(")", 1)[1].split()[19]  # the fields after "(command)" start at field 3


@dataclass(frozen=True)
class Holder:
    host: str
    pid: int
    started: str | None  # None: written by a zwgk that did not record it


_HOLDER = re.compile(r"(?P<host>\S+) pid (?P<pid>\d+)(?: started (?P<started>\d+))?")


def parse_holder(holder: str) -> Holder | None:
    """The process behind a holder name; None for a name that is not a process (a shared crawl's)."""
    match = _HOLDER.fullmatch(holder)
    if match is None:
        return None
    return Holder(match["host"], int(match["pid"]), match["started"])


def holder_is_dead(holder: Holder, this_host: str, running_started: str | None) -> bool:
    """Whether ``holder`` is a process of this host that has ended.

    ``running_started`` is the start time of the process that has the holder's pid now (None: no
    such process). A holder on another host is never judged from here: its lease lapses by time.
    A holder without a recorded start time whose pid is in use cannot be told from that process.
    """
    if holder.host != this_host:
        return False
    if running_started is None:
        return True
    return holder.started is not None and holder.started != running_started


def _dead_process(holder_name: str) -> Holder | None:
    """The holder, if it is a process of this host that is gone."""
    holder = parse_holder(holder_name)
    if holder is None:
        return None
    try:
        running = process_start_time(holder.pid)
    except OSError:
        return None
    return holder if holder_is_dead(holder, socket.gethostname(), running) else None


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
        self._claim()
        self._stop.clear()
        self._renewer = threading.Thread(target=self._renew, name=f"lease {self.name}", daemon=True)
        self._renewer.start()

    @retry_while_busy
    def _claim(self) -> None:
        now = utcnow()
        expires = now + dt.timedelta(seconds=self.ttl)
        try:
            with self.archive.engine.begin() as connection:
                connection.execute(insert(LeaseRow).values(name=self.name, holder=self.holder, acquired_at=now,
                                                           expires_at=expires))
        except IntegrityError:
            self._take_over(now, expires)

    def _take_over(self, now: dt.datetime, expires: dt.datetime) -> None:
        """The row exists: take it if it has lapsed, is held under our holder name or by a dead process
        of this host, else say who holds it.

        Workers that share one crawl share its holder name, so each of them can join and renew it.
        """
        dead = None
        try:
            with self.archive.engine.begin() as connection:
                taken = connection.execute(
                    update(LeaseRow).where(LeaseRow.name == self.name,
                                           or_(LeaseRow.expires_at < now, LeaseRow.holder == self.holder))
                    .values(holder=self.holder, acquired_at=now, expires_at=expires)).rowcount
                if not taken:
                    row = connection.execute(select(LeaseRow.holder, LeaseRow.expires_at)
                                             .where(LeaseRow.name == self.name)).first()
                    if row is None:
                        connection.execute(insert(LeaseRow).values(  # released between our two statements
                            name=self.name, holder=self.holder, acquired_at=now, expires_at=expires))
                    else:
                        dead = _dead_process(row.holder)
                        if dead is None or not connection.execute(  # still held by that same dead holder?
                                update(LeaseRow).where(LeaseRow.name == self.name, LeaseRow.holder == row.holder)
                                .values(holder=self.holder, acquired_at=now, expires_at=expires)).rowcount:
                            raise LeaseTaken(self.name, row.holder, row.expires_at) from None
        except IntegrityError:  # someone else took it between our statements
            raise LeaseTaken(self.name, "another process", expires) from None
        if dead is not None:
            logger.warning("took over the lease of %s from dead process %s pid %d",
                           self.name.removeprefix("crawl:"), dead.host, dead.pid)
        elif taken:
            logger.info("took %s: its holder had stopped renewing it, or shares it with us", self.name)

    def _renew(self) -> None:
        expires = utcnow() + dt.timedelta(seconds=self.ttl)
        while not self._stop.wait(self.ttl / 3):
            renewed = self._renew_before(expires)
            if renewed is None:
                logger.error("lost %s (this process stalled or lost the database past its lease): stopping",
                             self.name)
                if self.on_lost is not None:
                    self.on_lost()
                return
            expires = renewed

    def _renew_before(self, expires: dt.datetime) -> dt.datetime | None:
        """Renew the lease, trying again with backoff while the database is busy or away, until just
        before it would lapse. Returns its new expiry; None when it is lost (taken, or not renewable in time)."""
        pause = min(0.2, self.ttl / 50)
        while True:
            try:
                return self._renew_once()
            except SQLAlchemyError as error:  # another writer held the database, or it went away for a while
                left = (expires - utcnow()).total_seconds()
                if left <= pause:
                    logger.warning("could not renew %s before it lapsed: %s", self.name, error)
                    return None
                logger.warning("could not renew %s (trying again for %.0f s): %s", self.name, left,
                               str(error).splitlines()[0])
                if self._stop.wait(pause):
                    return expires  # let go meanwhile: nothing is lost
                pause = min(pause * 2, 5.0)

    def _renew_once(self) -> dt.datetime | None:
        expires = utcnow() + dt.timedelta(seconds=self.ttl)
        with self.archive.engine.begin() as connection:
            kept = connection.execute(
                update(LeaseRow).where(LeaseRow.name == self.name, LeaseRow.holder == self.holder)
                .values(expires_at=expires)).rowcount
        return expires if kept else None

    def stop_renewing(self) -> None:
        """Leave the lease to its other sharers (or to lapse)."""
        self._stop.set()
        if self._renewer is not None:
            self._renewer.join()
            self._renewer = None

    def release(self) -> None:
        self.stop_renewing()
        self._delete()

    @retry_while_busy
    def _delete(self) -> None:
        with self.archive.engine.begin() as connection:
            connection.execute(delete(LeaseRow).where(LeaseRow.name == self.name, LeaseRow.holder == self.holder))

    def __enter__(self) -> Lease:
        self.acquire()
        return self

    def __exit__(self, *_exc_info: object) -> None:
        self.release()
