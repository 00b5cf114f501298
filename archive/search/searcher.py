"""Running a parsed query, the same on SQLite (FTS5) and PostgreSQL (tsvector + GIN).

Any term of one or more characters finds exactly the notices whose normalised
text contains it: the index narrows the candidates (one token for a term of one
or two characters; all of a longer term's bigrams), and for longer terms the text
itself is checked.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    ColumnElement,
    Integer,
    and_,
    bindparam,
    case,
    desc,
    func,
    literal,
    not_,
    or_,
    select,
    text,
    true,
)
from sqlalchemy.orm import Session

from ..models import CHINA_TIME, Document, SearchText, Source, Version
from ..records import shorten
from .index import FTS_TABLE
from .query import SORTS, AllOf, AnyOf, Not, Query, QueryError, Term
from .textindex import normalise_for_search, run_tokens, runs

if TYPE_CHECKING:
    from decimal import Decimal

    from sqlalchemy import Select
    from sqlalchemy.sql import roles
    from sqlalchemy.sql._typing import _ColumnExpressionOrStrLabelArgument, _ColumnsClauseArgument
    from typing_extensions import Unpack

    OrderBy = _ColumnExpressionOrStrLabelArgument[Any] | roles.OrderByRole  # what Select.order_by takes


# A snippet is looked for in this much of the body first (then in the indexed text): normalising
# a whole 2 MB body for every hit made one search take seconds.
SNIPPET_SCAN_CHARS = 100_000


@dataclass(frozen=True)
class Hit:
    document_id: int
    version: int
    versions: int
    source: str
    url: str
    title: str | None
    doc_number: str | None
    issuer: str | None
    published_at: str | None
    doc_type: str | None
    snippet: str
    highlights: tuple[tuple[int, int], ...]  # (start, end) of each term in the snippet
    seen_at: str  # when this version was first seen, RFC 3339 in China time

    def snippet_pieces(self) -> list[tuple[str, bool]]:
        """The snippet as (text, is a match) pieces, for markup that escapes each piece."""
        pieces, last = [], 0
        for start, end in self.highlights:
            pieces += [(self.snippet[last:start], False), (self.snippet[start:end], True)]
            last = end
        return [piece for piece in [*pieces, (self.snippet[last:], False)] if piece[0]]


@dataclass(frozen=True)
class SearchResult:
    total: int
    hits: list[Hit]
    facets: dict[str, list[tuple[str, int]]]


class Searcher:
    """Runs parsed queries against one archive's database."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.dialect = session.get_bind().dialect.name
        self._params = 0

    def _token_match(self, tokens: list[str], needle: str) -> ColumnElement[bool]:
        """The versions whose index holds every token (a superset of those containing ``needle``)."""
        self._params += 1
        name = f"match_{self._params}"
        if self.dialect == "sqlite":
            expression = " AND ".join(f'"{token}"' for token in tokens)
            sql = f"SELECT rowid FROM {FTS_TABLE} WHERE {FTS_TABLE} MATCH :{name}"
            subquery = text(sql).bindparams(bindparam(name, expression)).columns(version_id=Integer)
            return SearchText.version_id.in_(subquery)
        # On the joined row itself: one IN subquery per term makes PostgreSQL's planning explode.
        expression = " & ".join(f"'{token}'" for token in tokens)
        indexed = text(f"search_texts.tokens @@ CAST(:{name} AS tsquery)").bindparams(bindparam(name, expression))
        too_large = and_(text("search_texts.tokens IS NULL"), self._contains(needle))
        return or_(indexed, too_large)

    def _contains(self, needle: str) -> ColumnElement[bool]:
        function = func.instr if self.dialect == "sqlite" else func.strpos
        return function(SearchText.text, needle) > 0

    def condition(self, node: object) -> ColumnElement[bool]:
        if isinstance(node, Term):
            term_runs = runs(node.text)
            tokens = list(dict.fromkeys(token for run in term_runs for token in run_tokens(run)))
            clause = self._token_match(tokens, node.text)
            exact = len(term_runs) == 1 and term_runs[0] == node.text and len(node.text) <= 2
            return clause if exact else and_(clause, self._contains(node.text))
        if isinstance(node, Not):
            return not_(self.condition(node.operand))
        if isinstance(node, AllOf):
            return and_(*(self.condition(operand) for operand in node.operands))
        if isinstance(node, AnyOf):
            return or_(*(self.condition(operand) for operand in node.operands))
        return true()

    def where(self, query: Query, all_versions: bool) -> list[ColumnElement[bool]]:
        """The conditions of a query with its filters (and, unless ``all_versions``, latest versions only)."""
        where = [self.condition(query.condition)] if query.condition is not None else []
        if not all_versions:
            where.append(Version.number == Document.version_count)
        filters = query.filters
        if "source" in filters:
            where.append(Source.key.in_(filters["source"].split(",")))
        if "doc_type" in filters:
            where.append(Version.doc_type == normalise_field(filters["doc_type"]))
        if "issuer" in filters:
            where.append(Version.issuer.contains(normalise_field(filters["issuer"]), autoescape=True))
        if "docno" in filters:
            where.append(or_(Version.doc_number_prefix == normalise_field(filters["docno"]),
                             Version.doc_number.startswith(normalise_field(filters["docno"]), autoescape=True)))
        if "year" in filters:
            where.append(Version.published_at.startswith(filters["year"]))
        if "from" in filters:
            where.append(Version.published_at >= filters["from"])
        if "to" in filters:
            where.append(Version.published_at < _after(filters["to"]))
        return where

    def select_versions(self, *columns: _ColumnsClauseArgument[Any]) -> Select[Unpack[tuple[Any, ...]]]:
        """A select over versions joined with their document, source and search text."""
        return (select(*columns).select_from(Version)
                .join(Document, Version.document_id == Document.id).join(Source, Document.source_id == Source.id)
                .join(SearchText, SearchText.version_id == Version.id))

    def search(self, query: Query, all_versions: bool = False, sort: str = "relevance", limit: int = 20,
               offset: int = 0, facets: bool = True) -> SearchResult:
        where = self.where(query, all_versions)
        total = self.session.execute(self.select_versions(func.count()).where(*where)).scalar_one()
        rows = self.session.execute(
            self.select_versions(Version, Document.version_count, Document.url, Source.key, SearchText.text)
            .where(*where).order_by(*self._order(query, sort)).limit(limit).offset(offset)).all()
        terms = query.terms()
        hits = [_hit(version, versions, url, key, normalised, terms)
                for version, versions, url, key, normalised in rows]
        return SearchResult(total, hits, self._facets(where) if facets else {})

    def _order(self, query: Query, sort: str) -> list[OrderBy]:
        if sort not in SORTS:
            raise QueryError(f"sort by one of {', '.join(SORTS)}, not {sort!r}")
        newest: list[OrderBy] = [desc(func.coalesce(Version.published_at, "")), desc(Version.id)]
        if sort == "oldest":
            return [case((Version.published_at.is_(None), 1), else_=0), Version.published_at, Version.id]
        if sort == "date" or not query.terms():
            return newest
        # Relevance: how often the terms occur, per thousand characters of the text.
        length = func.length(SearchText.text) + 1000
        counts: ColumnElement[Any] = literal(0)
        for term in query.terms():
            counts = counts + _occurrences(term)
        return [desc(counts * 1000.0 / length), *newest]

    def _facets(self, where: list[ColumnElement[bool]], top: int = 20) -> dict[str, list[tuple[str, int]]]:
        result = {}
        for name, column in (("source", Source.key), ("year", func.substr(Version.published_at, 1, 4)),
                             ("doc_type", Version.doc_type), ("issuer", Version.issuer)):
            count = func.count().label("n")
            rows = self.session.execute(self.select_versions(column, count).where(*where, column.is_not(None))
                                        .group_by(column).order_by(desc(count), column).limit(top)).all()
            result[name] = [(value, n) for value, n in rows]
        return result


