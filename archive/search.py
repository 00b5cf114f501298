"""Full-text search over the archive, the same on SQLite (FTS5) and PostgreSQL (tsvector + GIN).

The query language (``zwgk search``, the web pages and alert rules share it):

* ``公路 规划``: both terms (AND is implied; ``AND`` may be written);
* ``公路 OR 港口``, ``NOT 收费`` or ``-收费``, parentheses for grouping;
* ``"公路 规划"``: a phrase, found as written (after normalisation);
* filters: ``source:shanghai``, ``doc_type:通知``, ``issuer:交通``, ``docno:沪交办``
  (文号 prefix), ``year:2024``, ``from:2024-01-01``, ``to:2024-06-30``.

Any term of one or more characters finds exactly the notices whose normalised
text contains it: the index narrows the candidates (one token for a term of one
or two characters; all of a longer term's bigrams), and for longer terms the text
itself is checked.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import (
    ColumnElement,
    Connection,
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

from .models import CHINA_TIME, Attachment, Document, SearchText, Source, Version
from .textindex import (
    index_tokens,
    normalise_for_search,
    run_tokens,
    runs,
    searchable_text,
)

FTS_TABLE = "search_fts"
# Bounds on one query: its length, its terms and how deep its parentheses go.
MAX_QUERY_LENGTH = 500
MAX_TERMS = 24
MAX_DEPTH = 8
# PostgreSQL caps a tsvector at 1 MB: a text with more distinct tokens is found by its text alone.
MAX_PG_TOKENS = 100_000
FILTERS = ("source", "doc_type", "issuer", "docno", "year", "from", "to")
SORTS = ("relevance", "date", "oldest")


class QueryError(ValueError):
    """The query cannot be understood; the message says where."""


# Indexing

def create_index_structures(connection: Connection) -> None:
    """The token index beside ``search_texts``: an FTS5 table on SQLite, a GIN-indexed tsvector on PostgreSQL."""
    if connection.dialect.name == "sqlite":
        connection.execute(text(f"CREATE VIRTUAL TABLE {FTS_TABLE} USING fts5("
                                "tokens, content='', tokenize='unicode61 remove_diacritics 0')"))
    else:
        connection.execute(text("ALTER TABLE search_texts ADD COLUMN tokens tsvector"))
        connection.execute(text("CREATE INDEX ix_search_texts_tokens ON search_texts USING gin (tokens)"))


def index_version(connection: Connection, version_id: int, parts: Sequence[str | None], replace: bool = False) -> None:
    """(Re)index one version's text: its title, 文号, body and attachment texts."""
    normalised = searchable_text(parts)
    tokens = index_tokens(normalised)
    if replace:
        _unindex(connection, version_id)
    connection.execute(SearchText.__table__.insert().values(version_id=version_id, text=normalised))
    if connection.dialect.name == "sqlite":
        connection.execute(text(f"INSERT INTO {FTS_TABLE}(rowid, tokens) VALUES (:id, :tokens)"),
                           {"id": version_id, "tokens": " ".join(tokens)})
    elif len(tokens) <= MAX_PG_TOKENS:  # a larger text keeps NULL tokens and is found by its text
        connection.execute(text("UPDATE search_texts SET tokens = array_to_tsvector(CAST(:tokens AS text[])) "
                                "WHERE version_id = :id"), {"id": version_id, "tokens": tokens})


def _unindex(connection: Connection, version_id: int) -> None:
    old = connection.scalar(select(SearchText.text).where(SearchText.version_id == version_id))
    if old is None:
        return
    if connection.dialect.name == "sqlite":  # a contentless FTS5 row is deleted by giving its tokens again
        connection.execute(text(f"INSERT INTO {FTS_TABLE}({FTS_TABLE}, rowid, tokens) VALUES ('delete', :id, :tokens)"),
                           {"id": version_id, "tokens": " ".join(index_tokens(old))})
    connection.execute(SearchText.__table__.delete().where(SearchText.version_id == version_id))


