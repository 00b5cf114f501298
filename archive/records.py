"""Export records: the one shape in which a version of a notice leaves the archive.

Export, the web pages and API, alerts, feeds and the CLI all read notices as these
records, so a field is named, ordered and formatted (dates in China time) once.
"""

from __future__ import annotations

import datetime as dt
from typing import TypedDict, overload

from .errors import ArchiveError
from .models import CHINA_TIME, CrawlRun, Document, Version

# The fields DESIGN.md promises, in that order, then more.
EXPORT_FIELDS = (
    "source", "url", "title", "doc_number", "index_number", "issuer", "written_date", "published_at",
    "disclosure", "doc_type", "body", "body_original", "attachments", "version", "versions", "first_seen",
    "last_changed", "content_hash", "document_id", "version_seen_at", "doc_number_prefix", "doc_number_year",
    "doc_number_serial", "topic", "keywords", "column", "status",
)


class AttachmentRecord(TypedDict):
    url: str
    name: str
    sha256: str | None
    size: int | None
    text: str | None
    error: str | None


class ExportRecord(TypedDict):
    """A version of a notice as it leaves the archive: the fields of EXPORT_FIELDS, in that order."""

    source: str
    url: str
    title: str | None
    doc_number: str | None
    index_number: str | None
    issuer: str | None
    written_date: str | None
    published_at: str | None
    disclosure: str | None
    doc_type: str | None
    body: str
    body_original: str
    attachments: list[AttachmentRecord]
    version: int
    versions: int
    first_seen: str | None
    last_changed: str | None
    content_hash: str
    document_id: int
    version_seen_at: str | None
    doc_number_prefix: str | None
    doc_number_year: int | None
    doc_number_serial: int | None
    topic: str | None
    keywords: str | None
    column: str | None
    status: str


class RunRecord(TypedDict):
    id: int
    source: str
    started: str | None
    seconds: int | None
    pages: int
    new: int
    changed: int
    unchanged: int
    not_modified: int
    errors: int
    status: str
    problem: str | None
    message: str | None


# The archive keeps every text whole (export gives it back as stored); where a text is shown
# (web pages, the terminal) a title or metadata value is cut to this many characters.
MAX_SHOWN_CHARS = 300


@overload
def shorten(text: str, limit: int = ...) -> str: ...
@overload
def shorten(text: None, limit: int = ...) -> None: ...
@overload
def shorten(text: str | None, limit: int = ...) -> str | None: ...
def shorten(text: str | None, limit: int = MAX_SHOWN_CHARS) -> str | None:
    """``text`` cut to at most ``limit`` characters, ending in … where it was cut."""
    if text is None or len(text) <= limit:
        return text
    return text[:limit - 1] + "…"


class NoSuchVersion(ArchiveError):
    """A version number a document does not have."""

    def __init__(self, document: Document, number: int) -> None:
        super().__init__(f"notice {document.id} has versions 1–{document.version_count}, not {number}")


def china_time(value: dt.datetime | None) -> str | None:
    return value.astimezone(CHINA_TIME).strftime("%Y-%m-%dT%H:%M:%S") if value else None


def run_record(run: CrawlRun, source_key: str) -> RunRecord:
    """A crawl run as `zwgk runs` lists it: its start in China time, its length in whole seconds."""
    return {"id": run.id, "source": source_key, "started": china_time(run.started_at),
            "seconds": round((run.finished_at - run.started_at).total_seconds()) if run.finished_at else None,
            "pages": run.pages, "new": run.new, "changed": run.changed, "unchanged": run.unchanged,
            "not_modified": run.not_modified, "errors": run.errors, "status": run.status,
            "problem": run.problem, "message": run.message}


def version_of(document: Document, number: int | None = None) -> Version:
    """The latest version of ``document`` (its versions loaded), or its version ``number``."""
    wanted = document.version_count if number is None else number
    for version in document.versions:
        if version.number == wanted:
            return version
    raise NoSuchVersion(document, wanted)


def document_record(document: Document, number: int | None = None) -> ExportRecord:
    """The record of a document's latest version, or of its version ``number``."""
    return export_record(document.source.key, document, version_of(document, number))


def export_record(source_key: str, document: Document, version: Version) -> ExportRecord:
    """One export record: the fields of EXPORT_FIELDS, in that order."""
    return {
        "source": source_key,
        "url": document.url,
        "title": version.title,
        "doc_number": version.doc_number,
        "index_number": version.index_number,
        "issuer": version.issuer,
        "written_date": version.written_date,
        "published_at": version.published_at,
        "disclosure": version.disclosure,
        "doc_type": version.doc_type,
        "body": version.body,
        "body_original": version.body_original,
        "attachments": [
            {"url": a.url, "name": a.name, "sha256": a.sha256, "size": a.size, "text": a.text, "error": a.error}
            for a in version.attachments
        ],
        "version": version.number,
        "versions": document.version_count,
        "first_seen": china_time(document.first_seen),
        "last_changed": china_time(document.last_changed),
        "content_hash": version.content_hash,
        "document_id": document.id,
        "version_seen_at": china_time(version.seen_at),
        "doc_number_prefix": version.doc_number_prefix,
        "doc_number_year": version.doc_number_year,
        "doc_number_serial": version.doc_number_serial,
        "topic": version.topic,
        "keywords": version.keywords,
        "column": version.column,
        "status": document.status,
    }
