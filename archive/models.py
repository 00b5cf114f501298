"""Typed SQLAlchemy 2 models of the archive.

A document is one notice (one canonical URL); a version is written only when
the notice's normalised content changes; events record new / changed / gone /
restored; raw pages keep the response bytes once per sha256.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from crawler.extract.normalise import strip_control_characters

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Aware UTC datetimes on every backend (SQLite keeps no time zone)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the archive")
        return value.astimezone(dt.timezone.utc).replace(tzinfo=None)

    def process_result_value(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        return value.replace(tzinfo=dt.timezone.utc) if value is not None else None


class CrawledText(TypeDecorator[str]):
    """Text that came from the web: NUL, control characters and lone surrogates are dropped on the way in.

    Extraction already removes them; this keeps every caller (a copy from an older
    archive, a re-extraction, a test) from storing what PostgreSQL refuses and SQLite
    accepts, so both backends hold the same text.
    """

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        return strip_control_characters(value) if isinstance(value, str) else value


CHINA_TIME = dt.timezone(dt.timedelta(hours=8), "Asia/Shanghai")


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[type, object]] = {dt.datetime: UTCDateTime(), dict: JSON}
    if TYPE_CHECKING:  # every model is declared with __tablename__, so mapped to a Table
        __table__: ClassVar[Table]


class Source(Base):
    """A bureau whose site is harvested."""

    __tablename__ = "sources"
    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    host: Mapped[str] = mapped_column(String(200))
    platform: Mapped[str] = mapped_column(String(64))
    level: Mapped[str | None] = mapped_column(String(32))
    region: Mapped[str | None] = mapped_column(String(64))


class RawPage(Base):
    """Response bytes, zlib-compressed, stored once per sha256 of the uncompressed bytes."""

    __tablename__ = "raw_pages"
    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)
    content_type: Mapped[str | None] = mapped_column(Text)
    compressed: Mapped[bytes] = mapped_column(LargeBinary)
    stored_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Document(Base):
    """One notice, under its canonical URL."""

    __tablename__ = "documents"
    id: Mapped[int] = mapped_column(primary_key=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id"), index=True)
    canonical_url: Mapped[str] = mapped_column(Text, unique=True)
    url: Mapped[str] = mapped_column(Text)
    first_seen: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_seen: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_changed: Mapped[dt.datetime] = mapped_column(default=utcnow)
    version_count: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(16), default="active")
    etag: Mapped[str | None] = mapped_column(Text)
    last_modified: Mapped[str | None] = mapped_column(Text)
    # What the list page said of the notice, kept so a re-check reads the page in the same context.
    listed_title: Mapped[str | None] = mapped_column(CrawledText)
    listed_date: Mapped[str | None] = mapped_column(Text)
    # [url, name] pairs of the files a list API names, which the page itself may not link.
    listed_attachments: Mapped[list[list[str]] | None] = mapped_column(JSON)
    # When the revisit policy next re-checks the notice (None: at the next crawl).
    next_check_at: Mapped[dt.datetime | None] = mapped_column(index=True)
    # Consecutive re-checks answered 404/410; two make the notice "gone".
    missing_checks: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    source: Mapped[Source] = relationship()
    versions: Mapped[list[Version]] = relationship(
        back_populates="document", order_by="Version.number", cascade="all, delete-orphan",
    )


class Version(Base):
    """The fields of a notice as they stood from ``seen_at`` until the next version."""

    __tablename__ = "versions"
    __table_args__ = (UniqueConstraint("document_id", "number"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    seen_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    content_hash: Mapped[str] = mapped_column(String(64))
    raw_sha256: Mapped[str | None] = mapped_column(ForeignKey("raw_pages.sha256"))
    extractor_version: Mapped[str] = mapped_column(String(16))
    title: Mapped[str | None] = mapped_column(CrawledText)
    doc_number: Mapped[str | None] = mapped_column(CrawledText, index=True)
    doc_number_prefix: Mapped[str | None] = mapped_column(CrawledText)
    doc_number_year: Mapped[int | None] = mapped_column(Integer)
    doc_number_serial: Mapped[int | None] = mapped_column(Integer)
    index_number: Mapped[str | None] = mapped_column(CrawledText)
    issuer: Mapped[str | None] = mapped_column(CrawledText)
    written_date: Mapped[str | None] = mapped_column(String(10))
    published_at: Mapped[str | None] = mapped_column(String(19), index=True)
    disclosure: Mapped[str | None] = mapped_column(CrawledText)
    doc_type: Mapped[str | None] = mapped_column(CrawledText)
    topic: Mapped[str | None] = mapped_column(CrawledText)
    keywords: Mapped[str | None] = mapped_column(CrawledText)
    column: Mapped[str | None] = mapped_column(CrawledText)
    site_id_code: Mapped[str | None] = mapped_column(CrawledText)
    body: Mapped[str] = mapped_column(CrawledText)
    body_original: Mapped[str] = mapped_column(CrawledText)

    document: Mapped[Document] = relationship(back_populates="versions")
    attachments: Mapped[list[Attachment]] = relationship(
        back_populates="version", order_by="Attachment.position", cascade="all, delete-orphan",
    )


class SearchText(Base):
    """The normalised text search looks in, one row per version (archive.search.textindex).

    Its tokens are indexed beside it: in the FTS5 table ``search_fts`` (rowid =
    version id) on SQLite, in a GIN-indexed ``tokens tsvector`` column on PostgreSQL;
    both are made by migration 0004 and kept by archive.search.
    """

    __tablename__ = "search_texts"
    version_id: Mapped[int] = mapped_column(ForeignKey("versions.id"), primary_key=True)
    text: Mapped[str] = mapped_column(CrawledText)


class Attachment(Base):
    """A file attached to a version of a notice: its bytes (in raw_pages) and its text, or why not."""

    __tablename__ = "attachments"
    __table_args__ = (UniqueConstraint("version_id", "position"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("versions.id"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    url: Mapped[str] = mapped_column(Text)
    name: Mapped[str] = mapped_column(CrawledText)
    sha256: Mapped[str | None] = mapped_column(ForeignKey("raw_pages.sha256"), index=True)
    size: Mapped[int | None] = mapped_column(BigInteger)
    content_type: Mapped[str | None] = mapped_column(Text)
    format: Mapped[str | None] = mapped_column(String(16))
    text: Mapped[str | None] = mapped_column(CrawledText)
    error: Mapped[str | None] = mapped_column(CrawledText)

    version: Mapped[Version] = relationship(back_populates="attachments")


class CrawlRun(Base):
    """One crawl of one source."""

    __tablename__ = "crawl_runs"
    id: Mapped[int] = mapped_column(primary_key=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id"), index=True)
    started_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[dt.datetime | None] = mapped_column()
    status: Mapped[str] = mapped_column(String(16), default="running")
    pages: Mapped[int] = mapped_column(Integer, default=0)
    new: Mapped[int] = mapped_column(Integer, default=0)
    changed: Mapped[int] = mapped_column(Integer, default=0)
    unchanged: Mapped[int] = mapped_column(Integer, default=0)
    not_modified: Mapped[int] = mapped_column(Integer, default=0)
    errors: Mapped[int] = mapped_column(Integer, default=0)
    message: Mapped[str | None] = mapped_column(Text)
    # True when every column's list was walked to its end (or to notices known from such a walk).
    walked_to_end: Mapped[bool] = mapped_column(Boolean, default=False)
    # Notices read whose title or publication date could not be found (a health signal).
    incomplete: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Why the run says the source is broken (None: healthy, or not judged yet).
    problem: Mapped[str | None] = mapped_column(Text)

    source: Mapped[Source] = relationship()


class CrawlError(Base):
    """A page a crawl could not fetch or read, kept so that nothing fails silently."""

    __tablename__ = "crawl_errors"
    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("crawl_runs.id"), index=True)
    url: Mapped[str] = mapped_column(Text)
    role: Mapped[str] = mapped_column(String(16), default="detail")
    kind: Mapped[str] = mapped_column(String(64))
    message: Mapped[str] = mapped_column(CrawledText)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Event(Base):
    """Something that happened: to a document (new, changed, gone, restored) or to a source
    (source_broken, source_recovered, with the reason in ``message``)."""

    __tablename__ = "events"
    __table_args__ = (Index("ix_events_kind_at", "kind", "at"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    document_id: Mapped[int | None] = mapped_column(ForeignKey("documents.id"), index=True)
    source_id: Mapped[int | None] = mapped_column(ForeignKey("sources.id"))
    version_id: Mapped[int | None] = mapped_column(ForeignKey("versions.id"))
    run_id: Mapped[int | None] = mapped_column(ForeignKey("crawl_runs.id"))
    kind: Mapped[str] = mapped_column(String(16))
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    message: Mapped[str | None] = mapped_column(Text)


class Lease(Base):
    """A named lock held by one process until ``expires_at`` unless renewed (see archive.leases)."""

    __tablename__ = "leases"
    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    holder: Mapped[str] = mapped_column(String(200))
    acquired_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column()


class AlertRule(Base):
    """A saved search that notifies its channels of what matches it (archive.alerts)."""

    __tablename__ = "alert_rules"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    # "notices": the query matched against new (and, with ``changes``, changed) notices;
    # "source_health": source_broken / source_recovered events, for operators.
    kind: Mapped[str] = mapped_column(String(16), default="notices")
    query: Mapped[str] = mapped_column(Text, default="")
    changes: Mapped[bool] = mapped_column(Boolean, default=False)
    digest: Mapped[bool] = mapped_column(Boolean, default=False)
    # Apprise URLs as given: ${NAME} parts are filled from the environment or [secrets] when sending.
    channels: Mapped[list[str]] = mapped_column(JSON)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    # A rule fires only for events after this one (0 with --backfill).
    start_event_id: Mapped[int] = mapped_column(Integer, default=0)
    # The newest event id seen by the last planning, and when that was: event ids are handed out
    # before their transactions commit, so planning also looks back over recent events.
    last_event_id: Mapped[int] = mapped_column(Integer, default=0)
    planned_at: Mapped[dt.datetime | None] = mapped_column()


class AlertDelivery(Base):
    """One event for one rule on one channel: pending until sent, retried with backoff, sent once."""

    __tablename__ = "alert_deliveries"
    __table_args__ = (UniqueConstraint("rule_id", "event_id", "channel"),
                      Index("ix_alert_deliveries_status_next_attempt_at", "status", "next_attempt_at"))
    id: Mapped[int] = mapped_column(primary_key=True)
    rule_id: Mapped[int] = mapped_column(ForeignKey("alert_rules.id", ondelete="CASCADE"))
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id"))
    channel: Mapped[int] = mapped_column(Integer)  # index into the rule's channels
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[dt.datetime | None] = mapped_column()
