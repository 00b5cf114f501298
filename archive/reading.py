"""The archive's reading side: search, documents, attachments, events and export records."""

from __future__ import annotations

import zlib
from collections.abc import Iterator

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from .base import ArchiveBase
from .models import Attachment, Document, Event, RawPage, Source, Version
from .records import ExportRecord, export_record
from .search import Query, Searcher, SearchResult
from .urls import canonical_url


class ArchiveReader(ArchiveBase):
    """What readers (the CLI, the web pages, exports, alerts) ask of the archive."""

    def search(self, query: Query, all_versions: bool = False, sort: str = "relevance", limit: int = 20,
               offset: int = 0, facets: bool = True) -> SearchResult:
        """Run a parsed query (archive.search.parse_query): the hits of one page, the total and the facets."""
        with self.session() as session:
            return Searcher(session).search(query, all_versions, sort, limit, offset, facets)

    def find_document(self, key: str) -> Document | None:
        """A document by id (digits) or by any URL of it, with its versions loaded."""
        with self.session() as session:
            if key.isascii() and key.isdigit():
                document = session.get(Document, int(key)) if int(key) < 2**31 else None  # ids are INTEGER
            else:
                document = session.scalar(select(Document).where(Document.canonical_url == canonical_url(key)))
            if document is not None:  # load what callers read after the session closes
                _ = document.source.key, [list(version.attachments) for version in document.versions]
            return document

    def attachment(self, attachment_id: int) -> tuple[Attachment, bytes | None] | None:
        """An archived attachment and its bytes (None when the file could not be fetched)."""
        with self.session() as session:
            row = session.get(Attachment, attachment_id)
            if row is None:
                return None
            page = session.get(RawPage, row.sha256) if row.sha256 else None
            return row, zlib.decompress(page.compressed) if page else None

    def source_names(self) -> dict[str, str]:
        """The archived sources: key -> bureau name."""
        with self.session() as session:
            return dict(session.execute(select(Source.key, Source.name).order_by(Source.key)).all())

    def raw_page(self, sha256: str) -> bytes | None:
        with self.session() as session:
            page = session.get(RawPage, sha256)
            return zlib.decompress(page.compressed) if page else None

    def events(self, document_id: int | None = None) -> list[Event]:
        with self.session() as session:
            query = select(Event).order_by(Event.id)
            if document_id is not None:
                query = query.where(Event.document_id == document_id)
            return list(session.scalars(query))

    def iter_records(self, all_versions: bool = False, search: Query | None = None,
                     batch: int = 500) -> Iterator[ExportRecord]:
        """Export records: each document's latest version, or every version, oldest document first;
        with ``search``, only those matching it. Rows are read in batches: memory stays flat."""
        with self.session() as session:
            searcher = Searcher(session)
            query = searcher.select_versions(Version, Document, Source.key).where(
                *searcher.where(search or Query(None), all_versions))
            query = (query.options(selectinload(Version.attachments)).order_by(Document.id, Version.number)
                     .execution_options(yield_per=batch))
            for version, document, source_key in session.execute(query):
                yield export_record(source_key, document, version)
