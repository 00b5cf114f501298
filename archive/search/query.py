"""The query language that `zwgk search`, the web pages and alert rules share.

* ``公路 规划``: both terms (AND is implied; ``AND`` may be written);
* ``公路 OR 港口``, ``NOT 收费`` or ``-收费``, parentheses for grouping;
* ``"公路 规划"``: a phrase, found as written (after normalisation);
* filters: ``source:shanghai``, ``doc_type:通知``, ``issuer:交通``, ``docno:沪交办``
  (文号 prefix), ``year:2024``, ``from:2024-01-01``, ``to:2024-06-30``.

NUL and the other control characters (and lone surrogates) are removed from queries and
filters before anything else, so that SQLite and PostgreSQL (which refuses NUL) answer alike.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from crawler.extract.normalise import strip_control_characters

from .textindex import normalise_for_search, runs

# Bounds on one query: its length, its terms and how deep its parentheses go.
MAX_QUERY_LENGTH = 500
MAX_TERMS = 24
MAX_DEPTH = 8
FILTERS = ("source", "doc_type", "issuer", "docno", "year", "from", "to")
SORTS = ("relevance", "date", "oldest")


class QueryError(ValueError):
    """The query cannot be understood; the message says where."""


@dataclass(frozen=True)
class Term:
    text: str  # normalised


@dataclass(frozen=True)
class Not:
    operand: object


@dataclass(frozen=True)
class AllOf:
    operands: tuple[object, ...]


@dataclass(frozen=True)
class AnyOf:
    operands: tuple[object, ...]


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
    query = strip_control_characters(query).strip()
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
    for name, given in filters.items():
        if cleaned := strip_control_characters(given or "").strip():
            chosen[name] = cleaned
    _check_filters(chosen)
    if sum(kind != "paren" and value not in ("AND", "OR", "NOT") for kind, value in remaining) > MAX_TERMS:
        raise QueryError(f"the query has more than {MAX_TERMS} terms")
    parser = _Parser(remaining)
    condition = parser.parse()
    return Query(condition, chosen)


def _check_filters(filters: dict[str, str]) -> None:
    for name, value in filters.items():
        if len(value) > MAX_QUERY_LENGTH:
            raise QueryError(f"the {name} filter is longer than {MAX_QUERY_LENGTH} characters")
    if "year" in filters and not re.fullmatch(r"\d{4}", filters["year"]):
        raise QueryError(f"year:{filters['year']!r} is not a year (e.g. year:2024)")
    for name in ("from", "to"):
        if name in filters and not re.fullmatch(r"\d{4}(-\d{2}(-\d{2})?)?", filters[name]):
            raise QueryError(f"{name}:{filters[name]!r} is not a date (YYYY, YYYY-MM or YYYY-MM-DD)")


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
            node: object = Not(self._unary())
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
