"""Running crawls in this process and summarising each source's run."""

from __future__ import annotations

import functools
import logging
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass

from redis.exceptions import RedisError
from scrapy.crawler import Crawler, CrawlerProcess
from scrapy.settings import Settings
from scrapy.utils.reactor import install_reactor
from sqlalchemy.exc import SQLAlchemyError
from twisted.internet.task import LoopingCall
from twisted.python.failure import Failure

from archive import Archive, ArchiveError, resolve_db_url
from archive.leases import Lease, LeaseTaken
from archive.records import china_time
from crawler.context import CrawlContext, CrawlOptions, open_crawl_archive, plan_crawl
from crawler.distributed import SharedCrawl, connect, new_worker_id, shared_crawl_settings
from crawler.distributed.shared import text_of
from crawler.middlewares import parse_host_map
from spiders.loader import spider_class
from spiders.registry import SourceConfig

logger = logging.getLogger(__name__)
# Seconds a worker waits before joining again a shared crawl that failed to run in it.
FAILED_JOIN_PAUSE = 60.0


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
                   log_level: str = "WARNING", redis_url: str | None = None) -> Settings:
    """The project settings, then zwgk's choices for this run, then the user's ``-s`` values.

    ``redis_url`` makes the run a worker of crawls shared through that Redis.
    """
    settings = Settings()
    settings.setmodule("crawler.settings", priority="project")
    settings.set("ZWGK_DB", resolve_db_url(db_url), priority="cmdline")
    if redis_url:
        shared_crawl_settings(settings, redis_url)
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
    so two crawls of one source never run at once, wherever they were started. With
    ZWGK_DISTRIBUTED, this process joins (or starts) each source's crawl shared through
    the Redis of ZWGK_REDIS, and holds the lease together with the other workers. Each
    crawl's context is planned once its lease is held, before any crawl starts.
    """
    # Until Scrapy installs its graceful handlers (once the reactor runs), SIGTERM aborts
    # at once; the finally below still releases the leases.
    signal.signal(signal.SIGTERM, _abort)
    archive = open_crawl_archive(settings)
    cluster = Cluster(settings) if settings.getbool("ZWGK_DISTRIBUTED") else None
    leases: list[tuple[Lease, SharedCrawl | None]] = []
    skipped: dict[str, RunSummary] = {}
    crawlers = {}
    contexts: list[CrawlContext] = []
    try:
        for source in sources:
            try:
                if cluster is None:
                    lease, shared = _take_lease(archive, source.key, settings), None
                    options = CrawlOptions(full=full, revisit=revisit)
                else:
                    joined = cluster.join(archive, source, full, revisit)
                    if joined is None:  # join starts the crawl when none is under way
                        raise RuntimeError(f"{source.key}: neither joined nor started a shared crawl")
                    lease, shared, options = joined
            except LeaseTaken as error:
                skipped[source.key] = RunSummary(source.key, "locked", message=(
                    f"not crawled: another crawl of {source.key} is running ({error.holder}); "
                    f"its lock lapses at {china_time(error.expires_at)} if that process is dead"))
                continue
            except (RedisError, TimeoutError) as error:  # the shared Redis went away, or a crawl never got started
                skipped[source.key] = RunSummary(source.key, "failed", message=f"not crawled: {error}")
                continue
            leases.append((lease, shared))
            contexts.append(plan_crawl(archive, source, shared=shared, **options))
        process = CrawlerProcess(settings)
        logging.getLogger("scrapy.downloadermiddlewares.robotstxt").addFilter(_Demote())
        for context in contexts:
            crawlers[context.source.key] = _new_crawler(process, context.source)
            process.crawl(crawlers[context.source.key], context=context)
        if crawlers:
            process.start()
    finally:
        for lease, shared in leases:
            _let_go(lease, shared)
        archive.close()
    return [skipped.get(source.key) or _summary(source.key, crawlers[source.key].stats.get_stats())
            for source in sources]


def work_on_shared_crawls(sources: dict[str, SourceConfig], settings: Settings, poll_seconds: float = 5.0,
                          report: Callable[[str], None] = print) -> int:
    """Join every shared crawl of these sources as workers start them, until SIGTERM or Ctrl-C.

    Returns how many crawls this worker took part in. ``report`` gets one line as it
    joins a crawl and one as its part ends.
    """
    archive = open_crawl_archive(settings)
    cluster = Cluster(settings)
    install_reactor(settings.get("TWISTED_REACTOR"))  # Scrapy's, before anything imports the default one
    from twisted.internet import reactor

    process = CrawlerProcess(settings)
    logging.getLogger("scrapy.downloadermiddlewares.robotstxt").addFilter(_Demote())
    active: dict[str, tuple[Lease, SharedCrawl | None]] = {}
    failed_at: dict[str, float] = {}  # a crawl that failed to run here is not joined again for a while
    joined = 0

    def poll() -> None:
        nonlocal joined
        try:
            started = cluster.started_crawls()
        except RedisError as error:
            logger.warning("cannot read the shared crawls: %s", error)
            return
        for key in sorted(started - set(active)):
            if key not in sources or time.monotonic() - failed_at.get(key, -FAILED_JOIN_PAUSE) < FAILED_JOIN_PAUSE:
                continue
            try:
                found = join(sources[key])
            except (ArchiveError, SQLAlchemyError, RedisError, TimeoutError) as error:  # locked, or a server away
                logger.warning("%s: not joined: %s", key, error)
                failed_at[key] = time.monotonic()
                continue
            if found is None:
                continue
            lease, context = found
            active[key] = (lease, context.shared)
            joined += 1
            report(f"{key}: joined run {context.run_id}")
            crawler = _new_crawler(process, context.source)
            process.crawl(crawler, context=context).addBoth(functools.partial(left, key, crawler))

    def join(source: SourceConfig) -> tuple[Lease, CrawlContext] | None:
        """Join the source's shared crawl, if one is under way, and plan this worker's part of it."""
        found = cluster.join(archive, source, start=False)
        if found is None:
            return None
        lease, shared, options = found
        try:
            return lease, plan_crawl(archive, source, shared=shared, **options)
        except BaseException:
            _let_go(lease, shared)
            raise

    def left(key: str, crawler: Crawler, outcome: object) -> None:
        _let_go(*active.pop(key))
        if isinstance(outcome, Failure):
            logger.error("%s: the crawl failed: %s", key, outcome.getErrorMessage())
            failed_at[key] = time.monotonic()
        summary = _summary(key, crawler.stats.get_stats())
        report(f"{key}: {summary.status}: {summary.pages} pages, {summary.new} new, {summary.changed} changed, "
               f"{summary.errors} errors" + (f" ({summary.message})" if summary.message else ""))

    loop = LoopingCall(poll)

    def stop_polling_on_signals() -> None:
        """Scrapy's handlers stop the crawls gracefully; stop joining new ones first."""
        for signum in (signal.SIGTERM, signal.SIGINT):
            scrapy_handler = signal.getsignal(signum)

            def handler(number: int, frame: object, scrapy_handler=scrapy_handler) -> None:
                if loop.running:
                    reactor.callFromThread(loop.stop)
                if callable(scrapy_handler):
                    scrapy_handler(number, frame)

            signal.signal(signum, handler)

    reactor.callWhenRunning(stop_polling_on_signals)
    reactor.callWhenRunning(loop.start, poll_seconds)
    try:
        process.start(stop_after_crawl=False)
    finally:
        for lease, shared in active.values():
            _let_go(lease, shared)
        archive.close()
    return joined


