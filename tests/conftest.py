"""Shared test fixtures: archives on SQLite and PostgreSQL, fixture sites over real HTTP, the CLI."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from tests.fixtures.server import FixtureServer

ROOT = Path(__file__).resolve().parents[1]
SITES = ROOT / "tests" / "fixtures" / "sites"
CORPUS = ROOT / "tests" / "corpus"
POSTGRES_ENV = "ZWGK_TEST_POSTGRES_URL"
REDIS_ENV = "ZWGK_TEST_REDIS_URL"


def corpus_path(*parts: str) -> Path:
    """A file of the vendored corpora (tests/corpus/README.md says where each comes from)."""
    path = CORPUS.joinpath(*parts)
    if not path.exists():
        pytest.fail(f"{path} is missing from tests/corpus/")
    return path


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """`-n auto`: two test processes per core. Most tests wait on crawl processes, servers and
    clocks, so one per core leaves the cores idle a third of the time."""
    return 2 * (os.cpu_count() or 1)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'archive.sqlite3'}"


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database, dropped afterwards."""
    server_url = os.environ.get(POSTGRES_ENV)
    if not server_url:
        pytest.skip(f"{POSTGRES_ENV} is not set: PostgreSQL tests need a server (.ci/run sets it)")
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    name = f"zwgk_test_{uuid.uuid4().hex[:12]}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest) -> str:
    """The same test on the embedded SQLite default and on PostgreSQL."""
    return request.getfixturevalue(f"{'sqlite' if request.param == 'sqlite' else 'postgres'}_url")


@dataclass
class SharedRedis:
    """The test Redis, with a key prefix of this test's own (tests run side by side)."""

    url: str
    prefix: str

    def stored_keys(self) -> list[str]:
        import redis

        with redis.Redis.from_url(self.url) as client:
            return sorted(key.decode() for key in client.scan_iter(f"{self.prefix}:*"))


@pytest.fixture
def shared_redis() -> Iterator[SharedRedis]:
    url = os.environ.get(REDIS_ENV)
    if not url:
        pytest.skip(f"{REDIS_ENV} is not set: distributed crawling tests need a Redis server (.ci/run sets it)")
    import redis

    prefix = f"zwgktest{uuid.uuid4().hex[:10]}"
    with redis.Redis.from_url(url) as client:
        client.ping()  # set but not answering: fail, do not skip
        yield SharedRedis(url, prefix)
        keys = list(client.scan_iter(f"{prefix}:*"))
        if keys:
            client.delete(*keys)


@dataclass
class FixtureSite:
    """A private copy of the fixture sites, served on 127.0.0.1, that a test may edit."""

    root: Path
    server: FixtureServer

    def path(self, url: str) -> Path:
        """The file behind a real URL such as https://jtw.sh.gov.cn/zxzfxx/index.html."""
        host_and_path = url.split("://", 1)[1]
        return self.root / host_and_path

    def manifest(self, host: str) -> list[dict]:
        return json.loads((self.root / host / "manifest.json").read_text(encoding="utf-8"))

    @property
    def host_map_json(self) -> str:
        return json.dumps(self.server.host_map())

    def replace_text(self, url: str, old: str, new: str) -> None:
        """Edit a page as its site would, giving it a new modification time."""
        path = self.path(url)
        content = path.read_text(encoding="utf-8")
        assert old in content, f"{old!r} not on {url}"
        path.write_text(content.replace(old, new), encoding="utf-8")
        stat = path.stat()
        os.utime(path, (stat.st_atime, stat.st_mtime + 10))


@pytest.fixture
def site(tmp_path: Path) -> Iterator[FixtureSite]:
    root = tmp_path / "sites"
    shutil.copytree(SITES, root)
    with FixtureServer(root) as server:
        yield FixtureSite(root, server)


def wait_for(condition: Callable[[], object], what: str = "condition", timeout: float = 120.0) -> None:
    """Wait until ``condition()`` holds (a test waits for what it needs, never for a while)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


class StderrLines:
    """A process's standard error, read as it comes, so a test can wait for a line instead of a while."""

    def __init__(self, process: subprocess.Popen) -> None:
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, args=(process,), daemon=True)
        self._reader.start()

    def _read(self, process: subprocess.Popen) -> None:
        for line in process.stderr:
            self.lines.append(line)

    def saw(self, pattern: str) -> bool:
        return any(re.search(pattern, line) for line in self.lines)

    def text(self) -> str:
        """Everything the process wrote, once it has ended."""
        self._reader.join(timeout=60)
        return "".join(self.lines)


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