def version_parts(version: Version, attachment_texts: Sequence[str | None]) -> list[str | None]:
    return [version.title, version.doc_number, version.body, *attachment_texts]


def index_existing_versions(connection: Connection, batch: int = 500) -> None:
    """Index every version already archived (the migration that adds search)."""
    session = Session(connection)
    query = select(Version).order_by(Version.id).execution_options(yield_per=batch)
    for version in session.scalars(query):
        texts = session.scalars(select(Attachment.text).where(Attachment.version_id == version.id)).all()
        index_version(connection, version.id, version_parts(version, texts))


# The query language

@dataclass(frozen=True)
class Term:
    text: str  # normalised


@dataclass(frozen=True)
class Not:
    operand: object


@dataclass(frozen=True)
class AllOf:
    operands: tuple


@dataclass(frozen=True)
class AnyOf:
    operands: tuple


@dataclass
class Query:
    """A parsed query: the text condition (None: every notice) and the filters."""

    condition: object | None
    filters: dict[str, str] = field(default_factory=dict)

    def terms(self) -> list[str]:
        """The positive terms, for snippets and highlighting."""
        found: list[str] = []

        def walk(node: object, negated: bool) -> None:
            if isinstance(node, Term) and not negated:
                found.append(node.text)
            elif isinstance(node, Not):
                walk(node.operand, not negated)
            elif isinstance(node, (AllOf, AnyOf)):
                for operand in node.operands:
                    walk(operand, negated)

        walk(self.condition, False)
        return found


_LEXEME = re.compile(r'\s*(?:(\()|(\))|"([^"]*)"?|(\S+?)(?=[\s()"]|$))')


def parse_query(query: str, **filters: str | None) -> Query:
    """Parse the query language; keyword filters (from CLI options) join those written in the query."""
    tokens: list[tuple[str, str]] = []
    position = 0
    query = query.strip()
    if len(query) > MAX_QUERY_LENGTH:
        raise QueryError(f"the query is longer than {MAX_QUERY_LENGTH} characters")
    while position < len(query):
        match = _LEXEME.match(query, position)
        if not match or match.end() == position:
            break
        position = match.end()
        opening, closing, phrase, word = match.groups()
        if opening or closing:
            tokens.append(("paren", opening or closing))
        elif phrase is not None:
            tokens.append(("phrase", phrase))
        elif word:
            tokens.append(("word", word))
    chosen: dict[str, str] = {}
    remaining = []
    for kind, value in tokens:
        name, sep, rest = value.partition(":")
        if kind == "word" and sep and name.lower() in FILTERS and rest:
            chosen[name.lower()] = rest
        else:
            remaining.append((kind, value))
    for name, value in filters.items():
        if value:
            chosen[name] = value
    _check_filters(chosen)
    if sum(kind != "paren" and value not in ("AND", "OR", "NOT") for kind, value in remaining) > MAX_TERMS:
        raise QueryError(f"the query has more than {MAX_TERMS} terms")
    parser = _Parser(remaining)
    condition = parser.parse()
    return Query(condition, chosen)


def _check_filters(filters: dict[str, str]) -> None:
    if "year" in filters and not re.fullmatch(r"\d{4}", filters["year"]):
        raise QueryError(f"year:{filters['year']} is not a year (e.g. year:2024)")
    for name in ("from", "to"):
        if name in filters and not re.fullmatch(r"\d{4}(-\d{2}(-\d{2})?)?", filters[name]):
            raise QueryError(f"{name}:{filters[name]} is not a date (YYYY, YYYY-MM or YYYY-MM-DD)")


