"""Leases: a dead process of this host is taken over at once, and a busy database never loses a live one."""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator

import pytest
from sqlalchemy import select
from sqlalchemy.engine import make_url

from archive import Archive, open_archive
from archive.leases import (
    Holder,
    Lease,
    LeaseTaken,
    holder_is_dead,
    parse_holder,
    process_start_time,
    this_process,
)
from archive.models import Lease as LeaseRow
from archive.models import utcnow
from archive.urls import canonical_url
from tests.conftest import FixtureSite, StderrLines, crawl, wait_for
from tests.test_revisits_health import HOST, start_crawl

HERE = socket.gethostname()


@pytest.fixture
def archive(db_url: str) -> Iterator[Archive]:
    archive = open_archive(db_url)
    yield archive
    archive.close()


@pytest.mark.parametrize(("holder", "running_started", "dead"), [
    (Holder(HERE, 41, "900"), None, True),  # no process has that pid any more
    (Holder(HERE, 41, "900"), "1200", True),  # the pid was given to a later process
    (Holder(HERE, 41, "900"), "900", False),  # the holder itself, alive
    (Holder(HERE, 41, None), "1200", False),  # an older zwgk's holder: its pid in use, cannot tell
    (Holder(HERE, 41, None), None, True),
    (Holder("other-host", 41, "900"), None, False),  # another machine's pids say nothing here
])
def test_only_a_process_of_this_host_that_is_gone_counts_as_dead(holder: Holder, running_started: str | None,
                                                                dead: bool) -> None:
    assert holder_is_dead(holder, HERE, running_started) is dead


def test_a_holder_name_says_host_pid_and_start_time() -> None:
    me = parse_holder(this_process())
    assert me == Holder(HERE, os.getpid(), process_start_time(os.getpid()))
    assert me.started is not None and me.started == process_start_time(os.getpid())
    assert parse_holder("vm pid 22961") == Holder("vm", 22961, None)
    assert parse_holder("distributed crawl 0123456789ab") is None


def ended_process() -> tuple[int, str]:
    """The pid and start time of a process that has ended (its pid not yet reused)."""
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    started = process_start_time(child.pid)
    child.kill()
    child.wait()
    assert started is not None and process_start_time(child.pid) is None
    return child.pid, started


def hold_row(archive: Archive, name: str, holder: str) -> None:
    """A lease row as its holder left it: not lapsed for another two minutes."""
    with archive.transaction() as session:
        session.add(LeaseRow(name=name, holder=holder, acquired_at=utcnow(),
                             expires_at=utcnow() + dt.timedelta(minutes=2)))


def test_the_lease_of_a_dead_process_of_this_host_is_taken_at_once(archive: Archive, caplog) -> None:
    pid, started = ended_process()
    hold_row(archive, "crawl:shanwei", f"{HERE} pid {pid} started {started}")
    with caplog.at_level(logging.WARNING, "archive.leases"), Lease(archive, "crawl:shanwei"), \
            archive.session() as session:
        assert session.scalar(select(LeaseRow.holder)) == this_process()
    assert f"took over the lease of shanwei from dead process {HERE} pid {pid}" in caplog.text


def test_a_reused_pid_does_not_keep_a_dead_holder_alive(archive: Archive) -> None:
    hold_row(archive, "crawl:shanwei", f"{HERE} pid {os.getpid()} started 1")  # our pid, an earlier process
    with Lease(archive, "crawl:shanwei"):
        pass


def test_a_live_holder_and_a_holder_on_another_host_keep_their_lease(archive: Archive) -> None:
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        hold_row(archive, "crawl:shanwei", f"{HERE} pid {alive.pid} started {process_start_time(alive.pid)}")
        with pytest.raises(LeaseTaken, match=f"pid {alive.pid}"):
            Lease(archive, "crawl:shanwei").acquire()
    finally:
        alive.kill()
        alive.wait()
    pid, started = ended_process()
    hold_row(archive, "crawl:yunnan", f"other-host pid {pid} started {started}")
    with pytest.raises(LeaseTaken, match="other-host"):
        Lease(archive, "crawl:yunnan").acquire()


# A busy database (SQLite's single writer lock held by someone else)

BUSY_TIMEOUT = "0.2"  # seconds a statement waits for the writer lock before it fails


@pytest.fixture
def busy_sqlite(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Archive]:
    monkeypatch.setenv("ZWGK_SQLITE_BUSY_TIMEOUT", BUSY_TIMEOUT)
    archive = open_archive(sqlite_url)
    yield archive
    archive.close()


