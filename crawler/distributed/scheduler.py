"""The scheduler of a worker in a shared crawl, and the spider middleware that leaves seeding to it."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

from redis.exceptions import RedisError
from scrapy import Request, Spider
from scrapy.core.scheduler import BaseScheduler
from scrapy.crawler import Crawler
from scrapy.dupefilters import RFPDupeFilter
from scrapy.utils.defer import deferred_from_coro
from twisted.internet.task import LoopingCall

from crawler.items import DEFER
from spiders.base import NoticeSpider

from .queue import ReliableQueue
from .shared import SharedCrawl

logger = logging.getLogger(__name__)


class SharedScheduler(BaseScheduler):
    """The scheduler of a worker in a shared crawl (SCHEDULER when crawling with --distributed).

    The crawl stays open while anything is queued, deferred or held by any worker; a
    request is acknowledged once Scrapy's engine no longer has it in progress. A worker
    that cannot queue what a page led to stops acknowledging and closes: everything it
    holds goes back to the queue, so nothing is lost with the requests it could not queue.
    """

    def __init__(self, crawler: Crawler, crawl: SharedCrawl) -> None:
        self.crawler, self.crawl, self.stats = crawler, crawl, crawler.stats
        self.fingerprint = crawler.request_fingerprinter.fingerprint
        # Scrapy's own duplicate filter, only to log and count what the shared one filtered.
        self.duplicates = RFPDupeFilter(debug=crawler.settings.getbool("DUPEFILTER_DEBUG"),
                                        fingerprinter=crawler.request_fingerprinter)
        self.flushed: dict[str, int] = {}
        self.error_sent = False
        self.broken = False
        self.heartbeat = LoopingCall(self.beat)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> SharedScheduler:
        crawl = SharedCrawl.of(crawler)
        if crawl is None:
            raise RuntimeError("SharedScheduler crawls only for `zwgk crawl --distributed` and `zwgk worker`")
        return cls(crawler, crawl)

    def open(self, spider: Spider) -> None:
        if not isinstance(getattr(getattr(self.crawler.engine, "_slot", None), "inprogress", None), set):
            # Without it no request could be acknowledged at the right time: refuse rather than lose requests.
            raise RuntimeError("this Scrapy's engine does not expose the requests in progress that shared crawls "
                               "acknowledge by (engine._slot.inprogress); install the Scrapy version zwgk names")
        if not isinstance(spider, NoticeSpider):  # the queue is seeded with its initial_requests()
            raise RuntimeError(f"a shared crawl is a zwgk spider's, not {spider!r}'s")
        self.spider = spider
        self.queue = ReliableQueue(self.crawl, spider)
        self.heartbeat.start(self.crawl.worker_timeout / 3, now=True)

    def beat(self) -> None:
        if self.broken:
            return
        try:
            moved = self.crawl.beat()
            if moved:
                logger.warning("%s: %d requests held by silent workers are back on the queue", self.crawl.source, moved)
            self._acknowledge()
            self._seed()
        except RedisError as error:  # Redis away for a moment: the next beat tries again
            logger.warning("%s: the shared crawl's heartbeat failed: %s", self.crawl.source, error)

    def _seed(self) -> None:
        """Queue the run's start requests, if nobody has (the worker that started the crawl, or took over)."""
        if not self.crawl.claim_seeding():
            return
        count, failure = 0, None
        try:
            for count, request in enumerate(self.spider.initial_requests(), 1):
                self.enqueue_request(request)
                if count % 500 == 0:
                    self.crawl.keep_seeding()
        except RedisError:
            raise  # not seeded: another beat (of this worker or another) seeds again
        except Exception as error:  # the archive unreachable, a bug: the run ends, saying why
            logger.exception("%s: could not compute the start requests", self.crawl.source)
            failure = f"seeding: {error.__class__.__name__}: {error}"
        finally:
            self.crawl.release_seeding()
        self._acknowledge(seeded=True, first_error=failure)
        logger.info("%s: queued %d start requests for every worker", self.crawl.source, count)

    def _acknowledge(self, seeded: bool = False, first_error: str | None = None) -> None:
        if self.broken:
            return
        done = self.queue.finished_requests(self._in_progress())
        counts = self._count_deltas()
        if first_error is None and not self.error_sent:
            first_error = self.stats.get_value("zwgk/first_error")
        if not (done or counts or first_error or seeded):
            return
        self.crawl.acknowledge([self.queue.held[request] for request in done], counts, first_error, seeded)
        self.queue.forget(done)  # only now: a failed acknowledgement is tried again with the next one
        for name, delta in counts.items():
            self.flushed[name] = self.flushed.get(name, 0) + delta
        self.error_sent = self.error_sent or bool(first_error)

    def _in_progress(self) -> set[Request]:
        """Scrapy's requests in progress, from download to the last item and request they led to.

        No public API tells when a request's errback output has been processed (it bypasses
        the spider middlewares), so this reads the engine's own set, checked in open(); once
        the engine has closed, nothing is in progress.
        """
        slot = getattr(self.crawler.engine, "_slot", None)
        return slot.inprogress if slot is not None else set()

    def _count_deltas(self) -> dict[str, int]:
        counts = {name.removeprefix("zwgk/"): value for name, value in self.stats.get_stats().items()
                  if name.startswith("zwgk/") and type(value) is int and name != "zwgk/run_id"}
        return {name: value - self.flushed.get(name, 0) for name, value in counts.items()
                if value != self.flushed.get(name, 0)}

    def enqueue_request(self, request: Request) -> bool:
        if self.broken:
            return False
        try:
            if request.meta.pop(DEFER, False):  # popped: a retry of the request, later, is not deferred again
                self.crawl.defer(self.fingerprint(request), self.queue.encode(request))
                return True
            queued = self.queue.push(request, b"" if request.dont_filter else self.fingerprint(request))
        except RedisError as error:
            self._break(error)
            return False
        if not queued:
            self.duplicates.log(request, self.spider)  # counts dupefilter/filtered too
            return False
        self.stats.inc_value("scheduler/enqueued/redis")
        return True

    def _break(self, error: Exception) -> None:
        """A request could not be queued: stop, and let everything this worker holds go back to the queue."""
        if self.broken:
            return
        self.broken = True
        logger.error("%s: the shared queue failed (%s); this worker stops, and what it holds goes back to "
                     "the queue", self.crawl.source, error)
        if self.heartbeat.running:
            self.heartbeat.stop()
        deferred_from_coro(self.crawler.engine.close_spider_async(reason="shared queue failed"))

    def next_request(self) -> Request | None:
        if self.broken:
            return None
        try:
            self._acknowledge()
            request = self.queue.pop()
            if request is None and not self.queue.held and not self.crawl.finished():
                request = self.queue.pop()  # the check queued the deferred requests: take one now, not at the next beat
        except RedisError as error:
            logger.warning("%s: the shared queue does not answer: %s", self.crawl.source, error)
            return None
        if request is not None:
            self.stats.inc_value("scheduler/dequeued/redis")
        return request

    def has_pending_requests(self) -> bool:
        if self.broken:
            return False
        try:
            self._acknowledge()
            return bool(self.queue.held) or not self.crawl.finished()
        except RedisError as error:
            logger.warning("%s: the shared queue does not answer: %s", self.crawl.source, error)
            return True

    def close(self, reason: str) -> None:
        if self.heartbeat.running:
            self.heartbeat.stop()
        try:
            self._acknowledge()
        finally:
            self.crawl.leave()


class SeededByScheduler:
    """Spider middleware of a shared crawl: the spider's own start is not crawled, since the shared
    scheduler seeds the crawl's queue once, for every worker, from the spider's initial_requests()."""

    async def process_start(self, start: AsyncIterator[Any]) -> AsyncIterator[Any]:
        return
        yield  # an async generator that yields nothing, without iterating ``start``
