"""Pure extraction: a saved page in, a notice's fields out.

Nothing here imports Scrapy or the archive, so any page on disk can be
extracted (``zwgk extract``) and every rule is testable on saved pages.
The order is: <meta> tags, then labelled fields, then the body, then
normalisation; where a labelled value the reader sees disagrees with a <meta>
value, the visible one wins.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

from lxml import html

from .attachments import ATTACHMENT_BLOCKS, AttachmentLink, find_attachments
from .body import (
    container_text,
    drop_furniture,
    fallback_text,
    find_body_container,
    signature_date,
    take_metadata_tables,
)
from .dates import merge_time, parse_date
from .docnumber import canonical_doc_number, parse_doc_number
from .doctype import classify_doc_type
from .encoding import decode_counted
from .html import drop, element_text, inline_text, parse_html
from .metadata import WEAK_FIELDS, Labelled, read_labelled_fields, read_meta_tags
from .normalise import (
    content_hash,
    normalise_text,
    strip_control_characters,
    tidy_inline,
    tidy_lines,
    tidy_title,
    to_simplified,
)

EXTRACTOR_VERSION = "1"

TITLE_SELECTORS = (
    "#ivs_title", ".Article_title", ".show-title", "h1.title", ".article-title", ".title_cen",
    ".xlnk h2", "div.ftheme", ".news_cont_d_title", "h1",
)
_URL_DATE = re.compile(r"/(?:t)?((?:19|20)\d{2})[-/]?(\d{2})[-/]?(\d{2})(?:[/_]|$)")
_SITE_PREFIX = re.compile(r"^.{2,20}?(?:网|网站|门户)\s*(?:——|--|-|_|\|)\s*")
_PAGE_TITLE_SEPARATOR = re.compile(r"_|\s[-|－—]\s|\|")
# Elements where a platform prints "SOURCE DATE" under the title (Shanghai: #ivs_date).
BYLINE_SELECTORS = ("#ivs_date",)
# The fields whose normalised values decide whether a notice changed.
CONTENT_FIELDS = (
    "title", "doc_number", "index_number", "issuer", "written_date", "published_at", "disclosure",
    "doc_type", "topic", "keywords", "body",
)


@dataclass(frozen=True)
class ExtractOptions:
    """Per-source hints: where the body and title live, and what the list page said."""

    body_selectors: tuple[str, ...] = ()
    title_selectors: tuple[str, ...] = ()
    listed_title: str | None = None
    listed_date: str | None = None


@dataclass
class Notice:
    """The fields of one notice as extracted from one page."""

    url: str
    title: str | None = None
    doc_number: str | None = None
    doc_number_prefix: str | None = None
    doc_number_year: int | None = None
    doc_number_serial: int | None = None
    index_number: str | None = None
    issuer: str | None = None
    written_date: str | None = None
    published_at: str | None = None
    disclosure: str | None = None
    doc_type: str | None = None
    topic: str | None = None
    keywords: str | None = None
    column: str | None = None
    site_id_code: str | None = None
    body: str = ""
    body_original: str = ""
    attachments: list[AttachmentLink] = field(default_factory=list)
    # Invalid byte sequences replaced by U+FFFD when the page was decoded (a UTF-8 page with stray bytes).
    undecodable: int = 0
    extractor_version: str = field(default=EXTRACTOR_VERSION)

    def content_fields(self) -> dict[str, object]:
        """The normalised values that make a version: chrome and encoding never reach them."""
        values = {name: getattr(self, name) for name in CONTENT_FIELDS}
        return {name: to_simplified(value) if isinstance(value, str) and name != "body" else value
                for name, value in values.items()}

    @property
    def content_hash(self) -> str:
        """The hash of the page alone (a page without attachments, or before they are fetched)."""
        return self.version_hash(())

    def version_hash(self, attachment_digests: Sequence[str | None]) -> str:
        """The hash that decides a new version: the page's fields and its attachments' sha256s, in order."""
        return content_hash({**self.content_fields(), "attachments": list(attachment_digests)})

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def extract_notice(
    page: bytes | str, url: str, *, content_type: str | None = None, options: ExtractOptions | None = None,
) -> Notice:
    """Extract a notice from a detail page's bytes (or decoded text)."""
    options = options or ExtractOptions()
    page_text, undecodable = decode_counted(page, content_type) if isinstance(page, bytes) else (page, 0)
    # NUL and control characters are dropped here, so no field, link name or text holds one.
    page_text = strip_control_characters(page_text)
    tree = parse_html(page_text)
    meta = read_meta_tags(tree)
    title_element = _title_element(tree, options.title_selectors)
    visible_title = inline_text(title_element) if title_element is not None else None

    container = find_body_container(tree, page_text, options.body_selectors)
    blocks = [block for selector in ATTACHMENT_BLOCKS for block in tree.cssselect(selector)]
    scope = [container, *blocks] if container is not None else [tree]
    attachments = find_attachments(scope, url)
    labelled: list[Labelled] = []
    if container is not None:
        for table_text in take_metadata_tables(container):
            labelled += read_labelled_fields(table_text)
        drop_furniture(container)
        body_original = container_text(container)
        if container.getroottree().getroot() is tree:
            drop(container)
    else:
        body_original = fallback_text(page_text)
    body_original = tidy_lines(body_original)
    if tree.body is not None:
        page_labels = read_labelled_fields(element_text(tree.body, "\t"))
        if container is None:
            # The body is still in the page: its 时间：/来源： lines are notice text, not metadata.
            page_labels = [item for item in page_labels
                           if not (item.field in WEAK_FIELDS and item.value in body_original)]
        labelled += page_labels
    body_labels = read_labelled_fields(body_original, " | ")

    notice = Notice(url=url, body_original=body_original, body=normalise_text(body_original),
                    attachments=attachments, undecodable=undecodable)
    notice.title = tidy_title(
        _value(labelled, "title") or _clean_meta_title(meta.get("articletitle")) or visible_title
        or options.listed_title or _page_title(tree)
    )
    _set_doc_number(notice, to_simplified(_value(labelled, "doc_number") or _leading_doc_number(body_original) or ""))
    notice.index_number = _first_token(_value(labelled, "index_number"))
    notice.issuer = tidy_inline(
        _value(labelled, "issuer") or _value(labelled, "source") or _byline_source(tree)
        or meta.get("contentsource")
    )
    notice.doc_type = classify_doc_type(to_simplified(notice.title or ""))
    # Only a 公文 has a 成文日期; a news item's opening date line is not one.
    notice.written_date = _date(labelled, "written_date") or (
        signature_date(body_original) if notice.doc_type else None
    )
    notice.published_at = _published_at(labelled, meta, options, url)
    notice.disclosure = _first_token(_value(labelled, "disclosure") or _value(body_labels, "disclosure"))
    notice.topic = tidy_inline(_value(labelled, "topic"))
    notice.keywords = tidy_inline(_value(labelled, "keywords") or meta.get("keywords"))
    notice.column = tidy_inline(meta.get("columnname"))
    notice.site_id_code = meta.get("siteidcode")
    return notice


