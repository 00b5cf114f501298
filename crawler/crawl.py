"""Running crawls in this process and summarising each source's run."""

from __future__ import annotations

import logging
import os
import signal
from dataclasses import dataclass

from scrapy.crawler import CrawlerProcess
from scrapy.settings import Settings

from archive import open_archive, resolve_db_url
from archive.leases import Lease, LeaseTaken
from archive.store import china_time
from crawler.middlewares import parse_host_map
from spiders.loader import spider_class
from spiders.registry import SourceConfig


@dataclass(frozen=True)
class RunSummary:
    """What one source's crawl did."""

    source: str
    status: str
    pages: int = 0
    new: int = 0
    changed: int = 0
    unchanged: int = 0
    not_modified: int = 0
    errors: int = 0
    message: str | None = None
    problem: str | None = None  # why the run says the source looks broken (archive.health)

    @property
    def ok(self) -> bool:
        return self.status == "completed"


def crawl_settings(db_url: str | None, sources_file: str | None, overrides: dict[str, str],
                   log_level: str = "WARNING") -> Settings:
    """The project settings, then zwgk's choices for this run, then the user's ``-s`` values."""
    settings = Settings()
    settings.setmodule("crawler.settings", priority="project")
    settings.set("ZWGK_DB", resolve_db_url(db_url), priority="cmdline")
    if sources_file:
        settings.set("ZWGK_SOURCES", sources_file, priority="cmdline")
    settings.set("LOG_LEVEL", log_level, priority="cmdline")
    for name, value in overrides.items():
        _check_setting(name, value, settings.get(name))
        settings.set(name, value, priority="cmdline")
    parse_host_map(settings.get("HOST_MAP"))  # a malformed map is a usage error, before anything starts
    return settings


# Settings whose zero or negative value would make a crawl wait forever.
_AT_LEAST_ONE = ("CONCURRENT_REQUESTS", "CONCURRENT_REQUESTS_PER_DOMAIN", "CONCURRENT_ITEMS")


def _check_setting(name: str, value: str, default: object) -> None:
    """A ``-s`` value of the wrong kind fails here, in one line, not deep inside a running crawl."""
    kind = type(default)
    if kind in (int, float):
        try:
            number = float(value)  # some settings with a whole-number default are read as floats (timeouts)
        except ValueError:
            raise ValueError(f"-s {name}={value}: {name} takes a number") from None
        if name in _AT_LEAST_ONE and number < 1:
            raise ValueError(f"-s {name}={value}: {name} must be at least 1")
        if number < 0 and (name.endswith(("_DELAY", "_TIMEOUT", "_TIMES")) or "MAXSIZE" in name):
            raise ValueError(f"-s {name}={value}: {name} cannot be negative")
    elif kind is bool and value.lower() not in ("0", "1", "true", "false", "yes", "no", "on", "off"):
        raise ValueError(f"-s {name}={value}: {name} takes true or false")


class _Demote(logging.Filter):
    """Turn a noisy logger's errors into INFO lines without tracebacks.

    A dead site makes Scrapy's robots.txt middleware log a full traceback; the same
    failure is recorded with the run and summarised by `zwgk crawl` in one line.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        record.levelno, record.levelname = logging.INFO, "INFO"
        record.exc_info, record.exc_text = None, None
        return True


def run_crawls(sources: list[SourceConfig], settings: Settings, full: bool = False,
               revisit: bool = False) -> list[RunSummary]:
    """Crawl ``sources`` together in this process (once: Twisted's reactor cannot restart).

    Each source is crawled only while this process holds its lease in the archive,
    so two crawls of one source never run at once, wherever they were started.
    """
    # Until Scrapy installs its graceful handlers (once the reactor runs), SIGTERM aborts
    # at once; the finally below still releases the leases.
    signal.signal(signal.SIGTERM, _abort)
    archive = open_archive(settings.get("ZWGK_DB"))
    leases: list[Lease] = []
    skipped: dict[str, RunSummary] = {}
    try:
        for source in sources:
            lease = Lease(archive, f"crawl:{source.key}", settings.getfloat("ZWGK_LEASE_SECONDS"),
                          on_lost=_stop_this_process)
            try:
                lease.acquire()
            except LeaseTaken as error:
                skipped[source.key] = RunSummary(source.key, "locked", message=(
                    f"not crawled: another crawl of {source.key} is running ({error.holder}); "
                    f"its lock lapses at {china_time(error.expires_at)} if that process is dead"))
                continue
            leases.append(lease)
            archive.close_abandoned_runs(source.key)
        process = CrawlerProcess(settings)
        logging.getLogger("scrapy.downloadermiddlewares.robotstxt").addFilter(_Demote())
        crawlers = {}
        for source in sources:
            if source.key not in skipped:
                crawler = process.create_crawler(spider_class(source.key, source.platform))
                crawlers[source.key] = crawler
                process.crawl(crawler, source=source.key, full=full, revisit=revisit)
        if crawlers:
            process.start()
    finally:
        for lease in leases:
            lease.release()
        archive.close()
    return [skipped.get(source.key) or _summary(source.key, crawlers[source.key].stats.get_stats())
            for source in sources]


def _stop_this_process() -> None:
    """A lost lease means another crawl may have started: stop cleanly, as on SIGTERM."""
    os.kill(os.getpid(), signal.SIGTERM)


def _abort(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(f"stopped by {signal.Signals(signum).name} before crawling began")


def _summary(key: str, stats: dict) -> RunSummary:
    status = stats.get("zwgk/status")
    if status is None:
        return RunSummary(key, "failed", message=stats.get("zwgk/first_error") or "the crawl did not start")
    return RunSummary(
        key, status,
        **{name: int(stats.get(f"zwgk/{name}", 0))
           for name in ("pages", "new", "changed", "unchanged", "not_modified", "errors")},
        message=stats.get("zwgk/message"), problem=stats.get("zwgk/problem"),
    )
