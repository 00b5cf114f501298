"""The notice text: the body container's text without the page's chrome.

When the page (or its source's settings) names a container, its text is taken as
laid out, tables included; otherwise trafilatura finds the main text.
"""

from __future__ import annotations

import re

import trafilatura
from lxml import html

from .dates import find_dates
from .html import drop, element_text, parse_html
from .metadata import WEAK_FIELDS, read_labelled_fields

# Containers of the CMS platforms Chinese government sites run on, most specific first.
BODY_CONTAINERS = (
    "#ivs_content", ".Article_content", ".zw_content", "#UCAP-CONTENT", ".TRS_Editor",
    ".trs_editor_view", ".xl-xqnr", "#zoom", ".article-content", ".info_cont", ".news_cont_d_wrap",
    ".show-detail", "#detailContent", ".artContent", ".pages_content", "table.sj_nr",
)
_RSS_MARKERS = re.compile(r"<!--ZJEG_RSS\.content\.begin-->(.*?)<!--ZJEG_RSS\.content\.end-->", re.S)
# Elements inside a body container that are page furniture, not text.
_FURNITURE = (
    ".bdsharebuttonbox", ".share", ".bshare-custom", ".print", ".ewm", ".qrcode", "#qrcode",
    ".Article-share", ".fenxiang",
)
_CHROME_LINE = re.compile(
    r"^(?:您现在的位置|现在位置|当前位置|分享到|分享至|【?打印本?页?】?\s*【?关闭(?:窗口)?】?$|关闭窗口|上一篇|下一篇"
    r"|政策性文件留言咨询|[(（]?注[:：]\s*1[.、．]\s*只接收|2[.、．]\s*留言时请注明|Copyright|版权所有"
    r"|欢迎访问.{0,6}你是第|扫一扫在手机打开当前页|【?\s*字体\s*[:：]|字号\s*[:：]?\s*[大中小]"
    r"|(?:浏览次数|点击数|阅读次数|访问量)\s*[:：])",
    re.I,
)
_CHROME_ANYWHERE = re.compile(r"网站标识码|ICP备|公网安备")
_MAX_CHROME_LINE = 80
_SIGNATURE_REMARK = re.compile(r"[(（](?:此件公开发布|此件主动公开|此页无正文)[)）]$")
# A 落款 names the issuing body: the line before the date ends like an organisation's name.
_ORGANISATION = re.compile(
    r"(?:局|委员会|委|厅|办公室|办公厅|政府|院|部|会|总队|支队|队|中心|处|所|公司|银行|分行|支行|馆|站|署|办|组|社|区|县|市|省)$"
)
_ADOPTION_NOTE = re.compile(r"^[(（].{0,40}?通过[)）]$")
_MIN_CONTAINER_TEXT = 20


def find_body_container(tree: html.HtmlElement, page_text: str,
                        selectors: tuple[str, ...] = ()) -> html.HtmlElement | None:
    """Return the element holding the notice text: ``selectors`` first, then the platform containers."""
    for selector in selectors:
        if (found := _first_with_text(tree, selector)) is not None:
            return found
    if match := _RSS_MARKERS.search(page_text):
        fragment = parse_html(f"<html><body><div>{match.group(1)}</div></body></html>")
        return fragment.body[0]
    for selector in BODY_CONTAINERS:
        if (found := _first_with_text(tree, selector)) is not None:
            return found
    return None


def _first_with_text(tree: html.HtmlElement, selector: str) -> html.HtmlElement | None:
    """The first match that holds a notice: enough text, or a short pointer to attached files."""
    for element in tree.cssselect(selector):
        text = "".join(element_text(element).split())
        if len(text) >= _MIN_CONTAINER_TEXT or (text and ("附件" in text or element.find(".//a") is not None)):
            return element
    return None


def is_metadata_table(table: html.HtmlElement) -> bool:
    """A table of 政府信息公开 metadata (two or more labelled cells), not part of the text."""
    strong = [item for item in read_labelled_fields(element_text(table, "\t")) if item.field not in WEAK_FIELDS]
    return len(strong) >= 2


def take_metadata_tables(container: html.HtmlElement) -> list[str]:
    """Remove the metadata tables from ``container`` and return their text for label reading."""
    texts = []
    for table in list(container.iter("table")):
        if table.getparent() is not None and is_metadata_table(table):
            texts.append(element_text(table, "\t"))
            drop(table)
    return texts


def drop_furniture(container: html.HtmlElement) -> None:
    """Remove share widgets, QR codes and print buttons that sit inside a container."""
    for selector in _FURNITURE:
        for element in container.cssselect(selector):
            drop(element)


def container_text(container: html.HtmlElement) -> str:
    """The container's text as laid out, without chrome lines."""
    return strip_chrome(element_text(container))


def fallback_text(page_text: str) -> str:
    """The main text trafilatura finds on a page whose container is unknown."""
    extracted = trafilatura.extract(
        page_text, include_tables=True, include_comments=False, favor_recall=True, deduplicate=False,
    )
    return strip_chrome(extracted or "")


def strip_chrome(text: str) -> str:
    """Drop breadcrumb, share, print, counter, footer and 留言咨询 lines."""
    kept = []
    for line in text.split("\n"):
        stripped = line.strip()
        if len(stripped) <= _MAX_CHROME_LINE and (_CHROME_LINE.match(stripped) or _CHROME_ANYWHERE.search(stripped)):
            continue
        kept.append(line)
    return "\n".join(kept)


def signature_date(body: str) -> str | None:
    """The 成文日期 a body states: the date of its 落款 (a date line under the issuer's name),
    else the date of an adoption note (（2007年6月29日…会议通过）)."""
    adoption = None
    previous = ""
    for line in body.split("\n"):
        stripped = _SIGNATURE_REMARK.sub("", "".join(line.split()))
        if not stripped:
            continue
        dates = list(find_dates(stripped))
        if len(dates) == 1:
            iso, start, end = dates[0]
            if start == 0 and end == len(stripped) and _ORGANISATION.search(previous):
                return iso[:10]
            if adoption is None and start <= 1 and _ADOPTION_NOTE.match(stripped):
                adoption = iso[:10]
        previous = stripped
    return adoption