FAST_CRAWL = ["-s", "AUTOTHROTTLE_ENABLED=False", "-s", "DOWNLOAD_DELAY=0", "-s", "ZWGK_RETRY_BACKOFF_BASE=0.1"]


@pytest.fixture
def shanghai_archive(site: FixtureSite, sqlite_url: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    """``sqlite_url``, holding a first crawl of the pristine Shanghai fixture site, for tests whose
    subject comes after that crawl. The crawl is made once per test run, shared by pytest-xdist's
    processes, and copied: its documents, versions, runs and validators are those a crawl of
    ``site`` would leave (the fixture files keep their bytes and times when copied)."""
    shared_dir = tmp_path_factory.getbasetemp().parent  # common to pytest-xdist's workers
    crawled = shared_dir / "shanghai-first-crawl.sqlite3"
    with open(shared_dir / "shanghai-first-crawl.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not crawled.exists():
            root = tmp_path_factory.mktemp("shanghai-first-crawl")
            shutil.copytree(SITES, root / "sites")
            making = root / "archive.sqlite3"
            with FixtureServer(root / "sites") as server:
                result = crawl(FixtureSite(root / "sites", server), f"sqlite:///{making}", "shanghai")
            assert result.returncode == 0, result.stdout + result.stderr
            assert not making.with_name(making.name + "-wal").exists(), "the crawl left its archive open"
            shutil.copyfile(making, crawled)
    shutil.copyfile(crawled, make_url(sqlite_url).database)
    return sqlite_url


def free_port() -> int:
    """A loopback port nothing listens on (for a receiver a test starts, or one that stays down)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def serving(app: Any) -> Iterator[str]:
    """``app`` (ASGI) under uvicorn on a free loopback port, once it answers; yields its base URL."""
    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="critical"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    wait_for(lambda: server.started or not thread.is_alive(), "uvicorn to start", timeout=60)
    assert server.started, "uvicorn did not start"
    host, port = sock.getsockname()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


# Commands that run Twisted's reactor (it starts once per process) or a server: a process each.
OWN_PROCESS = (("crawl",), ("worker",), ("schedule", "run"), ("serve",))


def run_zwgk(*args: str, host_map: str | None = None, cwd: Path | None = None,
             stdin: str | None = None, extra_env: dict[str, str] | None = None) -> Result:
    """Run the zwgk CLI as a user would: with ZWGK_DB and ZWGK_HOST_MAP only as given, in the
    repository (or ``cwd``). Commands in OWN_PROCESS get a new process; the others run here, through
    click's CliRunner, and an exception the CLI did not turn into a message fails the test."""
    env: dict[str, str | None] = {"ZWGK_DB": None, "ZWGK_HOST_MAP": host_map, **(extra_env or {})}
    if any(tuple(args[:len(command)]) == command for command in OWN_PROCESS):
        process_env = {**os.environ, "PYTHONWARNINGS": "ignore"}
        process_env.update(env)
        completed = subprocess.run(
            [sys.executable, "-m", "crawler.cli", *args], capture_output=True, text=True,
            env={name: value for name, value in process_env.items() if value is not None},
            cwd=cwd or ROOT, input=stdin, timeout=240,
        )
        return Result(completed.returncode, completed.stdout, completed.stderr)
    from crawler.cli import cli

    with working_directory(cwd or ROOT):
        result = CliRunner().invoke(cli, list(args), input=stdin, env=env, prog_name="zwgk")
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return Result(result.exit_code, result.stdout, result.stderr)


@contextlib.contextmanager
def working_directory(path: Path) -> Iterator[None]:
    previous = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(previous)


def crawl(site: FixtureSite, db_url: str, *args: str) -> Result:
    return run_zwgk("crawl", *args, *FAST_CRAWL, "--db", db_url, host_map=site.host_map_json)


def summary_row(result: Result, source: str) -> dict[str, str]:
    """The per-source line of `zwgk crawl`'s summary, by column name."""
    lines = result.stdout.strip().splitlines()
    header = lines[0].split()
    for line in lines[1:]:
        cells = line.split()
        if cells and cells[0] == source:
            return dict(zip(header, cells, strict=False))
    raise AssertionError(f"no summary line for {source} in:\n{result.stdout}\n{result.stderr}")
