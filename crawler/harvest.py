"""The one path from a page's bytes to an archived record and its version hash.

A crawl, the re-check of a page that answered 304, ``zwgk reextract`` and ``zwgk
extract`` all read a notice through :func:`harvest`; only the way attachments are
fetched differs (over the network, from the archive, not at all). So the same page
in the same list context always makes the same record, and a re-reading never
makes a version the first reading would not have made.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from urllib.parse import urlsplit

from archive.store import AttachmentFile, Listing
from crawler.extract import AttachmentLink, ExtractOptions, Notice, complete_from_attachments, extract_notice
from crawler.extract.normalise import normalise_text
from crawler.extract.sandbox import DEFAULT_MEMORY, DEFAULT_TEXT_MAX, DEFAULT_TIMEOUT, extract_file_text_safely
from crawler.extract.verdict import CHALLENGE, EMPTY, SOFT_404, judge_page
from spiders.registry import SourceConfig

# None: the link is not to be fetched (out of the crawl's scope, or over its cap); it is left out of the record.
FetchFile = Callable[[AttachmentLink], Awaitable[AttachmentFile | None]]


class HarvestError(Exception):
    """The page could not be read as a notice; ``kind`` names why, for the run's error list."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class Page:
    """A detail page as fetched or archived, in the context its list gave it."""

    url: str
    body: bytes
    content_type: str | None = None
    listing: Listing = field(default_factory=Listing)


@dataclass(frozen=True)
class Selectors:
    """Where a source's pages keep their body and title (its registry entry may say)."""

    body: tuple[str, ...] = ()
    title: tuple[str, ...] = ()

    @classmethod
    def of(cls, source: SourceConfig | None) -> Selectors:
        return cls(source.body_selectors, source.title_selectors) if source else cls()


@dataclass(frozen=True)
class FileLimits:
    """How long and how much memory reading one attachment's text may take, and how much text it keeps."""

    timeout: float = DEFAULT_TIMEOUT
    memory: int = DEFAULT_MEMORY
    text_max: int = DEFAULT_TEXT_MAX


@dataclass
class Record:
    """A notice as it will be archived: its fields and its attachments, in order."""

    notice: Notice
    files: list[AttachmentFile]

    @property
    def fields(self) -> dict[str, object]:
        return self.notice.as_dict()

    @property
    def version_hash(self) -> str:
        return self.notice.version_hash([file.digest for file in self.files])

    @property
    def complete(self) -> bool:
        """Whether the notice has the two fields every notice shows: a title and a date."""
        return bool(self.notice.title and self.notice.published_at)


def read_page(page: Page, selectors: Selectors = Selectors()) -> Notice:
    """The notice's fields from its page, with the files its list names besides the page's links."""
    options = ExtractOptions(body_selectors=selectors.body, title_selectors=selectors.title,
                             listed_title=page.listing.title, listed_date=page.listing.date)
    try:
        notice = extract_notice(page.body, page.url, content_type=page.content_type, options=options)
    except Exception as error:  # a broken page is an error of the run, never the end of it
        raise HarvestError("extraction", f"{error.__class__.__name__}: {error}") from error
    verdict = judge_page(notice.title, notice.body, page.body, page.content_type, bool(notice.attachments))
    on_page = {link.url for link in notice.attachments}
    notice.attachments += [AttachmentLink(url, name) for url, name in page.listing.attachments if url not in on_page]
    if verdict.kind in (SOFT_404, CHALLENGE) or (verdict.kind == EMPTY and not notice.attachments):
        # A challenge, error or blocked page is not a version of the notice; a later run tries again.
        raise HarvestError(verdict.kind, verdict.reason)
    return notice


async def harvest(page: Page, selectors: Selectors, fetch: FetchFile) -> Record:
    """Read ``page`` and its attachments (through ``fetch``) into the record to archive."""
    notice = read_page(page, selectors)
    fetched = [(link, await fetch(link)) for link in notice.attachments]
    notice.attachments = [link for link, file in fetched if file is not None]
    files = [file for _, file in fetched if file is not None]
    complete_from_attachments(notice, [file.text for file in files if file.text])
    return Record(notice, files)


def harvest_now(page: Page, selectors: Selectors, fetch: FetchFile) -> Record:
    """:func:`harvest` for callers outside an event loop (``zwgk extract``, ``zwgk reextract``)."""
    return asyncio.run(harvest(page, selectors, fetch))


def read_file(link: AttachmentLink, body: bytes, content_type: str | None = None,
              limits: FileLimits = FileLimits(), sha256: str | None = None) -> AttachmentFile:
    """An attachment's record from its bytes, its text read in the sandbox within ``limits``."""
    result = extract_file_text_safely(body, PurePosixPath(urlsplit(link.url).path).name, limits.timeout,
                                      limits.memory, limits.text_max)
    return AttachmentFile(link.url, link.name, body if sha256 is None else None, sha256=sha256,
                          content_type=content_type or None, format=result.format,
                          text=result.text and normalise_text(result.text), error=result.error)


def refused_file(file: AttachmentFile, previous: AttachmentFile | None) -> str | None:
    """Why a downloaded file is not taken as the attachment (a failed download, the last good copy
    staying), or None: an HTML page served as the file, or a replacement that cannot be read where the
    archived file could."""
    if file.format == "html":
        return file.error or "an HTML page was served instead of the file"
    if previous is not None and previous.text is not None and file.text is None and file.digest != previous.digest:
        return f"the replacement file cannot be read ({file.error}); the last readable copy stays"
    return None


def stored_files(files: dict[str, tuple[str, bytes]], limits: FileLimits = FileLimits()) -> FetchFile:
    """Attachments from the archive (URL -> (sha256, bytes)): nothing is fetched."""

    async def fetch(link: AttachmentLink) -> AttachmentFile:
        if link.url not in files:
            return AttachmentFile(link.url, link.name, error="not downloaded yet: the next crawl fetches it")
        sha256, body = files[link.url]
        return read_file(link, body, limits=limits, sha256=sha256)

    return fetch


async def not_fetched(link: AttachmentLink) -> AttachmentFile:
    """Attachments left alone (``zwgk extract`` reads a page, never the network)."""
    return AttachmentFile(link.url, link.name, error="not fetched")
