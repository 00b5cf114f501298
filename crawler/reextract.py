"""Reading archived notices again after an extractor upgrade, without fetching anything."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from archive import Archive
from crawler.harvest import HarvestError, Page, Selectors, harvest_now, stored_files
from spiders.registry import SourceConfig


@dataclass
class ReextractSummary:
    notices: int = 0
    updated: int = 0
    # Archived pages that a crawl today would not take as the notice (a soft 404 or a challenge
    # archived by an older extractor): (url, why); their versions are left as they are.
    not_notices: list[tuple[str, str]] = field(default_factory=list)


def reextract(archive: Archive, registry: dict[str, SourceConfig], source_keys: Sequence[str] = (),
              progress: Callable[[int], None] | None = None) -> ReextractSummary:
    """Re-run page and attachment extraction on every latest version from its stored bytes.

    Derived fields, attachment texts and the extractor version are updated in place;
    an extractor change alone makes no version and no event.
    """
    summary = ReextractSummary()
    for stored in archive.stored_notices(source_keys):
        page = Page(stored.url, stored.page.body, stored.page.content_type, stored.listing)
        summary.notices += 1
        try:
            record = harvest_now(page, Selectors.of(registry.get(stored.source_key)), stored_files(stored.files))
        except HarvestError as error:
            summary.not_notices.append((stored.url, f"{error.kind}: {error}"))
        else:
            if archive.update_version(stored.version_id, record.fields, record.version_hash, record.files):
                summary.updated += 1
        if progress:
            progress(summary.notices)
    return summary
