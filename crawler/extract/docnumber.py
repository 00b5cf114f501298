"""文号 (document numbers) in the canonical GB/T 9704 form ``机关代字〔年份〕序号号``.

Sites publish the year in 〔〕, [], 【】, ［］, 〖〗, () or （）, sometimes as ``〔2024年〕``,
with stray spaces (``沪交办〔2024〕323 号``), leading zeros or no closing 号; all of these
are one number. Traditional characters are for the caller to simplify first.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

_PATTERN = re.compile(
    r"^(?P<prefix>[^\[\]【】()〔〕〖〗]+?)[\[【(〔〖](?P<year>(?:19|20)\d{2})年?[\]】)〕〗]第?(?P<serial>\d+)号?$"
)


@dataclass(frozen=True)
class DocNumber:
    """A 文号 split into its parts."""

    prefix: str
    year: int
    serial: int

    @property
    def canonical(self) -> str:
        return f"{self.prefix}〔{self.year}〕{self.serial}号"


def _squeeze(text: str) -> str:
    # NFKC folds full-width brackets and digits (［］（）０-９) to ASCII.
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", text))


def parse_doc_number(text: str | None) -> DocNumber | None:
    """Split a 文号 into prefix, year and serial; None when it is not of that form."""
    if not text:
        return None
    match = _PATTERN.match(_squeeze(text))
    if not match:
        return None
    return DocNumber(match["prefix"], int(match["year"]), int(match["serial"]))


def canonical_doc_number(text: str | None) -> str | None:
    """Return the canonical form of a 文号, or the value without spaces when it has another form."""
    if not text or not text.strip():
        return None
    parsed = parse_doc_number(text)
    return parsed.canonical if parsed else _squeeze(text)
