"""Crawl throughput on the Shanghai fixture site, against plain fetching in the same run.

Prints: notices per second of a first crawl (wall clock, process start included), the
same for fetching the same pages with urllib (the baseline), extraction pages per
second against lxml parsing alone, and the requests an unchanged re-crawl makes.

    python bench/crawl_throughput.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lxml import html  # noqa: E402

from crawler.extract import extract_notice  # noqa: E402
from tests.fixtures.server import FixtureServer  # noqa: E402

HOST = "jtw.sh.gov.cn"
FAST = ["-s", "AUTOTHROTTLE_ENABLED=False", "-s", "DOWNLOAD_DELAY=0"]


def zwgk(*args: str, host_map: str) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "crawler.cli", *args], check=True, capture_output=True,
                   cwd=ROOT, env={"ZWGK_HOST_MAP": host_map, "PATH": "/usr/bin:/bin", "PYTHONWARNINGS": "ignore"})
    return time.perf_counter() - started


def fetch_all(urls: list[str], concurrency: int = 2) -> float:
    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(lambda url: urllib.request.urlopen(url, timeout=10).read(), urls))
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    rounds = parser.parse_args().rounds
    with tempfile.TemporaryDirectory() as scratch:
        sites = Path(scratch) / "sites"
        shutil.copytree(ROOT / "tests/fixtures/sites", sites)
        manifest = json.loads((sites / HOST / "manifest.json").read_text(encoding="utf-8"))
        with FixtureServer(sites) as server:
            host_map = json.dumps(server.host_map())
            base = server.host_map()[HOST]
            lists = [f"{base}/zxzfxx/{name}" for name in ("index.html", "index_2.html", "index_3.html")]
            urls = lists + [base + n["url"].split(HOST, 1)[1] for n in manifest]

            crawl_times, baseline_times = [], []
            for round_number in range(rounds):
                db = f"sqlite:///{scratch}/round{round_number}.sqlite3"
                crawl_times.append(zwgk("crawl", "shanghai", "--db", db, *FAST, host_map=host_map))
                baseline_times.append(fetch_all(urls))
            server.clear_log()
            recrawl = zwgk("crawl", "shanghai", "--db", f"sqlite:///{scratch}/round0.sqlite3", *FAST,
                           host_map=host_map)
            recrawl_requests = [r.path for r in server.requests]

        pages = [(sites / HOST / n["url"].split(HOST + "/", 1)[1]).read_bytes() for n in manifest]
        started = time.perf_counter()
        for _ in range(rounds):
            for notice, data in zip(manifest, pages, strict=True):
                extract_notice(data, notice["url"])
        extract_time = time.perf_counter() - started
        started = time.perf_counter()
        for _ in range(rounds):
            for data in pages:
                html.document_fromstring(data)
        parse_time = time.perf_counter() - started

    notices = len(manifest)
    crawl_s, baseline_s = statistics.median(crawl_times), statistics.median(baseline_times)
    extracted = notices * rounds
    print(f"first crawl: {notices} notices, {len(urls)} pages in {crawl_s:.2f} s "
          f"= {notices / crawl_s:.1f} notices/s (median of {rounds}, process start included)")
    print(f"baseline (urllib, 2 at a time, no extraction or archive): {baseline_s:.3f} s "
          f"= {notices / baseline_s:.0f} notices/s; crawl/baseline time ratio {crawl_s / baseline_s:.1f}")
    print(f"unchanged re-crawl: {recrawl:.2f} s, {len(recrawl_requests)} requests: {', '.join(recrawl_requests)}")
    print(f"extraction: {extracted / extract_time:.0f} pages/s; lxml parse alone {extracted / parse_time:.0f} "
          f"pages/s; extraction costs {extract_time / parse_time:.1f}x a parse")


if __name__ == "__main__":
    main()
