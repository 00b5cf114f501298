"""The versioning store: save what a crawl saw, one transaction per notice.

The rule: a version is written only when a notice's normalised content (its
content hash, computed by the caller) differs from its latest version; seeing
an unchanged notice again only moves its ``last_seen``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import zlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session

from .busy import retry_while_busy
from .crawls import CrawlRecords
from .errors import ArchiveError
from .models import (
    Attachment,
    Document,
    Event,
    RawPage,
    Source,
    Version,
    utcnow,
)
from .reading import ArchiveReader
from .revisits import GONE_AFTER_MISSING_CHECKS
from .search import IndexEntry, index_version, prepare_index, searched_parts, version_parts
from .urls import canonical_url

Outcome = Literal["new", "changed", "unchanged"]
VERSION_FIELDS = (
    "title", "doc_number", "doc_number_prefix", "doc_number_year", "doc_number_serial", "index_number",
    "issuer", "written_date", "published_at", "disclosure", "doc_type", "topic", "keywords", "column",
    "site_id_code", "body", "body_original", "extractor_version",
)


@dataclass(frozen=True)
class SaveResult:
    outcome: Outcome
    document_id: int
    version: int


@dataclass(frozen=True)
class Listing:
    """What a list page (or list API) said of a notice: kept with the document, so every
    later reading of its page (a 304 re-check, a reextract, a revisit) sees the same context."""

    title: str | None = None
    date: str | None = None
    # (url, name) of the files the list names, which the page itself may not link.
    attachments: tuple[tuple[str, str], ...] = ()

    def updated_by(self, newer: Listing) -> Listing:
        """This listing with what a newer one says; what it does not say stands."""
        return Listing(newer.title or self.title, newer.date or self.date, newer.attachments or self.attachments)


def _listing(document: Document | None) -> Listing:
    if document is None:
        return Listing()
    attachments = tuple((url, name) for url, name in document.listed_attachments or ())
    return Listing(document.listed_title, document.listed_date, attachments)


@dataclass(frozen=True)
class RawResponse:
    body: bytes
    content_type: str | None = None
    etag: str | None = None
    last_modified: str | None = None


@dataclass(frozen=True)
class StoredNotice:
    """A latest version with the bytes it was read from, for reading it again."""

    version_id: int
    source_key: str
    url: str
    page: RawResponse
    listing: Listing
    files: dict[str, tuple[str, bytes]]  # attachment URL -> (sha256, bytes)


@dataclass(frozen=True)
class AttachmentFile:
    """An attachment as a crawl met it: its bytes when they could be fetched, its text or why not.

    ``sha256`` without ``body`` means the bytes were not fetched this time and the
    archived file of that digest (from an earlier version) stands.
    """

    url: str
    name: str
    body: bytes | None = None
    sha256: str | None = None
    content_type: str | None = None
    format: str | None = None
    text: str | None = None
    error: str | None = None

    @property
    def digest(self) -> str | None:
        return hashlib.sha256(self.body).hexdigest() if self.body is not None else self.sha256


class Archive(CrawlRecords, ArchiveReader):
    """The archive's operations; every public method is its own transaction.

    Sources, runs and what a crawl plans from live in CrawlRecords (archive/crawls.py), the
    reading side in ArchiveReader (archive/reading.py); this class writes what crawls see.
    """

    # Writing

    def save_notice(self, source_key: str, url: str, fields: Mapping[str, object], content_hash: str,
                    raw: RawResponse | None = None, run_id: int | None = None,
                    seen_at: dt.datetime | None = None, listing: Listing | None = None,
                    attachments: Sequence[AttachmentFile] = ()) -> SaveResult:
        """Archive what was seen at ``url``: a new version only when ``content_hash`` is new.

        Safe when several processes archive the same notice at once: the document is
        created by an insert that ignores a conflict, then locked (PostgreSQL) or written
        under SQLite's single writer, so one process makes the version and the event and
        the others find it unchanged. A unique constraint that still trips is retried.
        """
        seen_at = seen_at or utcnow()
        for attempt in range(_SAVE_ATTEMPTS):
            try:
                return self._save(source_key, url, fields, content_hash, raw, run_id, seen_at,
                                  listing or Listing(), attachments)
            except IntegrityError as error:
                if attempt == _SAVE_ATTEMPTS - 1:
                    raise ArchiveError(f"could not archive {url}: {error.__class__.__name__}: {error}") from error
            except SQLAlchemyError as error:
                raise ArchiveError(f"could not archive {url}: {error.__class__.__name__}: {error}") from error
        raise AssertionError("unreachable")

    @retry_while_busy
    def _save(self, source_key: str, url: str, fields: Mapping[str, object], content_hash: str,
              raw: RawResponse | None, run_id: int | None, seen_at: dt.datetime, listing: Listing,
              attachments: Sequence[AttachmentFile]) -> SaveResult:
        canonical = canonical_url(url)
        source_id = self._source_id_for(source_key)
        # Compressing and indexing are CPU work: done before the transaction (which holds SQLite's
        # writer lock), unless the notice is known unchanged.
        prepared = None if self._latest_hash(canonical) == content_hash else self._prepare(fields, raw, attachments)
        with self._sessions.begin() as session:
            # A write first: on SQLite it takes the single writer's lock before anything is read.
            _insert_ignoring_conflicts(session, Document, {
                "source_id": source_id, "canonical_url": canonical, "url": url, "first_seen": seen_at,
                "last_seen": seen_at, "last_changed": seen_at, "version_count": 0, "status": "active",
                "missing_checks": 0})
            document = session.execute(select(Document).where(Document.canonical_url == canonical)
                                       .with_for_update()).scalar_one()
            document.url = url
            kept = _listing(document).updated_by(listing)
            document.listed_title, document.listed_date = kept.title, kept.date
            document.listed_attachments = [list(pair) for pair in kept.attachments] or None
            if raw is not None:
                document.etag, document.last_modified = raw.etag, raw.last_modified
            self._answered(session, document, run_id, seen_at)
            latest = self._latest_version(session, document.id)
            if latest is not None and latest.content_hash == content_hash:
                return SaveResult("unchanged", document.id, latest.number)
            prepared = prepared or self._prepare(fields, raw, attachments)  # changed since we looked
            _store_pages(session, prepared)
            raw_sha256 = hashlib.sha256(raw.body).hexdigest() if raw is not None else None
            version = Version(
                document_id=document.id, number=document.version_count + 1, seen_at=seen_at,
                content_hash=content_hash, raw_sha256=raw_sha256,
                **{name: fields.get(name) for name in VERSION_FIELDS if name != "extractor_version"},
                extractor_version=str(fields.get("extractor_version") or ""),
            )
            session.add(version)
            document.version_count = version.number
            document.last_changed = seen_at
            session.flush()
            for position, attachment in enumerate(attachments):
                self._add_attachment(session, version.id, position, attachment)
            session.flush()
            index_version(session.connection(), version.id, prepared.index)
            outcome: Outcome = "new" if latest is None else "changed"
            self._add_event(session, document.id, version.id, run_id, outcome, seen_at)
            return SaveResult(outcome, document.id, version.number)

    def _source_id_for(self, key: str) -> int:
        with self.session() as session:
            return self._source_id(session, key)

    def _prepare(self, fields: Mapping[str, object], raw: RawResponse | None,
                 attachments: Sequence[AttachmentFile]) -> _Prepared:
        """Compress the bytes not archived yet and prepare the index text, outside any transaction."""
        responses = [raw] if raw is not None else []
        responses += [RawResponse(a.body, a.content_type) for a in attachments if a.body is not None]
        bodies = {hashlib.sha256(response.body).hexdigest(): response for response in responses}
        with self.session() as session:
            stored = set(session.scalars(select(RawPage.sha256).where(RawPage.sha256.in_(bodies))))
        parts = searched_parts(_text(fields, "title"), _text(fields, "doc_number"), _text(fields, "body"),
                               [a.text for a in attachments])
        return _Prepared(bodies, {sha256: zlib.compress(response.body, 6) for sha256, response in bodies.items()
                                  if sha256 not in stored}, prepare_index(parts))

    def _latest_hash(self, canonical: str) -> str | None:
        with self.session() as session:
            latest: str | None = session.scalar(
                select(Version.content_hash).join(Document, Version.document_id == Document.id)
                .where(Document.canonical_url == canonical, Version.number == Document.version_count))
            return latest

    @retry_while_busy
    def mark_not_modified(self, url: str, etag: str | None = None, last_modified: str | None = None,
                          run_id: int | None = None) -> SaveResult | None:
        """A conditional request said 304: the notice is unchanged; only ``last_seen`` moves."""
        with self._sessions.begin() as session:
            document = session.scalar(select(Document).where(Document.canonical_url == canonical_url(url)))
            if document is None:
                return None
            self._answered(session, document, run_id, utcnow())
            document.etag = etag or document.etag
            document.last_modified = last_modified or document.last_modified
            return SaveResult("unchanged", document.id, document.version_count)

    @retry_while_busy
    def mark_missing(self, url: str, run_id: int | None = None) -> str | None:
        """A re-check was answered 404 or 410. The second such answer in a row makes the notice
        ``gone`` (an event; its versions stay). Returns the document's status, None if unknown."""
        now = utcnow()
        with self._sessions.begin() as session:
            document = session.scalar(select(Document).where(Document.canonical_url == canonical_url(url)))
            if document is None:
                return None
            document.missing_checks += 1
            document.next_check_at = self.policy.next_check(document.first_seen, now)
            if document.missing_checks >= GONE_AFTER_MISSING_CHECKS and document.status != "gone":
                document.status = "gone"
                self._add_event(session, document.id, None, run_id, "gone", now)
            return document.status

    def _answered(self, session: Session, document: Document, run_id: int | None, at: dt.datetime) -> None:
        """The notice answered a fetch: it is seen, due again by the policy, and back if it was gone."""
        document.last_seen = at
        document.next_check_at = self.policy.next_check(document.first_seen, at)
        document.missing_checks = 0
        if document.status == "gone":
            document.status = "active"
            self._add_event(session, document.id, None, run_id, "restored", at)

    @staticmethod
    def _latest_version(session: Session, document_id: int) -> Version | None:
        return session.scalar(
            select(Version).where(Version.document_id == document_id).order_by(Version.number.desc()).limit(1)
        )

    @staticmethod
    def _add_attachment(session: Session, version_id: int, position: int, attachment: AttachmentFile) -> None:
        """The attachment's row (its bytes are stored by _store_pages)."""
        size = None
        if attachment.body is not None:
            size = len(attachment.body)
        elif attachment.sha256 is not None:
            size = session.scalar(select(RawPage.size).where(RawPage.sha256 == attachment.sha256))
        session.add(Attachment(
            version_id=version_id, position=position, url=attachment.url, name=attachment.name,
            sha256=attachment.digest, size=size, content_type=attachment.content_type, format=attachment.format,
            text=attachment.text, error=attachment.error,
        ))

    def latest_attachments(self, url: str) -> dict[str, AttachmentFile]:
        """The attachments of a document's latest version by URL (without bytes), for when a fetch fails."""
        with self.session() as session:
            query = (select(Attachment).join(Version).join(Document)
                     .where(Document.canonical_url == canonical_url(url), Version.number == Document.version_count))
            return {row.url: AttachmentFile(row.url, row.name, sha256=row.sha256, content_type=row.content_type,
                                            format=row.format, text=row.text, error=row.error)
                    for row in session.scalars(query) if row.sha256}

    def stored_notices(self, source_keys: Sequence[str] = ()) -> Iterator[StoredNotice]:
        """Every document's latest version with its page and attachment bytes (all sources when none named)."""
        with self.session() as session:
            query = (select(Version.id, Source.key, Document, Version.raw_sha256)
                     .join(Document, Version.document_id == Document.id).join(Source)
                     .where(Version.number == Document.version_count, Version.raw_sha256.is_not(None))
                     .order_by(Document.id))
            if source_keys:
                query = query.where(Source.key.in_(source_keys))
            rows = session.execute(query).all()
        for version_id, source_key, document, raw_sha256 in rows:
            with self.session() as session:
                page = session.get_one(RawPage, raw_sha256)
                files = {a.url: (a.sha256, zlib.decompress(session.get_one(RawPage, a.sha256).compressed))
                         for a in session.scalars(select(Attachment).where(Attachment.version_id == version_id))
                         if a.sha256}
                yield StoredNotice(version_id, source_key, document.url,
                                   RawResponse(zlib.decompress(page.compressed), page.content_type),
                                   _listing(document), files)

    @retry_while_busy
    def update_version(self, version_id: int, fields: Mapping[str, object], content_hash: str,
                       attachments: Sequence[AttachmentFile]) -> bool:
        """Replace a version's derived fields in place after an extractor upgrade (no new version, no event).

        Returns whether anything differed.
        """
        with self._sessions.begin() as session:
            version = session.get_one(Version, version_id)
            old = ({name: getattr(version, name) for name in VERSION_FIELDS}, version.content_hash,
                   [(a.url, a.name, a.sha256, a.format, a.text, a.error) for a in version.attachments])
            for name in VERSION_FIELDS:
                setattr(version, name, str(fields.get(name) or "") if name == "extractor_version" else fields.get(name))
            version.content_hash = content_hash
            version.attachments.clear()
            session.flush()
            _store_pages(session, self._prepare({}, None, attachments))
            for position, attachment in enumerate(attachments):
                self._add_attachment(session, version_id, position, attachment)
            session.flush()
            index_version(session.connection(), version_id, version_parts(version, [a.text for a in attachments]),
                          replace=True)
            session.refresh(version)
            new = ({name: getattr(version, name) for name in VERSION_FIELDS}, version.content_hash,
                   [(a.url, a.name, a.sha256, a.format, a.text, a.error) for a in version.attachments])
            return old != new

    def latest_page(self, url: str) -> RawResponse | None:
        """The archived page bytes of a document's latest version, with its validators."""
        with self.session() as session:
            row = session.execute(
                select(RawPage, Document.etag, Document.last_modified)
                .join(Version, Version.raw_sha256 == RawPage.sha256).join(Document, Version.document_id == Document.id)
                .where(Document.canonical_url == canonical_url(url), Version.number == Document.version_count)
            ).first()
            if row is None:
                return None
            page, etag, last_modified = row
            return RawResponse(zlib.decompress(page.compressed), page.content_type, etag, last_modified)

    def listing(self, url: str) -> Listing:
        """What the lists have said of the document at ``url`` (empty for an unknown one)."""
        with self.session() as session:
            return _listing(session.scalar(select(Document).where(Document.canonical_url == canonical_url(url))))

    def attachment_text(self, sha256: str) -> tuple[str | None, str | None, str | None] | None:
        """(format, text, error) already read from the file with this digest, so it is not read twice."""
        with self.session() as session:
            row = session.scalars(select(Attachment).where(Attachment.sha256 == sha256)
                                  .order_by(Attachment.id.desc()).limit(1)).first()
            return (row.format, row.text, row.error) if row else None

    @staticmethod
    def _add_event(session: Session, document_id: int, version_id: int | None, run_id: int | None,
                   kind: str, at: dt.datetime) -> None:
        session.add(Event(document_id=document_id, version_id=version_id, run_id=run_id, kind=kind, at=at))

