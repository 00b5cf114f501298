"""The contract between the spiders and the rest of the crawl.

What spiders hand to the pipeline (fetched pages, 304s and failures, never extracted
fields), the request meta keys they and the crawl's components read, and the stats
that mark list walks. Spiders and crawler modules both import this module; it imports
neither, so neither side depends on the other's internals.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Request meta keys.
ROLE = "zwgk_role"  # "list", "detail", "revisit" or "attachment": what the fetched page is to the crawl
WALK = "zwgk_walk"  # the id of the list walk a list page belongs to
# Set on a request that waits until the rest of the crawl is done (in a shared crawl the
# shared scheduler holds it; see crawler.distributed).
DEFER = "zwgk_defer"
ORIGINAL_URL = "zwgk_original_url"  # the real URL of a request HOST_MAP sent elsewhere

# Stats (under zwgk/) marking each list walk a run started and ended, by its walk id (a column's
# index, with a sub-id for a column that walks several lists). Each is 1 in a worker's stats and the
# shared crawl sums them over workers, so a walk counts as ended if any worker ended it, and a list
# page fetched twice still marks one walk.
WALK_STARTED, WALK_ENDED = "walk_started/", "walk_ended/"


def walk_stat(marker: str, walk: str) -> str:
    """The stats key of a walk marker (WALK_STARTED or WALK_ENDED) for one walk."""
    return f"zwgk/{marker}{walk}"


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
