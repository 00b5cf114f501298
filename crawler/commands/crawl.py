"""`scrapy crawl KEY [-a full=1] [-a revisit=1]`: Scrapy's command, given the crawl context.

The developer's path to one source's crawl: like `zwgk crawl KEY` it archives into
ZWGK_DB and plans the crawl from the archive, without the lease and the summary.
"""

from __future__ import annotations

import argparse

from scrapy.commands.crawl import Command as ScrapyCrawl

from crawler.context import CrawlOptions, open_crawl_archive, plan_crawl
from spiders.registry import load_sources

_TRUE = {"1", "true", "yes", "on"}


class Command(ScrapyCrawl):
    def run(self, args: list[str], opts: argparse.Namespace) -> None:
        if self.settings is None:
            raise RuntimeError("scrapy runs a command once it has given it the settings")
        sources = load_sources(self.settings.get("ZWGK_SOURCES"))
        if len(args) != 1 or args[0] not in sources:
            super().run(args, opts)  # Scrapy's own usage errors, and its "Spider not found"
            return
        archive = open_crawl_archive(self.settings)
        try:
            options = CrawlOptions(full=str(opts.spargs.pop("full", "")).lower() in _TRUE,
                                   revisit=str(opts.spargs.pop("revisit", "")).lower() in _TRUE)
            opts.spargs["context"] = plan_crawl(archive, sources[args[0]], **options)
            super().run(args, opts)
        finally:
            archive.close()
