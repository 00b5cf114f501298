"""`kill -9` at random moments of a five-source crawl: the archive stays whole and the next crawl starts at once.

Each trial starts `zwgk crawl --all` on one SQLite archive, waits until the archive
holds a seeded number of versions more (and a seeded fraction of a second), and
kills the process with SIGKILL. The next trial's crawl is the crawl after that
kill: it must take over the dead process's leases at once and carry on. After the
last kill a crawl runs to its end; the archive must then equal an uninterrupted
crawl's (tests/test_distributed.py's ``single_worker``).
"""

from __future__ import annotations

import os
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from contextlib import closing

import pytest
from sqlalchemy.engine import make_url

from archive import open_archive
from tests.conftest import FAST_CRAWL, ROOT, FixtureSite, StderrLines, crawl, wait_for
from tests.test_distributed import Harvest, harvest, single_worker  # noqa: F401 (single_worker: a fixture)

# End to end (eleven crawl processes, ten of them killed): left out by `pytest -m "not slow"`.
pytestmark = pytest.mark.slow

TRIALS = 10
SEED = 14


def count(path: str, sql: str) -> int:
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as connection:
        return connection.execute(sql).fetchone()[0]


def crawl_killed_at(site: FixtureSite, db_url: str, versions: int, delay: float) -> tuple[int, str]:
    """Start `zwgk crawl --all`, SIGKILL it ``delay`` seconds after the archive holds ``versions`` versions;
    return its pid and standard error."""
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "ZWGK_HOST_MAP": site.host_map_json}
    env.pop("ZWGK_DB", None)
    process = subprocess.Popen([sys.executable, "-m", "crawler.cli", "crawl", "--all", *FAST_CRAWL, "--db", db_url],
                               cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    stderr = StderrLines(process)
    path = make_url(db_url).database
    wait_for(lambda: process.poll() is not None or count(path, "SELECT count(*) FROM versions") >= versions,
             f"the archive to hold {versions} versions", timeout=240)
    assert process.poll() is None, f"the crawl ended before it was killed:\n{stderr.text()}"
    time.sleep(delay)  # a random moment later: inside a fetch, a save, a commit
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    return process.pid, stderr.text()


def check_archive(path: str) -> None:
    """What a killed writer must never leave: a damaged file, or a version without its page or files."""
    with closing(sqlite3.connect(path)) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert connection.execute("PRAGMA foreign_key_check").fetchall() == []
    assert count(path, "SELECT count(*) FROM versions v LEFT JOIN raw_pages p ON p.sha256 = v.raw_sha256 "
                       "WHERE p.sha256 IS NULL") == 0, "a version lacks its raw page"
    assert count(path, "SELECT count(*) FROM attachments a LEFT JOIN raw_pages p ON p.sha256 = a.sha256 "
                       "WHERE a.sha256 IS NOT NULL AND p.sha256 IS NULL") == 0, "an attachment lacks its file"
    assert count(path, "SELECT count(*) FROM versions v LEFT JOIN search_texts s ON s.version_id = v.id "
                       "WHERE s.version_id IS NULL") == 0, "a version is not indexed"


def leases_of(path: str, pid: int) -> set[str]:
    """The sources whose crawl lease process ``pid`` held (its holder name: HOST pid N started T)."""
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as connection:
        names = connection.execute("SELECT name FROM leases WHERE holder LIKE ?", (f"% pid {pid} %",)).fetchall()
    return {name.removeprefix("crawl:") for name, in names}


def took_over(stderr: str, sources: set[str], killed_pid: int) -> bool:
    host = socket.gethostname()
    return all(f"took over the lease of {key} from dead process {host} pid {killed_pid}" in stderr
               for key in sources)


def test_ten_kill_9_trials_leave_the_archive_whole_and_equal_to_an_uninterrupted_crawl(
        site: FixtureSite, sqlite_url: str, single_worker: Harvest) -> None:  # noqa: F811
    open_archive(sqlite_url).close()  # the archive exists before the first crawl, to be watched
    path = make_url(sqlite_url).database
    rng = random.Random(SEED)
    killed_pid: int | None = None  # the last killed crawl
    left: set[str] = set()  # the leases it left behind
    killed_holding_leases = 0
    for trial in range(TRIALS):
        archived = count(path, "SELECT count(*) FROM versions")
        # Some progress first (so the crawl took over the leases), and most of what is left still
        # ahead: a kill near the very end would race the crawl's own exit.
        versions = archived + rng.randint(1, max(1, (single_worker.versions - archived) // 8))
        pid, errors = crawl_killed_at(site, sqlite_url, versions, rng.uniform(0, 0.5))
        assert "another crawl" not in errors, f"trial {trial}: {errors}"
        if killed_pid is not None:  # this was the crawl after a kill
            assert took_over(errors, left, killed_pid), f"trial {trial}: {errors}"
        # Killed between its last save and its exit, a crawl holds no lease: nothing to take over then.
        killed_pid, left = pid, leases_of(path, pid)
        killed_holding_leases += bool(left)
        check_archive(path)
    assert killed_holding_leases >= TRIALS // 2, "most kills should land mid-crawl, holding leases"
    final = crawl(site, sqlite_url, "--all")
    assert final.returncode == 0, final.stdout + final.stderr
    assert "another crawl" not in final.stdout + final.stderr
    assert took_over(final.stderr, left, killed_pid), final.stderr
    check_archive(path)
    got = harvest(site.server, sqlite_url)
    assert got.notices == single_worker.notices
    assert got.versions == single_worker.versions
