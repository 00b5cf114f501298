"""Atom feeds (RFC 4287) of search results: newest notices first, every value escaped by the XML writer."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from xml.etree import ElementTree

from ..models import CHINA_TIME
from ..search import Hit

ATOM = "http://www.w3.org/2005/Atom"
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def atom_feed(title: str, feed_url: str, site_url: str, hits: Sequence[Hit]) -> bytes:
    """A feed whose entries are ``hits`` (sorted newest first by the caller); links go to the archive's pages."""
    ElementTree.register_namespace("", ATOM)
    feed = ElementTree.Element(f"{{{ATOM}}}feed")
    _add(feed, "title", title)
    _add(feed, "id", feed_url)
    _add(feed, "updated", max((hit.seen_at for hit in hits), default=_now()))
    _add(feed, "link", href=feed_url, rel="self", type="application/atom+xml")
    _add(feed, "link", href=site_url, rel="alternate", type="text/html")
    author = _add(feed, "author")
    _add(author, "name", "zwgk")
    for hit in hits:
        entry = _add(feed, "entry")
        archive_url = f"{site_url.rstrip('/')}/notices/{hit.document_id}?version={hit.version}"
        _add(entry, "title", hit.title or hit.url)
        _add(entry, "id", archive_url)
        _add(entry, "updated", hit.seen_at)
        if hit.published_at:
            _add(entry, "published", _rfc3339(hit.published_at))
        _add(entry, "link", href=archive_url, rel="alternate", type="text/html")
        _add(entry, "link", href=hit.url, rel="related", type="text/html", title="source")
        if hit.issuer:
            _add(_add(entry, "author"), "name", hit.issuer)
        summary = " · ".join(part for part in (hit.source, hit.doc_number, hit.published_at) if part)
        _add(entry, "summary", f"{summary}\n{hit.snippet}")
    document: bytes = ElementTree.tostring(feed, encoding="utf-8", xml_declaration=True)  # bytes for an encoding
    return document


def _add(parent: ElementTree.Element, name: str, text: str | None = None, **attributes: str) -> ElementTree.Element:
    element = ElementTree.SubElement(parent, f"{{{ATOM}}}{name}", {k: _xml_text(v) for k, v in attributes.items()})
    if text is not None:
        element.text = _xml_text(text)
    return element


def _xml_text(text: str) -> str:
    """XML 1.0 has no place for control characters (a Word file's \x07, a page's stray \x01)."""
    return _CONTROL.sub("", text)


def _rfc3339(published_at: str) -> str:
    """"2024-05-16" or "2024-05-16T10:30[:00]" (China time) as an RFC 3339 timestamp."""
    value = dt.datetime.fromisoformat(published_at if "T" in published_at else published_at + "T00:00:00")
    return value.replace(tzinfo=CHINA_TIME).isoformat(timespec="seconds")


def _now() -> str:
    return dt.datetime.now(CHINA_TIME).isoformat(timespec="seconds")
