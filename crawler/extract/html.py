"""HTML to text that keeps the layout a reader sees: paragraphs as lines, table rows as cells."""

from __future__ import annotations

import re
from typing import cast

from lxml import etree, html

_SKIP = {"script", "style", "noscript", "template", "iframe", "object", "embed", "select", "button", "svg"}
_BLOCK = {
    "address", "article", "aside", "blockquote", "center", "dd", "details", "dialog", "div", "dl", "dt",
    "fieldset", "figcaption", "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6", "header",
    "hr", "li", "main", "nav", "ol", "p", "pre", "section", "summary", "table", "ul", "caption",
}
_CELL = {"td", "th"}
_ENCODING_DECLARATION = re.compile(r"^\s*<\?xml[^>]*\?>", re.I)


def parse_html(text: str) -> html.HtmlElement:
    """Parse a whole page leniently into one <html> root.

    lxml's HTML parser never raises on bad markup, but a page with stray text
    before its doctype, or a second <html>, parses into sibling roots; their
    content is moved under the first root so that every search sees it.
    """
    text = _ENCODING_DECLARATION.sub("", text)
    try:
        root = cast(html.HtmlElement, html.document_fromstring(text))  # lxml-stubs say _Element
    except etree.ParserError:  # nothing but whitespace, a doctype or comments
        root = cast(html.HtmlElement, html.document_fromstring("<html><body></body></html>"))
    for sibling in list(root.itersiblings()):
        if isinstance(sibling.tag, str):
            target = root.body if root.body is not None else root
            for child in list(sibling.iterdescendants("body")) or [sibling]:
                target.extend(list(child))
    return root


def inline_text(element: etree._Element) -> str:
    """The visible text of ``element`` on one line."""
    parts: list[str] = []
    _collect(element, parts, cell_separator=" ", inline=True)
    return " ".join("".join(parts).split())


def element_text(element: etree._Element, cell_separator: str = " | ") -> str:
    """The visible text of ``element``: blocks on their own lines, table cells joined by ``cell_separator``."""
    parts: list[str] = []
    _collect(element, parts, cell_separator=cell_separator, inline=False)
    return "".join(parts)


def _collect(element: etree._Element, parts: list[str], cell_separator: str, inline: bool) -> None:
    tag = element.tag if isinstance(element.tag, str) else None
    if tag is None or tag.lower() in _SKIP:
        return
    tag = tag.lower()
    if tag == "br":
        parts.append(" " if inline else "\n")
        return
    if tag == "table" and not inline:
        parts.append("\n" + _table_text(element, cell_separator) + "\n")
        return
    block = tag in _BLOCK and not inline
    if block:
        parts.append("\n")
    if element.text:
        parts.append(element.text)
    for child in element:
        _collect(child, parts, cell_separator, inline)
        if child.tail:
            parts.append(child.tail)
    if block:
        parts.append("\n")
    elif inline and tag in _BLOCK | _CELL:
        parts.append(" ")


def _table_text(table: etree._Element, cell_separator: str) -> str:
    rows: list[str] = []
    for row in table.iter("tr"):
        if _nearest_table(row) is not table:
            continue
        cells = [cell for cell in row if isinstance(cell.tag, str) and cell.tag.lower() in _CELL]
        if any(_has_blocks(cell) for cell in cells):
            # A layout table: its cells hold paragraphs, so each is text in its own right.
            rows.extend(element_text(cell, cell_separator).strip() for cell in cells)
            continue
        texts = [inline_text(cell) for cell in cells]
        if any(texts):
            rows.append(cell_separator.join(texts))
    return "\n".join(rows)


def _has_blocks(cell: etree._Element) -> bool:
    """A layout cell holds a table or several paragraphs; a data cell at most one (Word wraps each in <p>)."""
    blocks = 0
    for node in cell.iterdescendants():
        if not isinstance(node.tag, str):
            continue
        tag = node.tag.lower()
        if tag == "table":
            return True
        if tag in _BLOCK and (node.text or "").strip():
            blocks += 1
    return blocks >= 2


def _nearest_table(element: etree._Element) -> etree._Element | None:
    parent = element.getparent()
    while parent is not None and parent.tag != "table":
        parent = parent.getparent()
    return parent


def drop(element: etree._Element) -> None:
    """Remove ``element`` from its tree, keeping the text that follows it."""
    parent = element.getparent()
    if parent is None:
        return
    if element.tail:
        previous = element.getprevious()
        if previous is not None:
            previous.tail = (previous.tail or "") + element.tail
        else:
            parent.text = (parent.text or "") + element.tail
    parent.remove(element)
