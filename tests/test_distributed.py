"""Workers sharing crawls through Redis: every notice archived once, nothing lost to a killed worker.

The workers are real `zwgk crawl --distributed` processes crawling the five fixture
sites over HTTP into the test PostgreSQL, sharing the test Redis. What they do is
compared with one plain `zwgk crawl --all` of the same sites.
"""

from __future__ import annotations

import concurrent.futures
import fcntl
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass

import pytest
import redis

from archive import open_archive
from archive.leases import Lease
from tests.conftest import (
    FAST_CRAWL,
    ROOT,
    SITES,
    FixtureSite,
    SharedRedis,
    StderrLines,
    crawl,
    run_zwgk,
    wait_for,
)
from tests.fixtures.server import FixtureServer

# End to end (worker processes, PostgreSQL, Redis, schedulers): left out by `pytest -m "not slow"`.
pytestmark = pytest.mark.slow

WORKER_TIMEOUT = 4  # seconds before a silent worker's requests go back on the queue (the kill test)


@dataclass(frozen=True)
class Harvest:
    """What a crawl of the five sites fetched and archived."""

    fetched: Counter  # request path -> times fetched (robots.txt aside: each process asks once per host)
    notices: dict[str, tuple]  # url -> the fields a researcher would compare, and its attachment rows
    versions: int


def harvest(server: FixtureServer, db_url: str) -> Harvest:
    fetched = Counter(record.path for record in server.requests if not record.path.endswith("/robots.txt"))
    result = run_zwgk("export", "--format", "jsonl", "--all-versions", "--db", db_url)
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    notices = {record["url"]: (record["source"], record["title"], record["published_at"], record["doc_number"],
                               record["content_hash"], attachment_rows(record)) for record in records}
    return Harvest(fetched, notices, len(records))


def attachment_rows(record: dict) -> str:
    """A version's attachment rows as one comparable (and JSON-safe) string: URL and digest of each."""
    return " ".join(f"{attachment['url']}={attachment['sha256']}" for attachment in record["attachments"])


@pytest.fixture(scope="session")
def single_worker(tmp_path_factory: pytest.TempPathFactory) -> Harvest:
    """The baseline: one plain crawl of every source, made once for all test processes of the run."""
    shared_dir = tmp_path_factory.getbasetemp().parent  # common to pytest-xdist's workers
    with open(shared_dir / "single_worker.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        saved = shared_dir / "single_worker.json"
        if saved.exists():
            fetched, notices, versions = json.loads(saved.read_text(encoding="utf-8"))
            return Harvest(Counter(fetched), {url: tuple(notice) for url, notice in notices.items()}, versions)
        root = tmp_path_factory.mktemp("baseline")
        shutil.copytree(SITES, root / "sites")
        db_url = f"sqlite:///{root / 'archive.sqlite3'}"
        with FixtureServer(root / "sites") as server:
            result = crawl(FixtureSite(root / "sites", server), db_url, "--all")
            assert result.returncode == 0, result.stdout + result.stderr
            baseline = harvest(server, db_url)
        saved.write_text(json.dumps([baseline.fetched, baseline.notices, baseline.versions]), encoding="utf-8")
        return baseline


def start_workers(site: FixtureSite, db_url: str, shared: SharedRedis, count: int, *args: str,
                  worker_timeout: float = 30.0) -> list[subprocess.Popen]:
    """``count`` workers of a shared crawl; ``worker_timeout`` stays at its default where no worker is
    to be killed, so a worker slowed down by a busy test machine is not taken for dead."""
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "ZWGK_HOST_MAP": site.host_map_json}
    env.pop("ZWGK_REDIS", None)
    command = [sys.executable, "-m", "crawler.cli", "crawl", "--distributed", "--redis", shared.url,
               "-s", f"ZWGK_REDIS_PREFIX={shared.prefix}", "-s", f"ZWGK_WORKER_TIMEOUT={worker_timeout}",
               *FAST_CRAWL, "--db", db_url, *args]
    return [subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for _ in range(count)]