def _occurrences(term: str) -> ColumnElement[float | Decimal]:
    """How many times ``term`` occurs in the text (length arithmetic, the same on both backends)."""
    return ((func.length(SearchText.text) - func.length(func.replace(SearchText.text, term, "")))
            / max(len(term), 1))


def normalise_field(value: str) -> str:
    """Filter values are compared with stored fields, which keep simplified characters."""
    from crawler.extract.normalise import to_simplified

    return to_simplified(value.strip())


def _after(date: str) -> str:
    """The first date after a YYYY, YYYY-MM or YYYY-MM-DD period, as a string bound."""
    return date + "\uffff"


def _hit(version: Version, versions: int, url: str, source: str, normalised: str, terms: list[str],
         width: int = 120) -> Hit:
    body = normalise_for_search((version.body or "")[:SNIPPET_SCAN_CHARS])
    haystack = body if any(term in body for term in terms) else normalised
    first = min((haystack.find(term) for term in terms if term in haystack), default=0)
    start = max(0, first - width // 3)
    snippet = haystack[start:start + width]
    highlights = []
    for term in terms:
        at = snippet.find(term)
        while at >= 0:
            highlights.append((at, at + len(term)))
            at = snippet.find(term, at + len(term))
    return Hit(version.document_id, version.number, versions, source, url, shorten(version.title),
               shorten(version.doc_number), shorten(version.issuer), version.published_at, version.doc_type,
               ("…" if start else "") + snippet + ("…" if start + width < len(haystack) else ""),
               tuple(sorted((a + (1 if start else 0), b + (1 if start else 0)) for a, b in _merge(highlights))),
               version.seen_at.astimezone(CHINA_TIME).isoformat(timespec="seconds"))


def _merge(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for begin, end in sorted(spans):
        if merged and begin <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((begin, end))
    return merged
