"""A notice's history: each version, what changed from the one before, and the notice's events."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypedDict

from ..models import Document, Event
from ..records import china_time, export_record
from .diff import diff_records


class VersionChange(TypedDict):
    version: int
    seen_at: str | None
    title: str | None
    content_hash: str
    changed_fields: list[str]
    lines_added: int | None  # None for the first version
    lines_removed: int | None


class EventTime(TypedDict):
    kind: str
    at: str | None


class NoticeHistory(TypedDict):
    document_id: int
    url: str
    status: str
    versions: list[VersionChange]
    events: list[EventTime]


def notice_history(document: Document, events: Sequence[Event]) -> NoticeHistory:
    """The versions of ``document`` (loaded) oldest first, each with the fields it changed and how many
    lines of text it added and removed (None for the first), and ``events`` (its events) with their time."""
    records = [export_record(document.source.key, document, version) for version in document.versions]
    versions: list[VersionChange] = []
    for previous, record in zip([None, *records], records, strict=False):
        change = diff_records(previous, record) if previous else None
        versions.append({"version": record["version"], "seen_at": record["version_seen_at"], "title": record["title"],
                         "content_hash": record["content_hash"],
                         "changed_fields": [name for name, _, _ in change.fields] if change else [],
                         "lines_added": len(change.added) if change else None,
                         "lines_removed": len(change.removed) if change else None})
    return {"document_id": document.id, "url": document.url, "status": document.status, "versions": versions,
            "events": [{"kind": event.kind, "at": china_time(event.at)} for event in events]}
