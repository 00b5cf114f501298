"""Downloads that end when the crawl stops, whatever the server holds.

Scrapy's graceful stop (SIGTERM, CLOSESPIDER_TIMEOUT, a lost lease) waits for every
download in flight, each up to its DOWNLOAD_TIMEOUT, before the spider closes; a server
that reads the request and never answers, or drips a byte a second, holds the crawl that
long, and longer with retries. This HTTP(S) download handler gives the downloads in
flight ZWGK_STOP_GRACE seconds once the crawl is stopping, then cuts them off: each
fails as a timeout (recorded with the run), and the crawl closes.
"""

from __future__ import annotations

import asyncio
import time

from scrapy import Request
from scrapy.core.downloader.handlers.http11 import HTTP11DownloadHandler
from scrapy.crawler import Crawler
from scrapy.exceptions import DownloadTimeoutError
from scrapy.http import Response
from twisted.internet.task import LoopingCall

# How often the handler looks whether the crawl is stopping.
STOP_POLL = 0.5


class DeadlineDownloadHandler(HTTP11DownloadHandler):
    """Scrapy's HTTP/1.1 handler, whose downloads in flight a stopping crawl cuts off after a grace."""

    def __init__(self, crawler: Crawler) -> None:
        super().__init__(crawler)
        self._grace = crawler.settings.getfloat("ZWGK_STOP_GRACE")
        self._in_flight: set[asyncio.Future[Response]] = set()
        self._stopping_since: float | None = None
        self._cut_off = False
        self._watch = LoopingCall(self._check)

    async def download_request(self, request: Request) -> Response:
        if not self._watch.running:
            self._watch.start(STOP_POLL, now=False)
        task = asyncio.ensure_future(super().download_request(request))
        self._in_flight.add(task)
        try:
            return await task
        except asyncio.CancelledError:
            if not self._cut_off:
                raise
            raise DownloadTimeoutError(f"Getting {request.url} was cut off: the crawl is stopping") from None
        finally:
            self._in_flight.discard(task)

    def _check(self) -> None:
        """Cut off what is in flight once the crawl has been stopping for the grace period."""
        if not self._stopping():
            return
        now = time.monotonic()
        self._stopping_since = self._stopping_since or now
        if now - self._stopping_since >= self._grace:
            self._cut_off = True
            for task in list(self._in_flight):
                task.cancel()

    def _stopping(self) -> bool:
        """Whether the engine has begun closing the spider (Scrapy 2.19 sets its slot's ``closing`` then,
        on every way a crawl stops, before it waits for the downloads in flight)."""
        engine = self._crawler.engine
        slot = getattr(engine, "_slot", None) if engine is not None else None
        return slot is not None and slot.closing is not None

    async def close(self) -> None:
        if self._watch.running:
            self._watch.stop()
        await super().close()
