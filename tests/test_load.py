"""`zwgk serve` and `zwgk search` under load while a crawl writes the same SQLite archive.

A bounded loopback load: threads search the web pages and the JSON API of a real
`zwgk serve` process (it opens the archive read-only) for as long as a crawl of
Guangzhou (142 notices) writes into the same SQLite file, up to a capped number of
requests, while the command line searches too. Every answer must be a 200, and
every notice the crawl saw must be archived.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator

import httpx
import pytest

from archive import open_archive
from archive.urls import canonical_url
from tests.conftest import FAST_CRAWL, ROOT, FixtureSite, StderrLines, free_port, run_zwgk, wait_for

# End to end (a crawl process, a server process, load threads): left out by `pytest -m "not slow"`.
pytestmark = pytest.mark.slow

THREADS = 4
MAX_REQUESTS = 800  # in all, across the threads
CLI_SEARCHES = 20
QUERIES = ("公路", "交通运输", "通知 source:guangzhou", "港口 OR 航道", "管理 -收费", "广州市交通运输局")


@pytest.fixture
def served(shanghai_archive: str) -> Iterator[tuple[str, StderrLines]]:
    """`zwgk serve` on the archive of a first Shanghai crawl, once it answers."""
    port = free_port()
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    env.pop("ZWGK_DB", None)
    process = subprocess.Popen([sys.executable, "-m", "crawler.cli", "serve", "--port", str(port),
                                "--db", shanghai_archive], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)
    stderr = StderrLines(process)
    base = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        assert process.poll() is None, stderr.text()
        try:
            return httpx.get(base + "/api/search", params={"q": "公路"}, timeout=5).status_code == 200
        except httpx.TransportError:
            return False

    wait_for(answers, "zwgk serve to answer", timeout=60)
    yield base, stderr
    process.terminate()
    process.wait(timeout=30)


class Load:
    """Threads searching the server until told to stop or out of requests; every answer is kept."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.statuses: Counter[int] = Counter()
        self.failures: list[str] = []
        self._budget = iter(range(MAX_REQUESTS))
        self._lock = threading.Lock()
        self.stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(n,), daemon=True) for n in range(THREADS)]
        for thread in self._threads:
            thread.start()

    def _next(self) -> int | None:
        with self._lock:
            return None if self.stop.is_set() else next(self._budget, None)

    def _run(self, seed: int) -> None:
        with httpx.Client(base_url=self.base, timeout=60) as client:
            while (number := self._next()) is not None:
                query = QUERIES[(number + seed) % len(QUERIES)]
                path = ("/", "/api/search", "/search.csv")[number % 3]
                try:
                    response = client.get(path, params={"q": query})
                except httpx.HTTPError as error:
                    status, detail = 0, repr(error)
                else:
                    status, detail = response.status_code, response.text[:300]
                with self._lock:
                    self.statuses[status] += 1
                    if status != 200:
                        self.failures.append(f"{path}?q={query}: {status} {detail}")

    def answered(self) -> int:
        with self._lock:
            return sum(self.statuses.values())

    def finish(self) -> None:
        self.stop.set()
        for thread in self._threads:
            thread.join(timeout=120)


def test_serve_and_search_answer_every_request_while_a_crawl_writes(
        site: FixtureSite, shanghai_archive: str, served: tuple[str, StderrLines]) -> None:
    base, server_log = served
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "ZWGK_HOST_MAP": site.host_map_json}
    env.pop("ZWGK_DB", None)
    crawl = subprocess.Popen([sys.executable, "-m", "crawler.cli", "crawl", "guangzhou", *FAST_CRAWL,
                              "--db", shanghai_archive], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    crawl_log = StderrLines(crawl)
    load = Load(base)
    searches = []
    while crawl.poll() is None and len(searches) < CLI_SEARCHES:
        searches.append(run_zwgk("search", QUERIES[len(searches) % len(QUERIES)], "--db", shanghai_archive))
    crawl.wait(timeout=300)
    during_crawl = load.answered()
    load.finish()
    crawl_errors = crawl_log.text()
    assert crawl.returncode == 0, crawl_errors
    assert load.failures == [], load.failures[:5]
    assert during_crawl >= 100, f"only {during_crawl} requests while the crawl wrote"
    assert searches and all(result.returncode == 0 for result in searches), [r.stderr for r in searches]
    assert not any("locked" in result.stderr for result in searches)
    assert "database is locked" not in crawl_errors and "could not archive" not in crawl_errors
    assert not server_log.saw("Traceback|locked"), "".join(server_log.lines)
    manifest = {canonical_url(notice["url"]) for notice in site.manifest("jtj.gz.gov.cn")}
    archive = open_archive(shanghai_archive)
    assert archive.known_urls("guangzhou") == manifest  # no lost write
    answer = httpx.get(base + "/api/search", params={"q": "source:guangzhou"}, timeout=60).json()
    assert answer["total"] == len(manifest)  # and the server sees every one of them
    archive.close()