class WriterLock:
    """SQLite's writer lock, taken by another connection (``BEGIN IMMEDIATE``) and held until released."""

    def __init__(self, db_url: str) -> None:
        self.connection = sqlite3.connect(make_url(db_url).database, isolation_level=None)
        self.connection.execute("BEGIN IMMEDIATE")

    def release(self) -> None:
        self.connection.execute("COMMIT")
        self.connection.close()


def lease_expiry(archive: Archive, name: str) -> dt.datetime | None:
    with archive.session() as session:
        return session.scalar(select(LeaseRow.expires_at).where(LeaseRow.name == name))


def test_a_renewal_that_meets_a_held_writer_lock_tries_again_and_keeps_the_lease(
        busy_sqlite: Archive, sqlite_url: str, caplog) -> None:
    lost = threading.Event()
    lease = Lease(busy_sqlite, "crawl:shanghai", ttl=3, on_lost=lost.set)
    with caplog.at_level(logging.WARNING, "archive.leases"):
        lease.acquire()
        first = lease_expiry(busy_sqlite, "crawl:shanghai")
        lock = WriterLock(sqlite_url)
        try:  # past the busy timeout and a renewal beat (ttl / 3), within the lease
            wait_for(lambda: "could not renew crawl:shanghai" in caplog.text, "a renewal to meet the lock", 10)
        finally:
            lock.release()
        wait_for(lambda: lease_expiry(busy_sqlite, "crawl:shanghai") > first, "the lease to be renewed", 10)
        lease.release()
    assert not lost.is_set()


def test_taking_and_letting_go_of_a_lease_wait_out_a_held_writer_lock(busy_sqlite: Archive, sqlite_url: str,
                                                                      caplog) -> None:
    lease = Lease(busy_sqlite, "crawl:shanghai")
    for step in (lease.acquire, lease.release):
        caplog.clear()
        lock = WriterLock(sqlite_url)
        with caplog.at_level(logging.INFO, "archive.busy"):
            stepping = threading.Thread(target=step)
            stepping.start()
            try:
                wait_for(lambda: "database is locked by another writer" in caplog.text, "the step to meet the lock")
            finally:
                lock.release()
            stepping.join(timeout=30)
        assert not stepping.is_alive()
        assert (lease_expiry(busy_sqlite, "crawl:shanghai") is not None) is (step == lease.acquire)


def test_a_lease_not_renewable_before_it_lapses_is_lost(busy_sqlite: Archive, sqlite_url: str) -> None:
    lost = threading.Event()
    lease = Lease(busy_sqlite, "crawl:shanghai", ttl=1.5, on_lost=lost.set)
    lease.acquire()
    lock = WriterLock(sqlite_url)
    try:
        wait_for(lost.is_set, "the lease to be declared lost", 10)
    finally:
        lock.release()
    lease.stop_renewing()


@pytest.mark.slow
def test_a_crawl_outlasts_a_writer_lock_held_past_the_busy_timeout(site: FixtureSite, sqlite_url: str,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    archive = open_archive(sqlite_url)
    monkeypatch.setenv("ZWGK_SQLITE_BUSY_TIMEOUT", BUSY_TIMEOUT)
    process = start_crawl(site, sqlite_url, "shanghai", "-s", "ZWGK_LEASE_SECONDS=3")
    stderr = StderrLines(process)
    wait_for(lambda: len(archive.known_urls("shanghai")) >= 3, "the crawl to archive its first notices")
    lock = WriterLock(sqlite_url)
    try:  # the crawl's saves and its lease renewal both meet the lock, for longer than the busy timeout
        wait_for(lambda: stderr.saw("could not renew crawl:shanghai"), "the renewal to meet the lock", 30)
        held = len(archive.known_urls("shanghai"))
    finally:
        lock.release()
    out, _ = process.communicate(timeout=180)
    errors = stderr.text()
    assert process.returncode == 0, out + errors
    assert "lost crawl:shanghai" not in errors and "could not archive" not in errors
    assert held < len(site.manifest(HOST)), "the lock was taken after the crawl had finished"
    assert archive.known_urls("shanghai") == {canonical_url(n["url"]) for n in site.manifest(HOST)}
    assert [run.status for run, _ in archive.runs("shanghai")] == ["completed"]
    again = crawl(site, sqlite_url, "shanghai")
    assert again.returncode == 0, again.stderr
