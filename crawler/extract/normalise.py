"""Normalisation: simplified characters, no pinyin artefacts, no control characters, tidy whitespace, stable hashes."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from functools import lru_cache

import opencc

_CJK = r"\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_TONED = "āáǎàēéěèīíǐìōóǒòūúǔùǖǘǚǜüê"
# One pinyin syllable in brackets right after a Chinese character: 機關(guān), 辦(ban).
_PINYIN_ARTEFACT = re.compile(
    rf"(?<=[{_CJK}])[(（]\s*(?:[bpmfdtnlgkhjqxrzcsyw]|zh|ch|sh)?[aeiouv{_TONED}]{{1,4}}(?:ng|n|r)?\s*[)）]"
)
# C0 controls but tab, newline and carriage return; DEL and C1 controls (ESC and CSI start
# terminal escape sequences); lone surrogates. PostgreSQL refuses NUL and surrogates in
# text, and no notice means any of them, so they never reach the archive.
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")
_SPACES = re.compile(r"[ \t\u00a0\u3000\u2002\u2003\u2009\u200b\ufeff]+")
# A space between a number and a Chinese character is a layout artefact ("2007　年末").
_SPACE_AT_NUMBER = re.compile(rf"(?<=\d)\s+(?=[{_CJK}])|(?<=[{_CJK}])\s+(?=\d)")


@lru_cache(maxsize=1)
def _t2s() -> opencc.OpenCC:
    return opencc.OpenCC("t2s")


def to_simplified(text: str) -> str:
    """Convert traditional characters to simplified (OpenCC ``t2s``)."""
    return _t2s().convert(text) if text else text


@lru_cache(maxsize=65536)
def _simplified_char(char: str) -> str:
    return str(_t2s().convert(char))


def to_simplified_by_character(text: str) -> str:
    """Convert character by character, ignoring OpenCC's phrase rules.

    Phrase rules make a character's form depend on its neighbours (乾隆 stays, 乾 alone
    becomes 干); search needs one form per character, so that any substring of a text
    normalises to the same characters as the text around it.
    """
    return "".join(map(_simplified_char, text))


def strip_pinyin_artefacts(text: str) -> str:
    """Remove the ``字(pinyin)`` glosses that content farms inject (``機關(guān)`` -> ``機關``)."""
    return _PINYIN_ARTEFACT.sub("", text)


def strip_control_characters(text: str) -> str:
    """Remove NUL, the other control characters but tab and line ends, and lone surrogates."""
    return _CONTROL.sub("", text)


def tidy_lines(text: str) -> str:
    """Trim every line, fold runs of spaces, keep at most one blank line in a row, drop control characters."""
    text = strip_control_characters(text).replace("\r\n", "\n").replace("\r", "\n")
    lines = [_SPACES.sub(" ", line).strip() for line in text.split("\n")]
    tidy: list[str] = []
    for line in lines:
        if line or (tidy and tidy[-1]):
            tidy.append(line)
    return "\n".join(tidy).strip()


def tidy_inline(text: str | None) -> str | None:
    """Collapse a one-line value (an issuer, a title) to single spaces, without control characters; None when empty."""
    if text is None:
        return None
    return " ".join(strip_control_characters(text).split()) or None


def tidy_title(text: str | None) -> str | None:
    """A title on one line, without the spaces that layout puts between numbers and words."""
    value = tidy_inline(text)
    return _SPACE_AT_NUMBER.sub("", value) if value else None


def normalise_text(text: str) -> str:
    """The searchable, comparable form of published text: simplified, no artefacts, tidy."""
    return tidy_lines(to_simplified(strip_pinyin_artefacts(text)))


def content_hash(fields: Mapping[str, object]) -> str:
    """A deterministic sha256 over sorted-key JSON of ``fields``."""
    payload = json.dumps(fields, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()