def finish(workers: list[subprocess.Popen]) -> list[tuple[int, str, str]]:
    results = []
    for worker in workers:
        stdout, stderr = worker.communicate(timeout=240)
        results.append((worker.returncode, stdout, stderr))
    return results


def runs(db_url: str) -> dict[str, tuple[str, int, int]]:
    archive = open_archive(db_url)
    try:
        return {key: (run.status, run.new, run.changed) for run, key in archive.runs()}
    finally:
        archive.close()


def assert_same_notices(got: Harvest, expected: Harvest) -> None:
    assert got.notices == expected.notices
    assert got.versions == len(got.notices)  # one version each: no notice archived twice


def test_three_workers_split_the_crawl_and_archive_each_notice_once(
        site: FixtureSite, postgres_url: str, shared_redis: SharedRedis, single_worker: Harvest) -> None:
    results = finish(start_workers(site, postgres_url, shared_redis, 3, "--all"))
    assert [code for code, _, _ in results] == [0, 0, 0], results
    got = harvest(site.server, postgres_url)
    assert_same_notices(got, single_worker)
    assert set(got.fetched) == set(single_worker.fetched)
    total, alone = sum(got.fetched.values()), sum(single_worker.fetched.values())
    assert alone <= total <= alone * 1.03, f"{total} requests for three workers, {alone} for one"
    # The work was shared: more than one worker fetched pages.
    busy = [stdout for _, stdout, _ in results if any(int(line.split()[2]) for line in stdout.splitlines()[1:])]
    assert len(busy) >= 2, results
    # One run per source, finished with the counts of all workers together.
    per_source = Counter(notice[0] for notice in got.notices.values())
    assert runs(postgres_url) == {key: ("completed", count, 0) for key, count in per_source.items()}
    # Nothing of the finished crawls is left in Redis but heartbeats about to expire.
    assert [key for key in shared_redis.stored_keys() if ":worker:" not in key] == []


def test_a_worker_killed_mid_crawl_loses_nothing(
        site: FixtureSite, postgres_url: str, shared_redis: SharedRedis, single_worker: Harvest) -> None:
    # Guangzhou: the largest fixture site, with both a JSON catalogue and portal rows that wait for it.
    workers = start_workers(site, postgres_url, shared_redis, 3, "guangzhou", worker_timeout=WORKER_TIMEOUT)
    victim = wait_for_a_worker_holding_requests(shared_redis, workers)
    victim.kill()  # SIGKILL: no chance to hand anything back
    results = finish([worker for worker in workers if worker is not victim])
    assert [code for code, _, _ in results] == [0, 0], results
    assert any("back on the queue" in stderr for _, _, stderr in results), results
    got = harvest(site.server, postgres_url)
    assert_same_notices(got, only(single_worker, "guangzhou"))
    assert set(got.fetched) == {path for path in single_worker.fetched if path.startswith("/jtj.gz.gov.cn/")}
    assert {status for status, _, _ in runs(postgres_url).values()} == {"completed"}, results


def only(harvest_: Harvest, source: str) -> Harvest:
    notices = {url: notice for url, notice in harvest_.notices.items() if notice[0] == source}
    return Harvest(harvest_.fetched, notices, len(notices))


def wait_for_a_worker_holding_requests(shared: SharedRedis, workers: list[subprocess.Popen]) -> subprocess.Popen:
    """The worker that holds fetched-but-unfinished requests right now (its id names its pid), while
    plenty is still queued: mid-crawl, not while the last requests are done and the run is written."""
    by_pid = {worker.pid: worker for worker in workers}
    deadline = time.monotonic() + 60
    with redis.Redis.from_url(shared.url) as client:
        while time.monotonic() < deadline:
            for key in client.scan_iter(f"{shared.prefix}:crawl:*:inflight:*"):
                queued = client.zcard(key.decode().split(":inflight:")[0] + ":requests")
                pid = int(key.decode().rsplit(":", 2)[-2])
                if client.hlen(key) >= 2 and queued >= 10 and pid in by_pid:
                    return by_pid[pid]
            time.sleep(0.05)
    pytest.fail("no worker held two requests while ten more were queued")


