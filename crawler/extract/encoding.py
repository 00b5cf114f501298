"""Decode HTML bytes without trusting a missing or lying charset.

Chinese government sites often declare no charset (Hunan sites serve GBK bare),
declare the wrong one, or are served with a header that disagrees with the page.
The order here is: byte-order mark, UTF-8 (strict, or damaged by a few stray bytes:
see :func:`utf8_damage`), a declared charset that decodes the bytes strictly, else
gb18030 (a superset of GB2312 and GBK).
"""

from __future__ import annotations

import codecs
import re

_BOMS = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_\-]+)""", re.I)
_HEADER_CHARSET = re.compile(r"""charset\s*=\s*["']?([A-Za-z0-9_\-]+)""", re.I)
# Declarations that say nothing useful about a Chinese page: any bytes decode
# "strictly" as Latin-1, so trusting them would turn GBK into mojibake.
_UNINFORMATIVE = {"latin_1", "ascii", "cp1252", "iso8859-1"}
_GB_FAMILY = {"gb2312", "gbk", "gb18030", "hz"}
# A UTF-8 page with a few stray bytes (a bad copy and paste, a cut character) is still
# UTF-8: at most one invalid sequence per this many bytes of the page...
UTF8_BYTES_PER_INVALID = 1000
# ...and at least this many valid multi-byte characters for each invalid sequence.
# GBK text read as UTF-8 is almost all invalid sequences, so it never passes both.
UTF8_VALID_PER_INVALID = 20


def _codec_name(label: str | None) -> str | None:
    if not label:
        return None
    try:
        name = codecs.lookup(label).name
    except LookupError:
        return None
    if name in _GB_FAMILY:
        return "gb18030"
    return name


def utf8_damage(data: bytes) -> int | None:
    """How many invalid sequences ``data`` holds if it is UTF-8 but for them; None if it is not UTF-8.

    It is UTF-8 when invalid sequences number at most one per :data:`UTF8_BYTES_PER_INVALID`
    bytes (at least one allowed) and valid multi-byte characters outnumber them
    :data:`UTF8_VALID_PER_INVALID` to one. A body cut by a size limit inside its last
    character is not damaged.
    """
    limit = max(1, len(data) // UTF8_BYTES_PER_INVALID)
    view = memoryview(data)
    position = invalid = multibyte = 0
    while position < len(data):
        try:
            text, _ = codecs.utf_8_decode(view[position:], "strict", True)
            end = len(data)
        except UnicodeDecodeError as error:
            text, _ = codecs.utf_8_decode(view[position:position + error.start], "strict", True)
            cut = error.reason == "unexpected end of data" and position + error.start >= len(data) - 3
            end = len(data) if cut else position + error.end
            invalid += 0 if cut else 1
        multibyte += len(text) - len(text.encode("ascii", "ignore"))
        if invalid > limit:
            return None
        position = end
    if invalid and multibyte < UTF8_VALID_PER_INVALID * invalid:
        return None
    return invalid


def declared_charsets(data: bytes, content_type: str | None = None) -> list[str]:
    """Return the charsets a response declares: HTTP header first, then <meta>."""
    found = []
    if content_type and (header := _HEADER_CHARSET.search(content_type)):
        found.append(header.group(1))
    if meta := _META_CHARSET.search(data[:4096]):
        found.append(meta.group(1).decode("ascii"))
    return found


def detect_encoding(data: bytes, content_type: str | None = None) -> str:
    """Return the codec name that decodes ``data`` as its author meant."""
    for bom, name in _BOMS:
        if data.startswith(bom):
            return name
    if utf8_damage(data) is not None:
        return "utf-8"
    for label in declared_charsets(data, content_type):
        codec = _codec_name(label)
        if codec is None or codec == "utf-8" or codec in _UNINFORMATIVE:
            continue
        try:
            data.decode(codec)
        except UnicodeDecodeError:
            continue
        return codec
    return "gb18030"


def decode_html(data: bytes, content_type: str | None = None) -> str:
    """Decode ``data`` to text with :func:`detect_encoding`, replacing what cannot be read."""
    return decode_counted(data, content_type)[0]


def decode_counted(data: bytes, content_type: str | None = None) -> tuple[str, int]:
    """:func:`decode_html`, with how many invalid sequences became U+FFFD (0 for a clean page)."""
    codec = detect_encoding(data, content_type)
    damage = utf8_damage(data) if codec == "utf-8" else 0
    return data.decode(codec, errors="replace"), damage or 0
