"""The archive pipeline: extract each fetched page and store it, one transaction per notice."""

from __future__ import annotations

import logging

from scrapy import Spider, signals
from scrapy.crawler import Crawler

from archive import Archive, ArchiveError
from archive.store import RawResponse
from crawler.archiving import archive_for, source_for
from crawler.extract import ExtractOptions, extract_notice
from crawler.items import FetchErrorItem, NotModifiedItem, PageItem
from spiders.registry import SourceConfig

logger = logging.getLogger(__name__)
COUNTS = ("pages", "new", "changed", "unchanged", "not_modified", "errors")


class ArchivePipeline:
    """Turns PageItems into archived versions and records every failure against the run."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.stats = crawler.stats
        self.archive: Archive | None = None
        self.source: SourceConfig | None = None
        self.run_id: int | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> ArchivePipeline:
        pipeline = cls(crawler)
        # spider_closed, unlike close_spider, says why the crawl ended.
        crawler.signals.connect(pipeline.spider_closed, signal=signals.spider_closed)
        crawler.signals.connect(pipeline.spider_error, signal=signals.spider_error)
        return pipeline

    def open_spider(self, spider: Spider | None = None) -> None:
        spider = spider or self.crawler.spider
        self.archive = archive_for(self.crawler)
        self.source = source_for(self.crawler, spider.source_key)
        source = self.source
        self.archive.ensure_source(source.key, source.name, source.host, source.platform, source.level, source.region)
        self.run_id = self.archive.start_run(source.key)
        self.stats.set_value("zwgk/run_id", self.run_id)
        for name in COUNTS:
            self.stats.set_value(f"zwgk/{name}", 0)

    def process_item(self, item, spider: Spider | None = None):
        if isinstance(item, PageItem):
            self._count("pages")
            self._archive_page(item)
        elif isinstance(item, NotModifiedItem):
            self._count("pages")
            self.archive.mark_not_modified(item.url, item.etag, item.last_modified)
            self._count("not_modified")
            self._count("unchanged")
        elif isinstance(item, FetchErrorItem):
            self._error(item.url, item.kind, item.message, item.role)
        return item

    def _archive_page(self, item: PageItem) -> None:
        options = ExtractOptions(
            body_selectors=self.source.body_selectors, title_selectors=self.source.title_selectors,
            listed_title=item.listed_title, listed_date=item.listed_date,
        )
        try:
            notice = extract_notice(item.body, item.url, content_type=item.content_type, options=options)
        except Exception as error:  # a broken page must not stop the crawl
            logger.exception("extraction failed for %s", item.url)
            self._error(item.url, "extraction", f"{error.__class__.__name__}: {error}")
            return
        if not notice.body.strip():
            # A challenge, error or blocked page is not a version of the notice; a later run tries again.
            self._error(item.url, "no-notice", "the page holds no notice text (a challenge or error page?)")
            return
        raw = RawResponse(item.body, item.content_type, item.etag, item.last_modified)
        try:
            result = self.archive.save_notice(
                item.source, item.url, notice.as_dict(), notice.content_hash, raw=raw, run_id=self.run_id,
                listed_title=item.listed_title, listed_date=item.listed_date,
            )
        except ArchiveError as error:
            logger.error("%s", error)
            self._error(item.url, "archive", str(error))
            return
        self._count(result.outcome)

    def spider_error(self, failure, response, spider: Spider) -> None:
        """A page the spider could not read (a bug or a layout it does not know) is an error of the run."""
        url = response.url if response is not None else "(start requests)"
        role = response.meta.get("zwgk_role", "detail") if response is not None and response.request else "list"
        self._error(url, "spider", f"{failure.value.__class__.__name__}: {failure.value}", role)

    def _error(self, url: str, kind: str, message: str, role: str = "detail") -> None:
        self._count("errors")
        self.stats.set_value("zwgk/first_error", self.stats.get_value("zwgk/first_error") or f"{kind}: {message}")
        self.archive.record_error(self.run_id, url, kind, message, role)

    def _count(self, name: str) -> None:
        self.stats.inc_value(f"zwgk/{name}")

    def spider_closed(self, spider: Spider, reason: str) -> None:
        if self.run_id is None:
            return
        counts = {name: self.stats.get_value(f"zwgk/{name}", 0) for name in COUNTS}
        listed = self.stats.get_value("zwgk/list_pages", 0)
        if reason != "finished":
            status, message = "interrupted", f"crawl stopped: {reason}"
        elif listed == 0:
            status = "failed"
            message = self.stats.get_value("zwgk/first_error") or "no list page could be fetched"
        else:
            status, message = "completed", self.stats.get_value("zwgk/first_error")
        counts["pages"] += listed
        walked = bool(self.stats.get_value("zwgk/walked_to_end")) and status == "completed"
        self.archive.finish_run(self.run_id, status, counts, message, walked_to_end=walked)
        self.stats.set_value("zwgk/status", status)
        self.stats.set_value("zwgk/message", message)
        self.stats.set_value("zwgk/pages", counts["pages"])