def test_the_next_shared_crawl_revisits_what_the_last_one_saw(
        site: FixtureSite, postgres_url: str, shared_redis: SharedRedis) -> None:
    finish(start_workers(site, postgres_url, shared_redis, 1, "shanghai"))
    archived = archived_urls(postgres_url)
    site.server.requests.clear()
    results = finish(start_workers(site, postgres_url, shared_redis, 2, "shanghai", "--revisit"))
    assert [code for code, _, _ in results] == [0, 0], results
    rechecked = Counter(record.path for record in site.server.requests if "If-None-Match" in record.headers)
    assert sorted(rechecked) == sorted("/" + url.split("://", 1)[1] for url in archived)
    assert set(rechecked.values()) == {1}


def archived_urls(db_url: str) -> list[str]:
    result = run_zwgk("export", "--format", "jsonl", "--db", db_url)
    return [json.loads(line)["url"] for line in result.stdout.splitlines()]


def test_a_source_crawled_outside_the_cluster_is_not_joined(
        site: FixtureSite, postgres_url: str, shared_redis: SharedRedis) -> None:
    archive = open_archive(postgres_url)
    with Lease(archive, "crawl:shanghai", holder="a plain crawl on another machine"):
        (code, stdout, stderr), = finish(start_workers(site, postgres_url, shared_redis, 1, "shanghai"))
    archive.close()
    assert code == 1
    assert "locked" in stdout and "a plain crawl on another machine" in stderr
    assert site.server.requests == []


def test_distributed_needs_a_redis_that_answers(site: FixtureSite, sqlite_url: str) -> None:
    result = run_zwgk("crawl", "shanghai", "--distributed", "--db", sqlite_url, extra_env={"ZWGK_REDIS": ""})
    assert result.returncode == 2
    assert "--distributed needs the shared Redis" in result.stderr
    result = run_zwgk("crawl", "shanghai", "--distributed", "--redis", "redis://127.0.0.1:1/0", "--db", sqlite_url)
    assert result.returncode == 1
    assert "cannot reach the shared Redis at redis://127.0.0.1:1/0" in result.stderr
    assert "Traceback" not in result.stderr


