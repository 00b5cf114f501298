"""The archive pipeline: extract each fetched page and store it, one transaction per notice."""

from __future__ import annotations

import hashlib
import logging

from scrapy import Request, Spider, signals
from scrapy.crawler import Crawler
from scrapy.utils.defer import maybe_deferred_to_future
from twisted.internet.threads import deferToThread

from archive import Archive, ArchiveError
from archive.store import AttachmentFile, Listing, RawResponse
from crawler.context import context_of
from crawler.extract import AttachmentLink
from crawler.failures import describe_error
from crawler.harvest import FetchFile, FileLimits, HarvestError, Page, Selectors, harvest, read_file, refused_file
from crawler.items import ORIGINAL_URL, ROLE, FetchErrorItem, MissingItem, NotModifiedItem, PageItem
from crawler.scope import OutOfScope
from spiders.registry import SourceConfig

logger = logging.getLogger(__name__)


class ArchivePipeline:
    """Turns PageItems into archived versions and records every failure against the run.

    The run is the one crawler.runs.RunRecorder started (its id is the ``zwgk/run_id`` stat).
    """

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.stats = crawler.stats
        settings = crawler.settings
        self.attachment_maxsize = settings.getint("ZWGK_ATTACHMENT_MAXSIZE")
        self.max_attachments = settings.getint("ZWGK_MAX_ATTACHMENTS")
        self.file_limits = FileLimits(settings.getfloat("ZWGK_ATTACHMENT_TIMEOUT"),
                                      settings.getint("ZWGK_ATTACHMENT_MEMORY"),
                                      settings.getint("ZWGK_ATTACHMENT_TEXT_MAX"))
        # The crawl context's, set when the spider opens.
        self.archive: Archive
        self.source: SourceConfig

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> ArchivePipeline:
        pipeline = cls(crawler)
        crawler.signals.connect(pipeline.spider_error, signal=signals.spider_error)
        crawler.signals.connect(pipeline.request_dropped, signal=signals.request_dropped)
        return pipeline

    def open_spider(self, spider: Spider | None = None) -> None:
        context = context_of(self.crawler)
        self.archive, self.source = context.archive, context.source

    @property
    def run_id(self) -> int | None:
        return self.stats.get_value("zwgk/run_id")

    async def process_item(self, item, spider: Spider | None = None):
        if isinstance(item, PageItem):
            self._count("pages")
            await self._archive_page(item)
        elif isinstance(item, NotModifiedItem):
            self._count("pages")
            self._count("not_modified")
            if self.archive.latest_attachments(item.url):
                await self._recheck_attachments(item)
            else:
                self.archive.mark_not_modified(item.url, item.etag, item.last_modified, self.run_id)
                self._count("unchanged")
        elif isinstance(item, MissingItem):
            self._count("pages")
            status = self.archive.mark_missing(item.url, self.run_id)
            self._count("gone" if status == "gone" else "missing")
            logger.info("%s answered %s (%s)", item.url, item.status, status)
        elif isinstance(item, FetchErrorItem):
            self._error(item.url, item.kind, item.message, item.role)
        return item

    async def _archive_page(self, item: PageItem) -> None:
        # What the list said this time, over what earlier lists said (a re-check carries no list data).
        listing = self.archive.listing(item.url).updated_by(
            Listing(item.listed_title, item.listed_date, item.listed_attachments))
        page = Page(item.url, item.body, item.content_type, listing)
        try:
            record = await harvest(page, Selectors.of(self.source), self._fetcher(item.url))
        except HarvestError as error:
            logger.warning("%s: %s", item.url, error)
            self._error(item.url, error.kind, str(error))
            return
        if not record.complete:
            self._count("incomplete")
        raw = RawResponse(item.body, item.content_type, item.etag, item.last_modified)
        try:
            result = self.archive.save_notice(item.source, item.url, record.fields, record.version_hash, raw=raw,
                                              run_id=self.run_id, listing=listing, attachments=record.files)
        except ArchiveError as error:
            logger.error("%s", error)
            self._error(item.url, "archive", str(error))
            return
        self._count(result.outcome)

    async def _recheck_attachments(self, item: NotModifiedItem) -> None:
        """The page is unchanged (304) but a file behind it may have been replaced: read the archived
        page again with freshly fetched attachments, which makes a version only if a file changed."""
        raw = self.archive.latest_page(item.url)
        if raw is None:
            self.archive.mark_not_modified(item.url, item.etag, item.last_modified, self.run_id)
            self._count("unchanged")
            return
        await self._archive_page(PageItem(
            item.source, item.url, raw.body, content_type=raw.content_type, etag=item.etag or raw.etag,
            last_modified=item.last_modified or raw.last_modified,
        ))

    def _fetcher(self, url: str) -> FetchFile:
        """Fetches the attachments of the notice at ``url``, falling back on the files archived with it;
        past ZWGK_MAX_ATTACHMENTS links, the rest are left out (and that is recorded once)."""
        previous: dict[str, AttachmentFile] | None = None
        asked = 0

        async def fetch(link: AttachmentLink) -> AttachmentFile | None:
            nonlocal previous, asked
            asked += 1
            if asked > self.max_attachments:
                if asked == self.max_attachments + 1:
                    self._error(url, "cap", f"more than {self.max_attachments} attachment links; the rest are "
                                            "left out (ZWGK_MAX_ATTACHMENTS)")
                return None
            if previous is None:
                previous = self.archive.latest_attachments(url)
            return await self._fetch_attachment(link, previous.get(link.url))

        return fetch

    async def _fetch_attachment(self, link: AttachmentLink, previous: AttachmentFile | None) -> AttachmentFile | None:
        """Download an attachment through Scrapy (scope, politeness, retries, HOST_MAP) and read its text.

        When it cannot be fetched, or what came is not a readable file of its kind where the archived
        one was (:func:`crawler.harvest.refused_file`), the file archived for it before (if any) stands,
        so a flaky download or a broken replacement never makes a version; the failure is recorded.
        A link out of the crawl's scope (crawler.scope) is recorded and left out: None.
        """
        try:
            request = Request(link.url, dont_filter=True,
                              meta={"download_maxsize": self.attachment_maxsize, ROLE: "attachment"})
        except ValueError as error:  # no scheme, a bad port or host: nothing to ask for
            self._error(link.url, "bad-link", f"a malformed attachment link ({error})", role="attachment")
            return None
        try:
            response = await self.crawler.engine.download_async(request)
        except OutOfScope as error:
            self._error(link.url, "scope", str(error), role="attachment")
            return None
        except Exception as error:  # timed out, over the size limit, forbidden by robots.txt
            reason = describe_error(error, link.url, "ZWGK_ATTACHMENT_MAXSIZE")[1]
        else:
            if response.status < 400:
                content_type = (response.headers.get(b"Content-Type") or b"").decode("latin-1")
                file = await self._read_attachment(link, response.body, content_type)
                refusal = refused_file(file, previous)
                if refusal is None:
                    return file
                reason = refusal
            else:
                reason = f"the site answered {response.status}"
        self._error(link.url, "attachment", reason, role="attachment")
        return previous or AttachmentFile(link.url, link.name, error=f"not downloaded: {reason}")

    async def _read_attachment(self, link: AttachmentLink, body: bytes, content_type: str) -> AttachmentFile:
        """The file's text, read once per distinct file: a digest archived before is not read again."""
        known = self.archive.attachment_text(hashlib.sha256(body).hexdigest())
        if known is None:
            self._count("attachments")
            return await maybe_deferred_to_future(deferToThread(
                read_file, link, body, content_type, self.file_limits))
        file_format, text, error = known
        return AttachmentFile(link.url, link.name, body, content_type=content_type or None, format=file_format,
                              text=text, error=error)

    def spider_error(self, failure, response, spider: Spider) -> None:
        """A page the spider could not read (a bug or a layout it does not know) is an error of the run."""
        url = response.url if response is not None else "(start requests)"
        role = response.meta.get(ROLE, "detail") if response is not None and response.request else "list"
        self._error(url, "spider", f"{failure.value.__class__.__name__}: {failure.value}", role)

    def request_dropped(self, request: Request, spider: Spider) -> None:
        """A redirect to a URL this crawl already asked for (a redirect loop) is dropped by the
        duplicate filter without an errback: record it, or the notice would be lost silently."""
        if not request.meta.get("redirect_urls"):
            return
        entry = request.cb_kwargs.get("entry")
        url = getattr(entry, "url", None) or request.meta.get(ORIGINAL_URL, request.url)
        self._error(url, "redirect-loop", f"redirected to {request.url}, which this crawl already asked for "
                                          "(a redirect loop?)", request.meta.get(ROLE, "detail"))

    def _error(self, url: str, kind: str, message: str, role: str = "detail") -> None:
        self._count("errors")
        self.stats.set_value("zwgk/first_error", self.stats.get_value("zwgk/first_error") or f"{kind}: {message}")
        run_id = self.run_id
        if run_id is None:
            raise RuntimeError(f"{kind} error at {url} before the run started: {message}")
        self.archive.record_error(run_id, url, kind, message, role)

    def _count(self, name: str) -> None:
        self.stats.inc_value(f"zwgk/{name}")
