"""The one archive connection each crawl shares between its spider and its pipeline."""

from __future__ import annotations

from scrapy.crawler import Crawler

from archive import Archive, open_archive
from spiders.registry import SourceConfig, load_sources


def archive_for(crawler: Crawler) -> Archive:
    """Open the archive named by the ZWGK_DB setting once per crawler."""
    archive = getattr(crawler, "_zwgk_archive", None)
    if archive is None:
        archive = open_archive(crawler.settings.get("ZWGK_DB"))
        crawler._zwgk_archive = archive
    return archive


def source_for(crawler: Crawler, key: str) -> SourceConfig:
    """The registry entry of ``key``, from the ZWGK_SOURCES setting's file."""
    return load_sources(crawler.settings.get("ZWGK_SOURCES"))[key]
