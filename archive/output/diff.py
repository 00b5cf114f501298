"""What changed between two versions of a notice: its fields, and its text line by line.

Chinese has no spaces between words, so a changed line is compared character by
character (the "word" level of a Chinese text) to show exactly what was edited.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from ..models import Document
from ..records import ExportRecord, document_record

# The fields a reader compares, in the order shown; body and attachments are diffed as text.
COMPARED_FIELDS = ("title", "doc_number", "index_number", "issuer", "written_date", "published_at", "disclosure",
                   "doc_type", "topic", "keywords")


@dataclass(frozen=True)
class Line:
    """A line of the text diff: ``op`` is " " (kept), "-" (removed) or "+" (added).

    ``parts`` splits a changed line into (op, text) pieces: "=" kept, "-"/"+" the
    characters removed from or added to the line it replaces.
    """

    op: str
    text: str
    parts: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class VersionDiff:
    old_number: int
    new_number: int
    fields: list[tuple[str, object, object]]  # (name, old value, new value) of each changed field
    lines: list[Line]

    @property
    def added(self) -> list[str]:
        return [line.text for line in self.lines if line.op == "+"]

    @property
    def removed(self) -> list[str]:
        return [line.text for line in self.lines if line.op == "-"]

    @property
    def unchanged(self) -> bool:
        return not self.fields and not self.added and not self.removed


def diff_versions(document: Document, old: int | None = None, new: int | None = None,
                  context: int = 2) -> VersionDiff:
    """Diff two versions of a document (its versions loaded): by default its last two."""
    old = max(document.version_count - 1, 1) if old is None else old
    new = document.version_count if new is None else new
    return diff_records(document_record(document, old), document_record(document, new), context)


def diff_records(old: ExportRecord, new: ExportRecord, context: int = 2) -> VersionDiff:
    """Diff two export records (archive.records) of one notice."""
    fields = [(name, old.get(name), new.get(name)) for name in COMPARED_FIELDS if old.get(name) != new.get(name)]
    return VersionDiff(int(old["version"]), int(new["version"]), fields,
                       diff_lines(_text(old), _text(new), context))


def _text(record: ExportRecord) -> str:
    """The body, then each attachment's text under its name: what a reader of the notice reads."""
    pieces = [str(record.get("body") or "")]
    for attachment in record.get("attachments") or ():
        pieces.append(f"── 附件: {attachment.get('name')}\n{attachment.get('text') or ''}")
    return "\n".join(pieces)


def diff_lines(old: str, new: str, context: int = 2) -> list[Line]:
    """A line diff with ``context`` unchanged lines around each change ("…" lines mark what is left out)."""
    a, b = old.splitlines(), new.splitlines()
    lines: list[Line] = []
    for group in difflib.SequenceMatcher(None, a, b, autojunk=False).get_grouped_opcodes(context):
        if lines:
            lines.append(Line(" ", "…"))
        for tag, i1, i2, j1, j2 in group:
            if tag == "equal":
                lines += [Line(" ", line) for line in a[i1:i2]]
                continue
            removed, added = a[i1:i2], b[j1:j2]
            if tag == "replace" and len(removed) == len(added):
                for before, after in zip(removed, added, strict=True):
                    old_parts, new_parts = _inline(before, after)
                    lines += [Line("-", before, old_parts), Line("+", after, new_parts)]
            else:
                lines += [Line("-", line) for line in removed] + [Line("+", line) for line in added]
    return lines


def _inline(before: str, after: str) -> tuple[tuple[tuple[str, str], ...], tuple[tuple[str, str], ...]]:
    old_parts: list[tuple[str, str]] = []
    new_parts: list[tuple[str, str]] = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, before, after, autojunk=False).get_opcodes():
        if tag == "equal":
            old_parts.append(("=", before[i1:i2]))
            new_parts.append(("=", after[j1:j2]))
        else:
            if i2 > i1:
                old_parts.append(("-", before[i1:i2]))
            if j2 > j1:
                new_parts.append(("+", after[j1:j2]))
    return tuple(old_parts), tuple(new_parts)