_SAVE_ATTEMPTS = 4


def _text(fields: Mapping[str, object], name: str) -> str | None:
    value = fields.get(name)
    return None if value is None else str(value)


@dataclass(frozen=True)
class _Prepared:
    """What a new version writes, made ready outside the transaction."""

    bodies: dict[str, RawResponse]  # sha256 -> the page's and its files' bytes
    compressed: dict[str, bytes]  # sha256 -> compressed bytes, of those not archived when prepared
    index: IndexEntry


def _store_pages(session: Session, prepared: _Prepared) -> None:
    """The raw_pages rows a version needs that are not there yet."""
    for sha256, response in prepared.bodies.items():
        if session.get(RawPage, sha256) is None:  # another process may be storing the same bytes
            compressed = prepared.compressed.get(sha256) or zlib.compress(response.body, 6)
            _insert_ignoring_conflicts(session, RawPage, {
                "sha256": sha256, "size": len(response.body), "content_type": response.content_type,
                "compressed": compressed, "stored_at": utcnow()})


def _insert_ignoring_conflicts(session: Session, model: type, values: Mapping[str, object]) -> None:
    """INSERT … ON CONFLICT DO NOTHING, on SQLite and PostgreSQL alike."""
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    session.execute(insert(model).values(**values).on_conflict_do_nothing())

