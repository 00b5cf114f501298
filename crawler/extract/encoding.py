"""Decode HTML bytes without trusting a missing or lying charset.

Chinese government sites often declare no charset (Hunan sites serve GBK bare),
declare the wrong one, or are served with a header that disagrees with the page.
The order here is: byte-order mark, strict UTF-8, a declared charset that decodes
the bytes strictly, else gb18030 (a superset of GB2312 and GBK).
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


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as error:
        # A body cut by a size limit may end inside a multi-byte character.
        return error.reason == "unexpected end of data" and error.start >= len(data) - 3
    return True


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
    if _is_utf8(data):
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
    return data.decode(detect_encoding(data, content_type), errors="replace")
