"""Crawl progress: one line per source on stderr every ZWGK_PROGRESS_INTERVAL seconds."""

from __future__ import annotations

import sys

from scrapy import Spider, signals
from scrapy.crawler import Crawler
from scrapy.exceptions import NotConfigured
from scrapy.statscollectors import StatsCollector
from twisted.internet.task import LoopingCall


class CrawlProgress:
    """A nightly crawl of a large site takes hours; say how far it has got."""

    def __init__(self, stats: StatsCollector, interval: float) -> None:
        self.stats = stats
        self.interval = interval
        self.loop: LoopingCall | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> CrawlProgress:
        interval = crawler.settings.getfloat("ZWGK_PROGRESS_INTERVAL")
        if interval <= 0:
            raise NotConfigured
        extension = cls(crawler.stats, interval)
        crawler.signals.connect(extension.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(extension.spider_closed, signal=signals.spider_closed)
        return extension

    def spider_opened(self, spider: Spider) -> None:
        self.loop = LoopingCall(self.report, spider)
        self.loop.start(self.interval, now=False)

    def spider_closed(self, spider: Spider) -> None:
        if self.loop is not None and self.loop.running:
            self.loop.stop()

    def report(self, spider: Spider) -> None:
        stats = self.stats
        pages = stats.get_value("zwgk/pages", 0) + stats.get_value("zwgk/list_pages", 0)
        counts = ", ".join(f"{stats.get_value(f'zwgk/{name}', 0)} {name}" for name in ("new", "changed", "errors"))
        sys.stderr.write(f"{spider.name}: {pages} pages, {counts}\n")
        sys.stderr.flush()
