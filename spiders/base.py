"""The navigation every platform shares: list pages newest first, detail pages, re-checks.

A platform spider says only how to read its list pages (entries, next page);
this class decides what to fetch and when to stop: by default it stops paging
at the first list page whose notices are all known, `full` walks every page,
and `revisit` re-checks every known notice with a conditional request.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass

import scrapy
from scrapy.exceptions import (
    CannotResolveHostError, DownloadConnectionRefusedError, DownloadFailedError, DownloadTimeoutError,
    ResponseDataLossError,
)
from scrapy.http import Response
from scrapy.spidermiddlewares.httperror import HttpError
from twisted.internet.error import ConnectionRefusedError, DNSLookupError, TCPTimedOutError, TimeoutError
from twisted.python.failure import Failure

from archive.urls import canonical_url
from crawler.archiving import archive_for, source_for
from crawler.items import FetchErrorItem, NotModifiedItem, PageItem

_TRUE = {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class ListEntry:
    """One row of a list page: a notice's link, with the title and date the list shows."""

    url: str
    title: str | None = None
    date: str | None = None


class NoticeSpider(scrapy.Spider):
    """Base for platform spiders.

    A platform spider defines ``list_entries(response) -> Iterable[ListEntry]`` and
    ``next_page(response) -> str | None``: how its list pages read, nothing more.
    """

    platform: str = ""
    # Detail links look like this on the platform (a registry entry may override it).
    detail_pattern: str = r".*"

    def __init__(self, source: str | None = None, full: str | bool = False, revisit: str | bool = False,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        self.source_key = source or self.name
        self.full = str(full).lower() in _TRUE
        self.revisit = str(revisit).lower() in _TRUE

    @classmethod
    def from_crawler(cls, crawler, *args, **kwargs):
        spider = super().from_crawler(crawler, *args, **kwargs)
        spider.source = source_for(crawler, spider.source_key)
        spider.detail_re = re.compile(spider.source.detail_pattern or cls.detail_pattern)
        spider.known = archive_for(crawler).known_urls(spider.source_key)
        return spider

    async def start(self) -> AsyncIterator[scrapy.Request]:
        if self.revisit:
            for revisit in archive_for(self.crawler).revisits(self.source_key):
                yield self.revisit_request(revisit.url, revisit.etag, revisit.last_modified)
        for column in self.source.columns:
            yield scrapy.Request(column, callback=self.parse_list, errback=self.failed, dont_filter=True,
                                 meta={"zwgk_page": 1})

    # Navigation

    def parse_list(self, response: Response) -> Iterator[scrapy.Request]:
        self.crawler.stats.inc_value("zwgk/list_pages")
        entries = [entry for entry in self.list_entries(response) if self.detail_re.search(entry.url)]
        unknown = [entry for entry in entries if canonical_url(entry.url) not in self.known]
        for entry in unknown:
            self.known.add(canonical_url(entry.url))
            yield scrapy.Request(entry.url, callback=self.parse_detail, errback=self.failed,
                                 cb_kwargs={"entry": entry})
        if entries and not unknown and not self.full:
            self.logger.info("stopping at %s: every notice on it is already archived", response.url)
            return
        next_url = self.next_page(response)
        if next_url:
            yield scrapy.Request(next_url, callback=self.parse_list, errback=self.failed,
                                 meta={"zwgk_page": response.meta.get("zwgk_page", 1) + 1})

    def parse_detail(self, response: Response, entry: ListEntry | None = None) -> Iterator[object]:
        headers = response.headers
        validators = {
            "etag": _header(headers, b"ETag"),
            "last_modified": _header(headers, b"Last-Modified"),
        }
        if response.status == 304:
            yield NotModifiedItem(self.source_key, response.url, **validators)
            return
        if response.status >= 400:
            yield FetchErrorItem(self.source_key, response.url, f"http-{response.status}",
                                 f"the site answered {response.status}")
            return
        yield PageItem(
            self.source_key, response.url, response.body, content_type=_header(headers, b"Content-Type"),
            listed_title=entry.title if entry else None, listed_date=entry.date if entry else None,
            **validators,
        )

    def revisit_request(self, url: str, etag: str | None, last_modified: str | None) -> scrapy.Request:
        headers = {}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        return scrapy.Request(url, headers=headers, callback=self.parse_detail, errback=self.failed,
                              dont_filter=True, meta={"handle_httpstatus_list": [304, 404, 410]})

    def failed(self, failure: Failure) -> Iterable[FetchErrorItem]:
        url = failure.request.meta.get("zwgk_original_url", failure.request.url)
        kind, message = describe_failure(failure)
        self.logger.info("%s: %s", url, message)
        yield FetchErrorItem(self.source_key, url, kind, message)


def _header(headers, name: bytes) -> str | None:
    value = headers.get(name)
    return value.decode("latin-1") if value else None


def describe_failure(failure: Failure) -> tuple[str, str]:
    """One clear line for a failed request: what went wrong, without a traceback."""
    error = failure.value
    url = failure.request.meta.get("zwgk_original_url", failure.request.url)
    host = url.split("/")[2] if "//" in url else url
    if failure.check(HttpError):
        status = error.response.status
        return f"http-{status}", f"the site answered {status} for {error.response.url}"
    if failure.check(CannotResolveHostError, DNSLookupError):
        return "dns", f"DNS lookup failed for {host} (no such host, or no network)"
    if failure.check(DownloadConnectionRefusedError, ConnectionRefusedError):
        return "refused", f"connection refused by {host}"
    if failure.check(DownloadTimeoutError, TimeoutError, TCPTimedOutError):
        return "timeout", f"timed out waiting for {host}"
    if failure.check(ResponseDataLossError, DownloadFailedError):
        return "download", f"the download from {host} broke off: {error}"
    return error.__class__.__name__, f"{error.__class__.__name__}: {error}"
