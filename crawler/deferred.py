"""Requests that wait until the rest of a crawl is done (those a spider marks with DEFER).

A spider marks a request DEFER when a better view of its notice may still come (a
Guangdong portal row whose post the gkmlpt catalogue lists with its publication
time). In a crawl of its own, this spider middleware holds such requests until the
crawl is otherwise idle, then lets go of those the spider still wants. In a shared
crawl the shared scheduler holds them in Redis instead (crawler.distributed), and
this middleware is not enabled.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from scrapy import Request, Spider, signals
from scrapy.crawler import Crawler
from scrapy.exceptions import DontCloseSpider
from scrapy.http import Response

from crawler.items import DEFER


class HoldDeferred:
    """Holds the spider's DEFER requests until the crawl is idle (in SPIDER_MIDDLEWARES)."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.held: list[Request] = []

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> HoldDeferred:
        middleware = cls(crawler)
        crawler.signals.connect(middleware.release, signal=signals.spider_idle)
        return middleware

    async def process_spider_output(self, response: Response, result: AsyncIterator[Any],
                                    spider: Spider) -> AsyncIterator[Any]:
        async for output in result:
            if isinstance(output, Request) and output.meta.pop(DEFER, False):
                self.held.append(output)
            else:
                yield output

    def release(self, spider: Spider) -> None:
        """At idle, crawl the held requests the spider still wants (a spider without a
        ``still_wanted(request)`` wants them all), and keep the crawl open for them."""
        still_wanted = getattr(spider, "still_wanted", lambda request: True)
        wanted = [request for request in self.held if still_wanted(request)]
        self.held = []
        for request in wanted:
            self.crawler.engine.crawl(request)
        if wanted:
            raise DontCloseSpider