class _Parser:
    """OR binds loosest, then AND (implied between terms), then NOT / -term."""

    def __init__(self, tokens: list[tuple[str, str]]) -> None:
        self.tokens, self.position, self.depth = tokens, 0, 0

    def parse(self) -> object | None:
        if not self.tokens:
            return None
        node = self._or()
        if self.position < len(self.tokens):
            raise QueryError(f"unexpected {self.tokens[self.position][1]!r} in the query")
        if _only_negative(node):
            raise QueryError("a query needs at least one term to look for, besides NOT terms")
        return node

    def _peek(self) -> tuple[str, str] | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def _or(self) -> object:
        operands = [self._and()]
        while (token := self._peek()) and token == ("word", "OR"):
            self.position += 1
            operands.append(self._and())
        return operands[0] if len(operands) == 1 else AnyOf(tuple(operands))

    def _and(self) -> object:
        operands = [self._unary()]
        while (token := self._peek()) and token != ("word", "OR") and token != ("paren", ")"):
            if token == ("word", "AND"):
                self.position += 1
            operands.append(self._unary())
        return operands[0] if len(operands) == 1 else AllOf(tuple(operands))

    def _unary(self) -> object:
        token = self._peek()
        if token is None:
            raise QueryError("the query ends where a term was expected")
        self.position += 1
        kind, value = token
        if token == ("word", "NOT"):
            self.depth += 1
            if self.depth > MAX_DEPTH:
                raise QueryError(f"NOT nests deeper than {MAX_DEPTH}")
            node = Not(self._unary())
            self.depth -= 1
            return node
        if kind == "paren":
            if value == ")":
                raise QueryError("a ')' without its '('")
            self.depth += 1
            if self.depth > MAX_DEPTH:
                raise QueryError(f"parentheses nest deeper than {MAX_DEPTH}")
            node = self._or()
            self.depth -= 1
            if self._peek() != ("paren", ")"):
                raise QueryError("a '(' without its ')'")
            self.position += 1
            return node
        if kind == "word" and value.startswith("-") and len(value) > 1:
            return Not(_term(value[1:]))
        return _term(value)


def _term(raw: str) -> Term:
    normalised = normalise_for_search(raw)
    if not runs(normalised):
        raise QueryError(f"{raw!r} holds no letters or digits to look for")
    return Term(normalised)


def _only_negative(node: object) -> bool:
    if isinstance(node, Not):
        return True
    if isinstance(node, AllOf):
        return all(_only_negative(operand) for operand in node.operands)
    if isinstance(node, AnyOf):
        return any(_only_negative(operand) for operand in node.operands)
    return False


# Running a query

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
        return [piece for piece in pieces + [(self.snippet[last:], False)] if piece[0]]


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

    def select_versions(self, *columns):
        """A select over versions joined with their document, source and search text."""
        return (select(*columns).select_from(Version)
                .join(Document, Version.document_id == Document.id).join(Source, Document.source_id == Source.id)
                .join(SearchText, SearchText.version_id == Version.id))

    def search(self, query: Query, all_versions: bool = False, sort: str = "relevance", limit: int = 20,
               offset: int = 0, facets: bool = True) -> SearchResult:
        where = self.where(query, all_versions)
        total = self.session.scalar(self.select_versions(func.count()).where(*where))
        rows = self.session.execute(
            self.select_versions(Version, Document.version_count, Document.url, Source.key, SearchText.text)
            .where(*where).order_by(*self._order(query, sort)).limit(limit).offset(offset)).all()
        terms = query.terms()
        hits = [_hit(version, versions, url, key, normalised, terms) for version, versions, url, key, normalised in rows]
        return SearchResult(total, hits, self._facets(where) if facets else {})

    def _order(self, query: Query, sort: str) -> list:
        if sort not in SORTS:
            raise QueryError(f"sort by one of {', '.join(SORTS)}, not {sort!r}")
        newest = [desc(func.coalesce(Version.published_at, "")), desc(Version.id)]
        if sort == "oldest":
            return [case((Version.published_at.is_(None), 1), else_=0), Version.published_at, Version.id]
        if sort == "date" or not query.terms():
            return newest
        # Relevance: how often the terms occur, per thousand characters of the text.
        length = func.length(SearchText.text) + 1000
        counts = literal(0)
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


def _occurrences(term: str) -> ColumnElement:
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
    body = normalise_for_search(version.body or "")
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
    return Hit(version.document_id, version.number, versions, source, url, version.title, version.doc_number,
               version.issuer, version.published_at, version.doc_type,
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
