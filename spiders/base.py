"""The navigation every platform shares: list pages newest first, detail pages, re-checks.

A platform spider says only how to read its list pages (entries, next page);
this class decides what to fetch and when to stop, from the crawl context it is
given (crawler.context, planned from the archive before the crawl): it stops paging
at the first list page whose notices are all known when the plan allows it (once a
completed crawl has walked the lists to their end and no later run left a gap, and
not with `--full`), re-checks the known notices the plan says are due with
conditional requests, and tries again the detail pages that failed in recent runs.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass
from itertools import islice
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import scrapy
from scrapy.http import Response
from twisted.python.failure import Failure

from crawler.failures import describe_error
from crawler.items import (
    DEFER,
    ORIGINAL_URL,
    ROLE,
    WALK,
    WALK_ENDED,
    WALK_STARTED,
    FetchErrorItem,
    MissingItem,
    NotModifiedItem,
    PageItem,
    walk_stat,
)

if TYPE_CHECKING:  # the type only: spiders are handed their context, they never build one
    from crawler.context import CrawlContext


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

    def __init__(self, context: CrawlContext | None = None, **kwargs) -> None:
        if context is None:
            raise TypeError(f"the {self.name} spider crawls with a crawl context: run `zwgk crawl {self.name}` "
                            f"or `scrapy crawl {self.name}`")
        super().__init__(**kwargs)
        self.context = context
        self.source = context.source
        self.source_key = context.source.key
        self.known = context.known
        self.detail_re = re.compile(self.source.detail_pattern or self.detail_pattern)

    def list_entries(self, response: Response) -> Iterable[ListEntry]:
        raise NotImplementedError(f"the {self.platform or type(self).__name__} spider reads no list pages")

    def next_page(self, response: Response) -> str | None:
        raise NotImplementedError(f"the {self.platform or type(self).__name__} spider reads no list pages")

    async def start(self) -> AsyncIterator[scrapy.Request]:
        for request in self.initial_requests():
            yield request

    def initial_requests(self) -> Iterator[scrapy.Request]:
        """Where a run starts: due re-checks, pages that failed before, the first page of each column."""
        for revisit in self.context.revisits_due():
            entry = ListEntry(revisit.url, revisit.listed_title, revisit.listed_date)
            yield self.revisit_request(entry, revisit.etag, revisit.last_modified)
        for url in filter(_fetchable, self.context.retry_urls):
            self.known.add(url)
            yield self.detail_request(ListEntry(url))
        for index, column in enumerate(self.source.columns):
            yield from self.column_requests(column, walk=str(index))

    def column_requests(self, column: str, walk: str) -> Iterable[scrapy.Request]:
        """Where a column's walk starts: its first list page (a platform may first read an index,
        and start several walks, with ids under ``walk``)."""
        yield self.list_request(column, walk, first=True)

    def list_request(self, url: str, walk: str, first: bool = False) -> scrapy.Request:
        """A list page of the walk ``walk``; ``first`` starts the walk, which ends at its last page or
        at known notices.

        The run's stats mark the walks started and ended by id, so a page fetched twice counts once.
        """
        if first:
            self.crawler.stats.set_value(walk_stat(WALK_STARTED, walk), 1)
        return scrapy.Request(url, callback=self.parse_list, errback=self.failed, dont_filter=first,
                              meta={ROLE: "list", WALK: walk})

    # Navigation

    def parse_list(self, response: Response) -> Iterator[scrapy.Request | FetchErrorItem]:
        self.crawler.stats.inc_value("zwgk/list_pages")
        cap = self.crawler.settings.getint("ZWGK_MAX_LIST_LINKS")
        entries = list(islice((entry for entry in self.list_entries(response) if self.detail_re.search(entry.url)),
                              cap + 1))
        if not entries:
            yield FetchErrorItem(self.source_key, response.url, "empty-list",
                                 "the list page holds no notice links (has the site changed?)", role="list")
        if len(entries) > cap:
            del entries[cap:]
            yield FetchErrorItem(self.source_key, response.url, "cap", f"more than {cap} notice links; only the "
                                 f"first {cap} are followed (ZWGK_MAX_LIST_LINKS)", role="list")
        for entry in [entry for entry in entries if not _fetchable(entry.url)]:
            entries.remove(entry)
            yield FetchErrorItem(self.source_key, entry.url, "bad-link", f"a malformed link on {response.url}",
                                 role="list")
        unknown = [entry for entry in entries if entry.url not in self.known]
        for entry in unknown:
            if self.defer(entry):
                yield self.detail_request(entry, meta={DEFER: True})
                continue
            self.known.add(entry.url)
            yield self.detail_request(entry)
        if entries and not unknown and self.context.may_stop_early:
            self.logger.info("stopping at %s: every notice on it is already archived", response.url)
            self.column_walked(response)
            return
        next_url = self.next_page(response)
        if next_url and not _fetchable(next_url):
            yield FetchErrorItem(self.source_key, next_url, "bad-link", f"a malformed next-page link on {response.url}",
                                 role="list")
        elif next_url:
            yield self.list_request(next_url, response.meta[WALK])
        else:
            self.column_walked(response)

    def defer(self, entry: ListEntry) -> bool:
        """Whether to hold an entry back until the rest of the crawl is done (a platform with a
        better view of it comes first); its request is marked DEFER (crawler.deferred)."""
        return False

    def still_wanted(self, request: scrapy.Request) -> bool:
        """Whether a held request is still to be fetched when it is let go: not when another
        list has led to its notice meanwhile."""
        entry = request.cb_kwargs.get("entry")
        if entry is None:
            return True
        if entry.url in self.known:
            return False
        self.known.add(entry.url)
        return True

    def column_walked(self, response: Response) -> None:
        """One list has been walked to its end (or to notices known from such a walk)."""
        self.crawler.stats.set_value(walk_stat(WALK_ENDED, response.meta[WALK]), 1)

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
        if response.status in (404, 410) and response.meta.get(ROLE) == "revisit":
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
                              meta={"handle_httpstatus_list": [304, 404, 410], ROLE: "revisit"})

    def failed(self, failure: Failure) -> Iterable[scrapy.Request | FetchErrorItem]:
        request = failure.request  # type: ignore[attr-defined]  # Scrapy sets it; Twisted's Failure does not declare it
        entry = request.cb_kwargs.get("entry")
        url = entry.url if entry else request.meta.get(ORIGINAL_URL, request.url)
        error = failure.value or RuntimeError("the request failed without an error")
        kind, message = describe_error(error, request.meta.get(ORIGINAL_URL, request.url))
        if entry and entry.fallback_url and kind == "http-404":
            yield self.detail_request(ListEntry(entry.fallback_url, entry.title, entry.date, entry.attachments))
            return
        self.logger.info("%s: %s", url, message)
        yield FetchErrorItem(self.source_key, url, kind, message, role=request.meta.get(ROLE, "detail"))


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
        target = join_url(response, href)
        if target != response.url:
            return target
    return None


def join_url(response: Response, href: str) -> str:
    """``href`` resolved against the page. A link too malformed to resolve is kept as written: the list
    records it as a bad link (parse_list) and reads on, where raising would lose the whole page."""
    href = href.strip()
    try:
        return response.urljoin(href)
    except ValueError:
        return href


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
