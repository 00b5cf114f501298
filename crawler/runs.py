"""A crawl's run in the archive: started when the spider opens, finished, counted and judged when it closes."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from scrapy import Spider, signals
from scrapy.crawler import Crawler

from archive.health import judge_run
from crawler.context import context_of
from crawler.items import WALK_ENDED, WALK_STARTED

logger = logging.getLogger(__name__)
COUNTS = ("pages", "new", "changed", "unchanged", "not_modified", "errors", "incomplete")


@dataclass(frozen=True)
class FinishedRun:
    """How a run ended, as recorded in the archive."""

    status: str
    counts: dict[str, int]
    message: str | None


class RunRecorder:
    """Records the crawl's run (an extension, in EXTENSIONS).

    It starts the run before any item flows and publishes its id as the ``zwgk/run_id``
    stat; at the end it finishes the run with the crawl's ``zwgk/*`` counts, judges the
    source's health, and sets the ``zwgk/status``, ``zwgk/message`` and ``zwgk/pages``
    stats that `zwgk crawl` prints.
    """

    def __init__(self, crawler: Crawler) -> None:
        self.crawler, self.stats = crawler, crawler.stats
        self.run_id: int | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> RunRecorder:
        recorder = cls(crawler)
        recorder.connect_signals()
        return recorder

    def connect_signals(self) -> None:
        self.crawler.signals.connect(self.spider_opened, signal=signals.spider_opened)
        # spider_closed, unlike close_spider, says why the crawl ended.
        self.crawler.signals.connect(self.spider_closed, signal=signals.spider_closed)

    def spider_opened(self, spider: Spider) -> None:
        context = context_of(self.crawler)
        self.archive, self.source = context.archive, context.source
        source = self.source
        self.archive.ensure_source(source.key, source.name, source.host, source.platform, source.level, source.region)
        self.run_id = self.start_run()
        self.stats.set_value("zwgk/run_id", self.run_id)
        for name in COUNTS:
            self.stats.set_value(f"zwgk/{name}", 0)

    def start_run(self) -> int:
        return self.archive.start_run(self.source.key)

    def spider_closed(self, spider: Spider, reason: str) -> None:
        if self.run_id is not None:
            self.close_run(reason)

    def close_run(self, reason: str) -> None:
        run = self.finish_run(self.totals(), reason)
        self.stats.set_value("zwgk/message", run.message)
        self.stats.set_value("zwgk/pages", run.counts["pages"])

    def totals(self) -> dict[str, int | str]:
        """The run's counters (``zwgk/*`` stats, without the prefix) and its first error."""
        return {name.removeprefix("zwgk/"): value for name, value in self.stats.get_stats().items()
                if name.startswith("zwgk/")}

    def finish_run(self, totals: dict[str, int | str], reason: str) -> FinishedRun:
        """Finish the run with these totals, judge the source's health, set ``zwgk/status``."""
        if self.run_id is None:
            raise RuntimeError("a run is finished only once it has started")
        counts = {name: _count(totals, name) for name in COUNTS}
        listed = _count(totals, "list_pages")
        error = totals.get("first_error")
        first_error = None if error is None else str(error)
        message: str | None
        if reason != "finished":
            status, message = "interrupted", f"crawl stopped: {reason}"
        elif listed == 0:
            status = "failed"
            message = first_error or "no list page could be fetched"
        else:
            status, message = "completed", first_error
        counts["pages"] += listed
        walked = status == "completed" and _walked_to_end(totals)
        self.archive.finish_run(self.run_id, status, counts, message, walked_to_end=walked)
        problem = judge_run(self.archive, self.run_id)
        if problem:
            logger.error("%s looks broken: %s", self.source.key, problem)
            self.stats.set_value("zwgk/problem", problem)
        self.stats.set_value("zwgk/status", status)
        return FinishedRun(status, counts, message)


def _count(totals: dict[str, int | str], name: str) -> int:
    """One of the run's counters (0 if nothing counted it)."""
    value = totals.get(name, 0)
    if not isinstance(value, int):
        raise TypeError(f"the run's {name} count is {value!r}, not a number")
    return value


def _walked_to_end(totals: dict[str, int | str]) -> bool:
    """Whether the run started list walks and ended every one of them."""
    started = {name.removeprefix(WALK_STARTED) for name in totals if name.startswith(WALK_STARTED)}
    ended = {name.removeprefix(WALK_ENDED) for name in totals if name.startswith(WALK_ENDED)}
    return bool(started) and started <= ended
