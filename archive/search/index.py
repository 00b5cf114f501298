"""The search index beside each version: its normalised text, and the tokens that narrow a search.

SQLite keeps the tokens in an FTS5 table, PostgreSQL in a GIN-indexed tsvector column.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, select, text
from sqlalchemy.orm import Session

from ..models import Attachment, SearchText, Version
from .textindex import MAX_INDEXED_FIELD_CHARS, index_tokens, searchable_text

FTS_TABLE = "search_fts"
# PostgreSQL caps a tsvector at 1 MB: a text with more distinct tokens is found by its text alone.
MAX_PG_TOKENS = 100_000


def create_index_structures(connection: Connection) -> None:
    """The token index beside ``search_texts``: an FTS5 table on SQLite, a GIN-indexed tsvector on PostgreSQL."""
    if connection.dialect.name == "sqlite":
        connection.execute(text(f"CREATE VIRTUAL TABLE {FTS_TABLE} USING fts5("
                                "tokens, content='', tokenize='unicode61 remove_diacritics 0')"))
    else:
        connection.execute(text("ALTER TABLE search_texts ADD COLUMN tokens tsvector"))
        connection.execute(text("CREATE INDEX ix_search_texts_tokens ON search_texts USING gin (tokens)"))


@dataclass(frozen=True)
class IndexEntry:
    """A version's index text and tokens, prepared before the transaction that writes them."""

    text: str
    tokens: list[str]


def prepare_index(parts: Sequence[str | None]) -> IndexEntry:
    """The CPU work of indexing (normalising, tokenising): done outside any lock."""
    normalised = searchable_text(parts)
    return IndexEntry(normalised, index_tokens(normalised))


def index_version(connection: Connection, version_id: int, parts: Sequence[str | None] | IndexEntry,
                  replace: bool = False) -> None:
    """(Re)index one version's text: its title, 文号, body and attachment texts (or their prepared entry)."""
    entry = parts if isinstance(parts, IndexEntry) else prepare_index(parts)
    if replace:
        _unindex(connection, version_id)
    connection.execute(SearchText.__table__.insert().values(version_id=version_id, text=entry.text))
    if connection.dialect.name == "sqlite":
        connection.execute(text(f"INSERT INTO {FTS_TABLE}(rowid, tokens) VALUES (:id, :tokens)"),
                           {"id": version_id, "tokens": " ".join(entry.tokens)})
    elif len(entry.tokens) <= MAX_PG_TOKENS:  # a larger text keeps NULL tokens and is found by its text
        connection.execute(text("UPDATE search_texts SET tokens = array_to_tsvector(CAST(:tokens AS text[])) "
                                "WHERE version_id = :id"), {"id": version_id, "tokens": entry.tokens})


def _unindex(connection: Connection, version_id: int) -> None:
    old = connection.scalar(select(SearchText.text).where(SearchText.version_id == version_id))
    if old is None:
        return
    if connection.dialect.name == "sqlite":  # a contentless FTS5 row is deleted by giving its tokens again
        connection.execute(text(f"INSERT INTO {FTS_TABLE}({FTS_TABLE}, rowid, tokens) VALUES ('delete', :id, :tokens)"),
                           {"id": version_id, "tokens": " ".join(index_tokens(old))})
    connection.execute(SearchText.__table__.delete().where(SearchText.version_id == version_id))


def version_parts(version: Version, attachment_texts: Sequence[str | None]) -> list[str | None]:
    return searched_parts(version.title, version.doc_number, version.body, attachment_texts)


def searched_parts(title: str | None, doc_number: str | None, body: str | None,
                   attachment_texts: Sequence[str | None]) -> list[str | None]:
    """What a version is searched by: its title and 文号 (each bounded), its body, its attachments' texts."""
    return [(title or "")[:MAX_INDEXED_FIELD_CHARS], (doc_number or "")[:MAX_INDEXED_FIELD_CHARS],
            body, *attachment_texts]


def index_existing_versions(connection: Connection, batch: int = 500) -> None:
    """Index every version already archived (the migration that adds search)."""
    session = Session(connection)
    query = select(Version).order_by(Version.id).execution_options(yield_per=batch)
    for version in session.scalars(query):
        texts = session.scalars(select(Attachment.text).where(Attachment.version_id == version.id)).all()
        index_version(connection, version.id, version_parts(version, texts))
