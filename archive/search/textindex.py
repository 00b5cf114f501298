"""How text is indexed for search: normalised, then cut into single characters and bigrams.

Chinese has no spaces, so word tokenizers miss substrings and SQLite's trigram
tokenizer cannot match 2-character words. As Lucene's CJK analyzer does, every
run of letters and digits is indexed as its single characters and its adjacent
pairs (bigrams): a 1- or 2-character term is then one token, found exactly, and
a longer term is a set of bigrams that every notice containing it must hold
(the search then checks the text itself). Text and queries are normalised the
same way (NFKC, traditional to simplified character by character, case folded, spaces
collapsed), so 繁體 and 简体 find each other.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

from crawler.extract.normalise import strip_control_characters, to_simplified_by_character

# A run: letters and digits of any script, without the underscore; anything else separates runs.
_RUN = re.compile(r"[^\W_]+")
_SPACES = re.compile(r"\s+")
# Search indexes at most this many characters of a version's text (title, 文号, body,
# attachment texts, in that order), and of its title or 文号 alone: a 1 MB title or a
# 100 MB attachment text is stored whole but cannot make indexing or a query unbounded.
MAX_INDEXED_CHARS = 1_000_000
MAX_INDEXED_FIELD_CHARS = 1_000


def normalise_for_search(text: str) -> str:
    """The form both indexed text and queries take (no NUL or control characters: PostgreSQL refuses NUL)."""
    folded = to_simplified_by_character(unicodedata.normalize("NFKC", strip_control_characters(text))).casefold()
    return _SPACES.sub(" ", folded).strip()


def runs(normalised: str) -> list[str]:
    return _RUN.findall(normalised)


def run_tokens(run: str) -> list[str]:
    """The tokens a run is indexed under: a single character, or every bigram of it."""
    return [run] if len(run) == 1 else [run[i:i + 2] for i in range(len(run) - 1)]


def index_tokens(normalised: str) -> list[str]:
    """Every distinct single character and bigram of the text, in order of first appearance."""
    tokens: dict[str, None] = {}
    for run in runs(normalised):
        tokens.update(dict.fromkeys(run))
        tokens.update(dict.fromkeys(run[i:i + 2] for i in range(len(run) - 1)))
    return list(tokens)


def searchable_text(parts: Iterable[str | None]) -> str:
    """The normalised text of a version that search looks in, within :data:`MAX_INDEXED_CHARS`."""
    return normalise_for_search("\n".join(part for part in parts if part)[:MAX_INDEXED_CHARS])
