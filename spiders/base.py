"""The navigation every platform shares: list pages newest first, detail pages, re-checks.

A platform spider says only how to read its list pages (entries, next page);
this class decides what to fetch and when to stop: by default it stops paging
at the first list page whose notices are all known (once a completed crawl has
walked the lists to their end and no later run left a gap; until then every
page is walked), `full` walks every page. Known notices that the revisit policy
says are due are re-checked with conditional requests, and `revisit` re-checks
every one. Detail pages that failed in recent runs are tried again.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

import scrapy
from scrapy.exceptions import (
    CannotResolveHostError,
    DownloadConnectionRefusedError,
    DownloadFailedError,
    DownloadTimeoutError,
    ResponseDataLossError,
)
from scrapy.http import Response
from scrapy.spidermiddlewares.httperror import HttpError
from twisted.internet.error import (
    ConnectionRefusedError,
    DNSLookupError,
    TCPTimedOutError,
    TimeoutError,
)
from twisted.python.failure import Failure

from archive.models import utcnow
from archive.revisits import DUE_SLACK
from archive.urls import canonical_url
from crawler.archiving import archive_for, source_for
from crawler.items import FetchErrorItem, MissingItem, NotModifiedItem, PageItem

_TRUE = {"1", "true", "yes", "on"}
# Stats (under zwgk/) naming each list walk a run started and ended, by its first page's URL.
WALK_STARTED, WALK_ENDED = "walk started ", "walk ended "
# A request with this meta key set waits until the rest of the crawl is done (in a shared crawl,
# the shared scheduler holds it; see crawler.distributed).
DEFER = "zwgk_defer"


@dataclass(frozen=True)
class ListEntry:
    """One row of a list page: a notice's link, with the title and date the list shows."""

    url: str
    title: str | None = None
    date: str | None = None
    # (url, name) of the files a platform's list data names (gkmlpt's attachment[]).
    attachments: tuple[tuple[str, str], ...] = ()
    # Where to read the notice when ``url`` (a richer view of it) does not exist.
    fallback_url: str | None = None


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
        archive = archive_for(crawler)
        spider.known = archive.known_urls(spider.source_key)
        spider.may_stop_early = archive.list_walk_completed(spider.source_key)
        spider.retry_urls = archive.pending_failures(spider.source_key)
        return spider

    async def start(self) -> AsyncIterator[scrapy.Request]:
        if self.settings.getbool("ZWGK_DISTRIBUTED"):
            return  # the shared queue is seeded once per crawl, from initial_requests (crawler.distributed)
        for request in self.initial_requests():
            yield request

    def initial_requests(self) -> Iterator[scrapy.Request]:
        """Where a run starts: due re-checks, pages that failed before, the first page of each column."""
        due_by = None if self.revisit else utcnow() + DUE_SLACK
        for revisit in archive_for(self.crawler).revisits(self.source_key, due_by):
            entry = ListEntry(revisit.url, revisit.listed_title, revisit.listed_date)
            yield self.revisit_request(entry, revisit.etag, revisit.last_modified)
        for url in filter(_fetchable, self.retry_urls):
            self.known.add(canonical_url(url))
            yield self.detail_request(ListEntry(url))
        for column in self.source.columns:
            yield from self.column_requests(column)

    def column_requests(self, column: str) -> Iterable[scrapy.Request]:
        """Where a column's walk starts: its first list page (a platform may first read an index)."""
        yield self.list_request(column, first=True)

    def list_request(self, url: str, first: bool = False, walk: str | None = None) -> scrapy.Request:
        """A list page; ``first`` starts a list walk, which ends at its last page or at known notices.

        Each page carries the walk it belongs to (its first page's URL); the run's stats
        name the walks started and ended, so a page fetched twice counts once.
        """
        if first:
            walk = url
            self.crawler.stats.set_value(f"zwgk/{WALK_STARTED}{walk}", 1)
        return scrapy.Request(url, callback=self.parse_list, errback=self.failed, dont_filter=first,
                              meta={"zwgk_role": "list", "zwgk_walk": walk})

    # Navigation

    def parse_list(self, response: Response) -> Iterator[scrapy.Request | FetchErrorItem]:
        self.crawler.stats.inc_value("zwgk/list_pages")
        entries = [entry for entry in self.list_entries(response) if self.detail_re.search(entry.url)]
        if not entries:
            yield FetchErrorItem(self.source_key, response.url, "empty-list",
                                 "the list page holds no notice links (has the site changed?)", role="list")
        for entry in [entry for entry in entries if not _fetchable(entry.url)]:
            entries.remove(entry)
            yield FetchErrorItem(self.source_key, entry.url, "bad-link", f"a malformed link on {response.url}",
                                 role="list")
        unknown = [entry for entry in entries if canonical_url(entry.url) not in self.known]
        for entry in unknown:
            if self.defer(entry):
                continue
            self.known.add(canonical_url(entry.url))
            yield self.detail_request(entry)
        if entries and not unknown and self.may_stop_early and not self.full:
            self.logger.info("stopping at %s: every notice on it is already archived", response.url)
            self.column_walked(response)
            return
        next_url = self.next_page(response)
        if next_url:
            yield self.list_request(next_url, walk=response.meta.get("zwgk_walk"))
        else:
            self.column_walked(response)

    def defer(self, entry: ListEntry) -> bool:
        """Whether to hold an entry back for now (a platform with a better view of it comes first)."""
        return False

    def column_walked(self, response: Response) -> None:
        """One list has been walked to its end (or to notices known from such a walk)."""
        self.crawler.stats.set_value(f"zwgk/{WALK_ENDED}{response.meta.get('zwgk_walk')}", 1)

    def detail_request(self, entry: ListEntry, meta: dict | None = None) -> scrapy.Request:
        return scrapy.Request(entry.url, callback=self.parse_detail, errback=self.failed, cb_kwargs={"entry": entry},
                              meta=meta)

    def parse_detail(self, response: Response, entry: ListEntry) -> Iterator[object]:
        """Hand the page on under the URL the list (or the archive) knows it by, even after a redirect."""
        headers = response.headers
        validators = {
            "etag": _header(headers, b"ETag"),
            "last_modified": _header(headers, b"Last-Modified"),
        }
        if response.status == 304:
            yield NotModifiedItem(self.source_key, entry.url, **validators)
            return
        if response.status in (404, 410) and response.meta.get("zwgk_role") == "revisit":
            yield MissingItem(self.source_key, entry.url, response.status)
            return
        if response.status >= 400:
            yield FetchErrorItem(self.source_key, entry.url, f"http-{response.status}",
                                 f"the site answered {response.status}")
            return
        yield PageItem(
            self.source_key, entry.url, response.body, content_type=_header(headers, b"Content-Type"),
            listed_title=entry.title, listed_date=entry.date, listed_attachments=entry.attachments, **validators,
        )

    def revisit_request(self, entry: ListEntry, etag: str | None, last_modified: str | None) -> scrapy.Request:
        headers = {}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        return scrapy.Request(entry.url, headers=headers, callback=self.parse_detail, errback=self.failed,
                              dont_filter=True, cb_kwargs={"entry": entry},
                              meta={"handle_httpstatus_list": [304, 404, 410], "zwgk_role": "revisit"})

    def failed(self, failure: Failure) -> Iterable[FetchErrorItem]:
        request = failure.request
        entry = request.cb_kwargs.get("entry")
        url = entry.url if entry else request.meta.get("zwgk_original_url", request.url)
        kind, message = describe_failure(failure)
        if entry and entry.fallback_url and kind == "http-404":
            yield self.detail_request(ListEntry(entry.fallback_url, entry.title, entry.date, entry.attachments))
            return
        self.logger.info("%s: %s", url, message)
        yield FetchErrorItem(self.source_key, url, kind, message, role=request.meta.get("zwgk_role", "detail"))


_NEXT_PAGE_TEXTS = ("下一页", "下页", "下一頁", ">", "›")


def next_page_link(response: Response) -> str | None:
    """The page a 下一页 link leads to, unless it is a script or this page itself (the last page)."""
    for link in response.css("a[href]"):
        text = " ".join(link.css("::text").getall()).strip(" []【】<>\n\t") or link.attrib.get("title", "")
        if text not in _NEXT_PAGE_TEXTS and not text.startswith("下一页") and not text.startswith("下页"):
            continue
        href = link.attrib["href"].strip()
        if href.startswith("javascript") or href in ("", "#"):
            continue
        target = response.urljoin(href)
        if target != response.url:
            return target
    return None


def _fetchable(url: str) -> bool:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a port that is out of range or not a number
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


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