def test_workers_share_the_crawls_a_clustered_scheduler_starts(
        site: FixtureSite, postgres_url: str, shared_redis: SharedRedis, single_worker: Harvest,
        monkeypatch: pytest.MonkeyPatch) -> None:
    from scheduler import Harvester, ScheduleConfig

    settings = [*FAST_CRAWL[1::2], f"ZWGK_REDIS_PREFIX={shared_redis.prefix}"]
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "ZWGK_HOST_MAP": site.host_map_json}
    workers = [subprocess.Popen(
        [sys.executable, "-m", "crawler.cli", "worker", "--redis", shared_redis.url, "--poll", "0.5",
         *(arg for setting in settings for arg in ("-s", setting)), "--db", postgres_url],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [StderrLines(worker) for worker in workers]
    wait_for(lambda: all(output.saw("waiting for shared crawls") for output in outputs), "the workers to start")
    monkeypatch.setenv("ZWGK_HOST_MAP", site.host_map_json)
    harvester = Harvester(postgres_url, config=ScheduleConfig(), crawl_settings=settings, redis_url=shared_redis.url)
    # The catalogue waits until both workers have joined the crawl, so they find its pages queued.
    catalogue = site.server.hold("/jtj.gz.gov.cn/gkmlpt/index")
    try:
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            job = pool.submit(harvester.crawl, "guangzhou")  # the job: start the crawl, work on it with the workers
            try:
                wait_for(lambda: all(output.saw("guangzhou: joined run") for output in outputs), "the workers to join")
            finally:
                catalogue.release()
            assert job.result(timeout=600) == 0
        wait_for(lambda: any(output.saw(r"^guangzhou: \w+: \d+ pages") for output in outputs),
                 "a worker to report its part")
    finally:
        harvester.archive.close()
        for worker in workers:
            worker.terminate()
    results = [(worker.wait(timeout=240), "", output.text()) for worker, output in zip(workers, outputs, strict=True)]
    assert [code for code, _, _ in results] == [0, 0], results
    joined = [stderr for _, _, stderr in results if "guangzhou: joined run" in stderr]
    assert joined, results
    got = harvest(site.server, postgres_url)
    assert_same_notices(got, only(single_worker, "guangzhou"))
    # The workers fetched part of the pages: the one crawl was split.
    fetched_by_workers = sum(int(match.group(1)) for stderr in joined
                             for match in re.finditer(r"^guangzhou: \w+: (\d+) pages", stderr, re.MULTILINE))
    assert 0 < fetched_by_workers < sum(got.fetched.values()), results


# The shared crawl's steps, on the real Redis, without crawling.

def joined(shared_redis: SharedRedis, archive, worker: str, timeout: float = 1.0):
    """A worker's view of the shared crawl of shanghai, joined (or started), holding no lease thread."""
    from crawler.distributed import SharedCrawl, connect
    from spiders.registry import load_sources

    crawl = SharedCrawl(connect(shared_redis.url), shared_redis.prefix, "shanghai", worker, timeout)
    crawl.join(archive, load_sources(None)["shanghai"], False, False, 60.0, on_lease_lost=lambda: None).stop_renewing()
    return crawl


def test_a_silent_worker_loses_its_requests_to_the_queue_and_gets_them_back_only_by_beating(
        shared_redis: SharedRedis, sqlite_url: str) -> None:
    archive = open_archive(sqlite_url)
    first, second = (joined(shared_redis, archive, name) for name in ("one", "two"))
    assert first.push(b"list page", 0, b"fp-list") and first.push(b"detail page", 0, b"fp-detail")
    first.acknowledge([], {}, None, seeded=True)
    assert {first.pop(), second.pop()} == {b"list page", b"detail page"}
    assert not first.finished()  # both held
    time.sleep(1.2)  # both heartbeats lapse
    assert second.beat() == 1  # the first worker's request is back on the queue, checked and moved in one step
    assert second.pop() is not None
    first.beat()  # the first worker was only slow: it is back among the workers
    first.push(b"found later", 0, b"fp-later")
    assert first.pop() == b"found later"
    assert not second.finished()  # what the returning worker holds keeps the crawl open
    archive.close()


def test_the_duplicate_filter_and_the_queue_move_together_and_belong_to_one_crawl(
        shared_redis: SharedRedis, sqlite_url: str) -> None:
    archive = open_archive(sqlite_url)
    crawl, other = joined(shared_redis, archive, "one"), joined(shared_redis, archive, "two")
    assert crawl.push(b"page", 0, b"fp") is True
    assert crawl.push(b"page again", 0, b"fp") is False  # seen
    assert crawl.push(b"revisit", 0) is True  # no fingerprint: dont_filter
    crawl.defer(b"fp-portal", b"portal row")
    crawl.defer(b"fp", b"portal row of a page already queued")
    crawl.acknowledge([], {"pages": 2}, "first: error", seeded=True)
    while (payload := crawl.pop()) is not None:
        crawl.acknowledge([payload], {"pages": 1}, "later: error")
    assert not crawl.finished()  # the deferred row not seen yet is queued now
    assert crawl.pop() == b"portal row"
    assert crawl.pop() is None
    crawl.acknowledge([b"portal row"], {}, None)
    assert crawl.finished()
    assert crawl.totals() == {"pages": 4, "first_error": "first: error"}
    assert crawl.claim_finish() is True
    assert other.claim_finish() is False  # one finisher per crawl
    old_id = crawl.crawl_id
    crawl.forget(old_id)
    assert shared_redis.stored_keys() == [f"{shared_redis.prefix}:worker:one", f"{shared_redis.prefix}:worker:two"]
    # A worker lagging behind the finished crawl cannot act on it, nor leave keys behind.
    assert crawl.push(b"late", 0, b"fp-late") is False and crawl.pop() is None
    crawl.defer(b"fp-late", b"late")
    crawl.acknowledge([], {"pages": 1}, None)
    assert crawl.finished() and not crawl.claim_seeding()
    assert [key for key in shared_redis.stored_keys() if ":worker:" not in key] == []
    archive.close()
