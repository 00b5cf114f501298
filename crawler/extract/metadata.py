"""Metadata: the national <meta> convention, then labelled fields in tables and text.

Government pages carry their 政府信息公开 metadata as ``LABEL：value`` pairs: in
table cells (``<td>索引号：</td><td>…</td>``), several on one line
(``索取号:… 发布机构:…``), or with full-width spaces inside the label
(``索 引 号：``, ``标　　题：``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from lxml import html

_SPACE = r"[\s\u3000\u00a0]*"

# label -> field; None marks labels that only end the value before them.
LABELS: dict[str, str | None] = {
    "索引号": "index_number", "索取号": "index_number",
    "发文字号": "doc_number", "文号": "doc_number", "文件编号": "doc_number",
    "发布机构": "issuer", "发文机关": "issuer", "发文单位": "issuer", "发布单位": "issuer",
    "成文日期": "written_date", "发文日期": "written_date", "印发日期": "written_date",
    "发布日期": "published_at", "发布时间": "published_at", "发表时间": "published_at",
    "公开日期": "published_at", "信息提供日期": "published_at",
    "公开方式": "disclosure", "公开类别": "disclosure", "公开属性": "disclosure",
    "主题分类": "topic", "信息分类": "topic", "分类": "topic",
    "标题": "title", "信息名称": "title", "名称": "title",
    "主题词": "keywords", "关键词": "keywords",
    "信息来源": "source", "来源": "source", "时间": "time", "日期": "time",
    "作者": None, "点击数": None, "浏览次数": None, "阅读次数": None, "责任编辑": None,
    "生成日期": None, "内容概述": None, "载体类型": None, "记录形式": None, "附注": None,
    "废止日期": None, "有效性": None, "公开范围": None, "信息发布人": None, "字号": None,
    "实施日期": None, "公开时限": None, "效力状态": None,
}
# Generic labels that also occur inside notice text (办理时间：…); only read outside the body.
WEAK_FIELDS = {"source", "time"}

_LABEL_ALTERNATION = "|".join(
    _SPACE.join(map(re.escape, label)) for label in sorted(LABELS, key=len, reverse=True)
)
_LABEL_AT = re.compile(rf"(?<![\u4e00-\u9fff])(?P<label>{_LABEL_ALTERNATION}){_SPACE}[:：]")
_LABEL_ONLY = re.compile(rf"^{_SPACE}(?P<label>{_LABEL_ALTERNATION}){_SPACE}[:：]?{_SPACE}$")
_SQUEEZE = re.compile(r"[\s\u3000\u00a0]+")


def read_meta_tags(tree: html.HtmlElement) -> dict[str, str]:
    """Return ``<meta name=… content=…>`` values keyed by lower-case name (first one wins)."""
    tags: dict[str, str] = {}
    for meta in tree.iter("meta"):
        name = (meta.get("name") or meta.get("property") or "").strip().lower()
        content = (meta.get("content") or "").strip()
        if name and content and name not in tags:
            tags[name] = content
    return tags


@dataclass(frozen=True)
class Labelled:
    """One ``LABEL：value`` pair found on a page."""

    field: str
    label: str
    value: str


def _label_name(raw: str) -> str:
    return _SQUEEZE.sub("", raw)


def read_labelled_fields(text: str, cell_separator: str = "\t") -> list[Labelled]:
    """Find every labelled value in ``text`` (lines of cells), in page order."""
    rows = [line.split(cell_separator) for line in text.split("\n")]
    rows = [[cell for cell in row if cell.strip()] for row in rows]
    rows = [row for row in rows if row]
    found: list[Labelled] = []
    for row_index, row in enumerate(rows):
        for cell_index, cell in enumerate(row):
            only = _LABEL_ONLY.match(cell)
            if only:
                value = _value_after(rows, row_index, cell_index)
                _add(found, only["label"], value)
                continue
            matches = list(_LABEL_AT.finditer(cell))
            for position, match in enumerate(matches):
                end = matches[position + 1].start() if position + 1 < len(matches) else len(cell)
                _add(found, match["label"], cell[match.end():end])
    return found


def _value_after(rows: list[list[str]], row_index: int, cell_index: int) -> str:
    """The value of a label that stands alone in its cell: the next cell, or the next line."""
    row = rows[row_index]
    if cell_index + 1 < len(row):
        candidate = row[cell_index + 1]
    elif row_index + 1 < len(rows) and len(row) == 1:
        candidate = rows[row_index + 1][0]
    else:
        return ""
    return "" if _LABEL_ONLY.match(candidate) or _LABEL_AT.match(candidate) else candidate


def _add(found: list[Labelled], raw_label: str, value: str) -> None:
    label = _label_name(raw_label)
    field = LABELS.get(label)
    value = " ".join(value.split()).strip(" |")
    if field and value:
        found.append(Labelled(field, label, value))
