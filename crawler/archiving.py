"""The one archive connection each crawl shares between its spider and its pipeline."""

from __future__ import annotations

from scrapy.crawler import Crawler

from archive import Archive, open_archive
from archive.revisits import RevisitPolicy
from spiders.registry import SourceConfig, load_sources


def archive_for(crawler: Crawler) -> Archive:
    """Open the archive named by the ZWGK_DB setting once per crawler."""
    archive = getattr(crawler, "_zwgk_archive", None)
    if archive is None:
        settings = crawler.settings
        policy = RevisitPolicy(*(settings.getint(f"ZWGK_REVISIT_{tier}_UNTIL_DAYS")
                                 for tier in ("DAILY", "WEEKLY", "MONTHLY")))
        archive = open_archive(settings.get("ZWGK_DB"), policy)
        crawler._zwgk_archive = archive
    return archive


def source_for(crawler: Crawler, key: str) -> SourceConfig:
    """The registry entry of ``key``, from the ZWGK_SOURCES setting's file."""
    return load_sources(crawler.settings.get("ZWGK_SOURCES"))[key]
