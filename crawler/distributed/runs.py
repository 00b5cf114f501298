"""The run of a shared crawl: one run for all workers, finished by one of them with everyone's counts."""

from __future__ import annotations

from scrapy.crawler import Crawler

from crawler.runs import RunRecorder

from .shared import SharedCrawl


class SharedRunRecorder(RunRecorder):
    """RunRecorder for a worker of a shared crawl (it replaces RunRecorder in EXTENSIONS).

    The run is the one the worker that started the crawl opened. When a worker's part
    ends, the first worker to find the crawl over finishes the run with the totals all
    workers acknowledged and removes the crawl from Redis; every worker reports its own part.
    """

    def __init__(self, crawler: Crawler, shared: SharedCrawl) -> None:
        super().__init__(crawler)
        self.shared = shared

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> SharedRunRecorder:
        shared = SharedCrawl.of(crawler)
        if shared is None:
            raise RuntimeError(
                "SharedRunRecorder records only the runs of `zwgk crawl --distributed` and `zwgk worker`")
        recorder = cls(crawler, shared)
        recorder.connect_signals()
        return recorder

    def start_run(self) -> int:
        return self.shared.run_id

    def close_run(self, reason: str) -> None:
        if reason == "finished" and self.shared.claim_finish():
            run = self.finish_run(self.shared.totals(), reason)
            self.shared.forget(self.shared.crawl_id)
            counts = run.counts
            message = (f"this worker's part; it finished run {self.run_id}, which all workers took to "
                       f"{counts['pages']} pages, {counts['new']} new, {counts['changed']} changed, "
                       f"{counts['errors']} errors" + (f" ({run.message})" if run.message else ""))
        else:  # another worker finishes the shared run (or carries on with it)
            self.stats.set_value("zwgk/status", "completed" if reason == "finished" else "interrupted")
            message = f"this worker's part of run {self.run_id}" + (
                "" if reason == "finished" else f"; it stopped ({reason}) and the others go on")
        self.stats.set_value("zwgk/message", message)
        # A worker reports the pages it fetched itself.
        self.stats.set_value("zwgk/pages", self.stats.get_value("zwgk/pages", 0)
                             + self.stats.get_value("zwgk/list_pages", 0))
