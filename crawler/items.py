"""What spiders hand to the pipeline: fetched pages, 304s and failures, never extracted fields."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class PageItem:
    """A detail page as fetched, with what its list page said of it."""

    source: str
    url: str
    body: bytes = field(repr=False)  # whole pages do not belong in log lines
    content_type: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    listed_title: str | None = None
    listed_date: str | None = None
    # (url, name) of files the platform's list data names, besides the links on the page.
    listed_attachments: tuple[tuple[str, str], ...] = ()


@dataclass
class NotModifiedItem:
    """A conditional re-check answered 304 Not Modified."""

    source: str
    url: str
    etag: str | None = None
    last_modified: str | None = None


@dataclass
class MissingItem:
    """A re-check of a known notice answered 404 Not Found or 410 Gone."""

    source: str
    url: str
    status: int


@dataclass
class FetchErrorItem:
    """A page that could not be fetched or read; recorded, and the crawl goes on.

    ``role`` is "list" or "detail": failed detail pages are tried again by later runs.
    """

    source: str
    url: str
    kind: str
    message: str
    role: str = "detail"
