"""Search latency on a generated archive, against a plain substring scan in the same run.

Builds an SQLite archive of N versions of generated Chinese text (characters drawn
with a Zipf-like frequency, so common characters are common), then times 1-, 2- and
4-character queries through the archive's search (total count and first page of 20,
newest first, no facets) and through a substring scan of the same texts
(``instr`` over every row), and prints p50 / p95 and their ratio.

    python bench/search_latency.py [--versions 100000] [--queries 30]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import Connection, text  # noqa: E402

from archive import open_archive  # noqa: E402
from archive.search import index_version, parse_query  # noqa: E402

T = TypeVar("T")

COMMON = ("的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动同工也能下过子说产种面"
          "而方后多定行学法所民得经十三之进着等部度家电力里如水化高自二理起小物现实加量都两体制机当使点从业本去把"
          "性好应开它合还因由其些然前外天政四日那社义事平形相全表间样与关各重新线内数正心反你明看原又么利比或但质"
          "气第向道命此变条只没结解问意建月公无系军很情者最立代想已通并提直题党程展五果料象员革位入常文总次品式活"
          "设及管特件长求老头基资边流路级少图山统接知较将组见计别她手角期根论运农指几九区强放决西被干做必战先回则"
          "任取据处队南给色光门即保治北造百规热领七海口东导器压志世金增争济阶油思术极交受联什认六共权收证改清己美")


def build(path: Path, versions: int, seed: int = 1) -> None:
    archive = open_archive(f"sqlite:///{path}")
    archive.ensure_source("bench", "bench", "bench.example", "generic")
    rng = random.Random(seed)
    weights = [1 / (rank + 1) for rank in range(len(COMMON))]
    with archive.engine.begin() as connection:
        source_id = connection.scalar(text("SELECT id FROM sources"))
        for number in range(1, versions + 1):
            body = "".join(rng.choices(COMMON, weights, k=rng.randint(150, 450)))
            title = "".join(rng.choices(COMMON, weights, k=16))
            connection.execute(text(
                "INSERT INTO documents (id, source_id, canonical_url, url, first_seen, last_seen, last_changed, "
                "version_count, status, missing_checks) VALUES (:n, :s, :u, :u, '2026-01-01', '2026-01-01', "
                "'2026-01-01', 1, 'active', 0)"), {"n": number, "s": source_id, "u": f"https://bench.example/{number}"})
            connection.execute(text(
                "INSERT INTO versions (id, document_id, number, seen_at, content_hash, extractor_version, title, body, "
                "body_original, published_at) VALUES (:n, :n, 1, '2026-01-01', :n, '1', :t, :b, '', :p)"),
                {"n": number, "t": title, "b": body, "p": f"20{10 + number % 16}-0{1 + number % 9}-1{number % 10}"})
            index_version(connection, number, [title, None, body])
            if number % 20000 == 0:
                print(f"  … {number} versions", file=sys.stderr)
    archive.close()


def timed(function: Callable[..., T], *args: object, **kwargs: object) -> tuple[float, T]:
    """How long one call takes, in milliseconds, and what it returned."""
    start = time.perf_counter()
    value = function(*args, **kwargs)
    return (time.perf_counter() - start) * 1000, value


def scan(connection: Connection, needle: str) -> int:
    """What search replaces: a substring scan over every indexed text."""
    return connection.execute(text("SELECT count(*) FROM search_texts WHERE instr(text, :n) > 0"),
                              {"n": needle}).scalar_one()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--versions", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "bench.sqlite3"
        started = time.perf_counter()
        build(path, args.versions)
        print(f"built {args.versions} versions in {time.perf_counter() - started:.0f} s "
              f"({path.stat().st_size / 2**20:.0f} MB)")
        archive = open_archive(f"sqlite:///{path}")
        rng = random.Random(2)
        print(f"{'length':>6} {'search p50':>11} {'p95':>8} {'scan p50':>9} {'p95':>8} {'ratio p95':>9}"
              f" {'hits p50':>9}")
        for length in (1, 2, 4):
            searches, scans, hits = [], [], []
            for _ in range(args.queries):
                needle = "".join(rng.choices(COMMON[:200], k=length))
                query = parse_query(f'"{needle}"')
                elapsed, result = timed(archive.search, query, sort="date", limit=20, facets=False)
                searches.append(elapsed)
                hits.append(result.total)
                with archive.engine.connect() as connection:
                    scans.append(timed(scan, connection, needle)[0])
            p95 = statistics.quantiles(searches, n=20)[-1]
            scan_p95 = statistics.quantiles(scans, n=20)[-1]
            print(f"{length:>6} {statistics.median(searches):>9.1f}ms {p95:>6.1f}ms {statistics.median(scans):>7.1f}ms "
                  f"{scan_p95:>6.1f}ms {scan_p95 / p95:>8.1f}x {statistics.median(hits):>9.0f}")
        archive.close()


if __name__ == "__main__":
    main()