def complete_from_attachments(notice: Notice, texts: Sequence[str]) -> None:
    """Take from the attached files what the page does not say: the 公开方式 line of a 公文's
    版记 (``公开方式：主动公开``) often exists only in the attached document."""
    if notice.disclosure:
        return
    for text in texts:
        if value := _value(read_labelled_fields(text, " | "), "disclosure"):
            notice.disclosure = _first_token(value)
            return


def _title_element(tree: html.HtmlElement, selectors: tuple[str, ...]) -> html.HtmlElement | None:
    for selector in (*selectors, *TITLE_SELECTORS):
        for element in tree.cssselect(selector):
            if inline_text(element):
                return element
    return None


def _page_title(tree: html.HtmlElement) -> str | None:
    """The <title> without the site name that follows it (``TITLE_站点名``)."""
    text = tree.findtext(".//title")
    if not text or not text.strip():
        return None
    first = _PAGE_TITLE_SEPARATOR.split(text.strip())[0]
    return first if len(first.strip()) >= 6 else text


def _byline_source(tree: html.HtmlElement) -> str | None:
    for selector in BYLINE_SELECTORS:
        for element in tree.cssselect(selector):
            text = inline_text(element)
            for iso_fragment in re.findall(r"[\d\-/.:年月日 ]{8,}", text):
                text = text.replace(iso_fragment, " ")
            text = text.strip(" ()（）")
            if text and not any(char.isdigit() for char in text):
                return text
    return None


def _leading_doc_number(body: str) -> str | None:
    """A 文号 printed on its own line at the top of the text (the centred line under a 公文's title)."""
    for line in body.split("\n")[:6]:
        if parse_doc_number(line):
            return line
    return None


def _value(labelled: list[Labelled], field_name: str) -> str | None:
    return next((item.value for item in labelled if item.field == field_name), None)


def _date(labelled: list[Labelled], field_name: str) -> str | None:
    return next((iso for item in labelled if item.field == field_name and (iso := parse_date(item.value))), None)


def _first_token(value: str | None) -> str | None:
    if not value:
        return None
    token = value.split()[0]
    return token if token not in {"-", "无", "/"} else None


def _clean_meta_title(value: str | None) -> str | None:
    return _SITE_PREFIX.sub("", value) if value else None


def _set_doc_number(notice: Notice, value: str | None) -> None:
    if not value or not any(char.isdigit() for char in value):
        return
    notice.doc_number = canonical_doc_number(value)
    if parsed := parse_doc_number(value):
        notice.doc_number_prefix, notice.doc_number_year, notice.doc_number_serial = (
            parsed.prefix, parsed.year, parsed.serial,
        )


def _published_at(labelled: list[Labelled], meta: dict[str, str], options: ExtractOptions, url: str) -> str | None:
    meta_value = next(
        (iso for name in ("pubdate", "publishdate", "firstpublishedtime", "published_time")
         if (iso := parse_date(meta.get(name)))),
        None,
    )
    visible = _date(labelled, "published_at") or _date(labelled, "time")
    if visible:
        return merge_time(merge_time(visible, meta_value), parse_date(options.listed_date))
    if meta_value:
        return meta_value
    if listed := parse_date(options.listed_date):
        return listed
    if match := _URL_DATE.search(url):
        return parse_date("-".join(match.groups()))
    return None


__all__ = [
    "EXTRACTOR_VERSION",
    "WEAK_FIELDS",
    "AttachmentLink",
    "ExtractOptions",
    "Notice",
    "complete_from_attachments",
    "extract_notice",
]
