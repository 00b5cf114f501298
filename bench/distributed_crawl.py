"""One crawl of the five fixture sites by one process, and shared by 1, 2 and 3 workers, in one run.

Prints for each: wall-clock seconds (process start included), requests the sites
served (robots.txt aside), distinct pages, and both as ratios to the plain crawl.
Needs a Redis (``--redis``, default redis://127.0.0.1:6379/0); each crawl gets a fresh
SQLite archive and a fresh copy of the sites, and its own key prefix in Redis.

    python bench/distributed_crawl.py [--workers 1 2 3] [--redis URL]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.fixtures.server import FixtureServer  # noqa: E402

FAST = ["-s", "AUTOTHROTTLE_ENABLED=False", "-s", "DOWNLOAD_DELAY=0"]


def crawl(workers: int, redis_url: str) -> tuple[float, int, int]:
    """(seconds, requests, distinct pages) of one crawl of every source by ``workers`` (0: a plain crawl)."""
    with tempfile.TemporaryDirectory() as scratch:
        sites = Path(scratch) / "sites"
        shutil.copytree(ROOT / "tests/fixtures/sites", sites)
        with FixtureServer(sites) as server:
            command = [sys.executable, "-m", "crawler.cli", "crawl", "--all", *FAST,
                       "--db", f"sqlite:///{scratch}/archive.sqlite3"]
            if workers:
                prefix = f"ZWGK_REDIS_PREFIX=bench{uuid.uuid4().hex[:8]}"
                command += ["--distributed", "--redis", redis_url, "-s", prefix]
            env = {**os.environ, "ZWGK_HOST_MAP": json.dumps(server.host_map()), "PYTHONWARNINGS": "ignore"}
            started = time.perf_counter()
            processes = [subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                                          stderr=subprocess.DEVNULL) for _ in range(max(workers, 1))]
            if any(process.wait() for process in processes):
                sys.exit("a crawl failed")
            seconds = time.perf_counter() - started
            paths = [record.path for record in server.requests if not record.path.endswith("/robots.txt")]
            return seconds, len(paths), len(set(paths))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    arguments = parser.parse_args()
    plain_seconds, plain_requests, plain_pages = crawl(0, arguments.redis)
    print(f"{'crawl':<22} {'seconds':>8} {'requests':>9} {'pages':>6} {'time ratio':>11} {'request ratio':>14}")
    print(f"{'plain, one process':<22} {plain_seconds:>8.1f} {plain_requests:>9} {plain_pages:>6}"
          f" {1:>11.2f} {1:>14.3f}")
    for workers in arguments.workers:
        seconds, requests, pages = crawl(workers, arguments.redis)
        print(f"{f'shared, {workers} worker(s)':<22} {seconds:>8.1f} {requests:>9} {pages:>6} "
              f"{seconds / plain_seconds:>11.2f} {requests / plain_requests:>14.3f}")


if __name__ == "__main__":
    main()
