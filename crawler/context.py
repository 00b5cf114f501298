"""The crawl context: what one crawl of one source works from, planned before it starts.

Whoever starts a crawl builds it: the runner (crawler.crawl) for `zwgk crawl` and
`zwgk worker`, the project's crawl command (crawler.commands.crawl) for
`scrapy crawl KEY`. It reaches the spider as the spider argument ``context``
(``crawler.crawl(spider_cls, context=...)``), Scrapy's public route for what a crawl
is given, and the crawl's components read it from the spider they serve
(``context_of(crawler)``), which Scrapy creates before any of them. So nothing is
hung on the crawler, no object travels in a setting, and spiders plan nothing
themselves: they never touch the archive, and read the plan from here.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypedDict

from scrapy.crawler import Crawler
from scrapy.settings import BaseSettings

from archive import Archive, open_archive
from archive.crawls import Revisit
from archive.models import utcnow
from archive.revisits import DUE_SLACK, RevisitPolicy
from archive.urls import canonical_url
from spiders.registry import SourceConfig

if TYPE_CHECKING:
    from crawler.distributed import SharedCrawl


class KnownNotices:
    """The notices a crawl need not fetch again: those archived, then those it has asked for.

    Membership is by canonical URL (archive.urls), so every link that names an archived
    notice is known, whatever its form.
    """

    def __init__(self, canonical_urls: Iterable[str]) -> None:
        self._urls = set(canonical_urls)

    def __contains__(self, url: str) -> bool:
        return canonical_url(url) in self._urls

    def add(self, url: str) -> None:
        self._urls.add(canonical_url(url))


@dataclass
class CrawlContext:
    """One crawl of one source: its archive, its registry entry, its run, and the plan."""

    archive: Archive
    source: SourceConfig
    known: KnownNotices
    # Whether a list walk may stop at a page of known notices: the lists were walked to their
    # end before, no later run left a gap (Archive.list_walk_completed), and not --full.
    may_stop_early: bool
    retry_urls: list[str]  # detail pages that failed in recent runs
    revisit_all: bool = False  # --revisit: re-check every known notice, not only those due
    run_id: int | None = None  # known before the crawl when it is shared (else the pipeline starts the run)
    shared: SharedCrawl | None = None  # the crawl shared through Redis this one is a worker of

    def revisits_due(self) -> list[Revisit]:
        """The known notices to re-check now: due (or due within DUE_SLACK) by the revisit policy,
        or every one with --revisit. Asked for when the crawl is seeded, not when it is planned."""
        return self.archive.revisits(self.source.key, None if self.revisit_all else utcnow() + DUE_SLACK)


class CrawlOptions(TypedDict):
    """A crawl's --full and --revisit, as plan_crawl takes them."""

    full: bool
    revisit: bool


def plan_crawl(archive: Archive, source: SourceConfig, *, full: bool = False, revisit: bool = False,
               shared: SharedCrawl | None = None) -> CrawlContext:
    """The context of a crawl of ``source`` with these options, from what the archive holds now."""
    key = source.key
    return CrawlContext(
        archive, source, KnownNotices(archive.known_urls(key)),
        may_stop_early=not full and archive.list_walk_completed(key), retry_urls=archive.pending_failures(key),
        revisit_all=revisit, run_id=shared.run_id if shared else None, shared=shared,
    )


def open_crawl_archive(settings: BaseSettings) -> Archive:
    """The archive of ZWGK_DB, with the revisit policy of the ZWGK_REVISIT_* settings."""
    policy = RevisitPolicy(*(settings.getint(f"ZWGK_REVISIT_{tier}_UNTIL_DAYS")
                             for tier in ("DAILY", "WEEKLY", "MONTHLY")))
    return open_archive(settings.get("ZWGK_DB"), policy)


def context_of(crawler: Crawler) -> CrawlContext:
    """The context of the crawl a component serves (its spider was given it)."""
    context = getattr(crawler.spider, "context", None)
    if not isinstance(context, CrawlContext):
        raise RuntimeError(f"the spider {crawler.spider!r} was given no crawl context")
    return context
