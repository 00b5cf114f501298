"""Reading archived notices again after an extractor upgrade, without fetching anything."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from urllib.parse import urlsplit

from archive import Archive
from archive.store import AttachmentFile
from crawler.extract import ExtractOptions, complete_from_attachments, extract_notice
from crawler.extract.normalise import normalise_text
from crawler.extract.sandbox import extract_file_text_safely
from spiders.registry import SourceConfig


@dataclass
class ReextractSummary:
    notices: int = 0
    updated: int = 0


def reextract(archive: Archive, registry: dict[str, SourceConfig], source_keys: Sequence[str] = (),
              progress: Callable[[int], None] | None = None) -> ReextractSummary:
    """Re-run page and attachment extraction on every latest version from its stored bytes.

    Derived fields, attachment texts and the extractor version are updated in place;
    an extractor change alone makes no version and no event.
    """
    summary = ReextractSummary()
    for stored in archive.stored_notices(source_keys):
        source = registry.get(stored.source_key)
        options = ExtractOptions(
            body_selectors=source.body_selectors if source else (),
            title_selectors=source.title_selectors if source else (),
            listed_title=stored.listed_title, listed_date=stored.listed_date,
        )
        notice = extract_notice(stored.page.body, stored.url, content_type=stored.page.content_type, options=options)
        files = [_reread(link.url, link.name, stored.files.get(link.url)) for link in notice.attachments]
        complete_from_attachments(notice, [file.text for file in files if file.text])
        if archive.update_version(stored.version_id, notice.as_dict(), notice.version_hash([f.digest for f in files]),
                                  files):
            summary.updated += 1
        summary.notices += 1
        if progress:
            progress(summary.notices)
    return summary


def _reread(url: str, name: str, stored: tuple[str, bytes] | None) -> AttachmentFile:
    if stored is None:
        return AttachmentFile(url, name, error="not downloaded yet: the next crawl fetches it")
    sha256, body = stored
    result = extract_file_text_safely(body, PurePosixPath(urlsplit(url).path).name)
    return AttachmentFile(url, name, sha256=sha256, format=result.format,
                          text=result.text and normalise_text(result.text), error=result.error)
