"""Attachment links: the files a notice page points to (PDF, Word, Excel, WPS, OFD, archives)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath
from urllib.parse import urljoin, urlsplit

from lxml import html

from .html import inline_text

EXTENSIONS = {"pdf", "doc", "docx", "wps", "xls", "xlsx", "et", "ofd", "txt", "zip", "rar", "7z"}
# Upload folders of the platforms (NFCMS/gkmlpt, Shanghai, Yunnan, Hunan): files there are attachments.
UPLOAD_PATHS = ("/attachment/", "/cmsres/", "/uploadfile/", "/uploadfiles/")
_NOT_ATTACHMENTS = {"html", "htm", "shtml", "jsp", "php", "asp", "aspx", "jpg", "jpeg", "png", "gif", "bmp",
                    "svg", "webp", "css", "js"}
# Blocks that list a page's attachments outside its body container.
ATTACHMENT_BLOCKS = ("[class*=attach]", "[id*=attach]", "[class*=fujian]", "[id*=fujian]", ".fj", "#fj", ".xgfj")


@dataclass(frozen=True)
class AttachmentLink:
    """A link to an attached file, with the link text as its name."""

    url: str
    name: str


def _path(url: str) -> str:
    """The path of ``url``, or for a URL too malformed to split, what stands before its query."""
    try:
        return urlsplit(url).path
    except ValueError:
        return url.split("?", 1)[0].split("#", 1)[0]


def is_attachment_url(url: str) -> bool:
    path = _path(url).lower()
    suffix = PurePosixPath(path).suffix.lstrip(".")
    if suffix in EXTENSIONS:
        return True
    return suffix not in _NOT_ATTACHMENTS and any(folder in path for folder in UPLOAD_PATHS)


def find_attachments(elements: list[html.HtmlElement], base_url: str) -> list[AttachmentLink]:
    """The attachment links inside ``elements``, in page order, each once."""
    found: dict[str, AttachmentLink] = {}
    for element in elements:
        for link in element.iter("a"):
            href = (link.get("href") or "").strip()
            if not href or href.startswith(("javascript:", "mailto:", "#")):
                continue
            try:
                url = urljoin(base_url, href)
            except ValueError:  # kept as written: the crawl records it as malformed instead of losing it
                url = href
            if url in found or not is_attachment_url(url):
                continue
            name = inline_text(link) or link.get("title") or PurePosixPath(_path(url)).name
            found[url] = AttachmentLink(url, name.strip())
    return list(found.values())