class Cluster:
    """This process as a worker of the crawls shared through the Redis of ZWGK_REDIS."""

    def __init__(self, settings: Settings) -> None:
        self.redis = connect(settings.get("ZWGK_REDIS"))
        self.prefix = settings.get("ZWGK_REDIS_PREFIX")
        self.worker = new_worker_id()
        self.worker_timeout = settings.getfloat("ZWGK_WORKER_TIMEOUT")
        self.lease_seconds = settings.getfloat("ZWGK_LEASE_SECONDS")

    def started_crawls(self) -> set[str]:
        return {text_of(key) for key in self.redis.smembers(f"{self.prefix}:crawls")}

    def join(self, archive: Archive, source: SourceConfig, full: bool = False, revisit: bool = False,
             start: bool = True) -> tuple[Lease, SharedCrawl, CrawlOptions] | None:
        """Join the source's shared crawl (starting it, if ``start``), with the options it was started with."""
        shared = SharedCrawl(self.redis, self.prefix, source.key, self.worker, self.worker_timeout)
        lease = shared.join(archive, source, full, revisit, self.lease_seconds,
                            on_lease_lost=functools.partial(_stop_unless_over, shared), start=start)
        if lease is None:
            return None
        options = shared.options()  # every worker follows the --full/--revisit the crawl started with
        if start and options != {"full": full, "revisit": revisit}:
            logger.warning("%s: joined a crawl started with %s", source.key,
                           " ".join(f"--{name}" for name, on in options.items() if on) or "no --full or --revisit")
        return lease, shared, options


def _take_lease(archive: Archive, key: str, settings: Settings) -> Lease:
    lease = Lease(archive, f"crawl:{key}", settings.getfloat("ZWGK_LEASE_SECONDS"), on_lost=_stop_this_process)
    lease.acquire()
    archive.close_abandoned_runs(key)
    return lease


def _new_crawler(process: CrawlerProcess, source: SourceConfig) -> Crawler:
    return process.create_crawler(spider_class(source.key, source.platform))


def _let_go(lease: Lease, shared: SharedCrawl | None) -> None:
    if shared is None or shared.finished_here or not _is_current(shared):
        lease.release()  # (a shared crawl that is over: the lease held under its name goes with it)
    else:
        lease.stop_renewing()  # the lease stays with the workers still crawling


def _is_current(shared: SharedCrawl) -> bool:
    try:
        return shared.is_current()
    except RedisError:
        return True  # cannot tell: leave the lease to lapse


def _stop_unless_over(shared: SharedCrawl) -> None:
    """A worker that lost the shared lease stops, unless the crawl is over (the last worker let the lease go)."""
    if shared.is_current():
        _stop_this_process()


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
