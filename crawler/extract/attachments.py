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


def is_attachment_url(url: str) -> bool:
    path = urlsplit(url).path.lower()
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
            except ValueError:
                continue
            if url in found or not is_attachment_url(url):
                continue
            name = inline_text(link) or link.get("title") or PurePosixPath(urlsplit(url).path).name
            found[url] = AttachmentLink(url, name.strip())
    return list(found.values())
