"""Export memory: peak memory of `zwgk export` for a small and a ten times larger archive.

Streaming means the peak does not grow with the number of records: the ratio of the
two peaks (large / small) should stay near 1, while the record counts differ tenfold.

    python bench/export_memory.py [--versions 20000]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.search_latency import build  # noqa: E402

MEASURE = """
import resource, sys
from crawler.cli import cli
try:
    cli(sys.argv[1:])
except SystemExit:
    pass
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)
"""


def peak_kib(db: Path, fmt: str, output: Path) -> tuple[int, float]:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", MEASURE, "export", "--format", fmt, "--all-versions",
                           "-o", str(output), "--db", f"sqlite:///{db}"], cwd=ROOT, capture_output=True, text=True,
                          check=True)
    return int(done.stderr.strip().splitlines()[-1]), time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--versions", type=int, default=20_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        small, large = Path(directory) / "small.sqlite3", Path(directory) / "large.sqlite3"
        build(small, args.versions)
        build(large, args.versions * 10)
        print(f"{'format':<8} {'records':>9} {'peak MB':>8} {'seconds':>8}   {'records':>9} {'peak MB':>8} "
              f"{'seconds':>8}   peak ratio")
        for fmt in ("jsonl", "csv", "parquet"):
            (small_peak, small_time), (large_peak, large_time) = (
                peak_kib(db, fmt, Path(directory) / f"out.{fmt}") for db in (small, large))
            print(f"{fmt:<8} {args.versions:>9} {small_peak / 1024:>8.0f} {small_time:>8.1f}   "
                  f"{args.versions * 10:>9} {large_peak / 1024:>8.0f} {large_time:>8.1f}"
                  f"   {large_peak / small_peak:.2f}")


if __name__ == "__main__":
    main()
