"""Any government column that follows the national conventions, on an unknown platform.

Notice links are found by shape: a link with a title-length text whose row also
shows a date; the next page is the 下一页 (or 下页, >) link. Fields come from the
meta tags, labels and the body as on every platform.
"""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlsplit

from scrapy.http import Response

from crawler.extract.dates import parse_date

from .base import ListEntry, NoticeSpider, join_url, next_page_link

_MIN_TITLE = 6


class GenericSpider(NoticeSpider):
    platform = "generic"
    detail_pattern = r"\.(?:s?html?|jsp|aspx?|php)(?:\?.*)?$|/content|/detail|/art_|/t\d{8}_"

    def list_entries(self, response: Response) -> Iterator[ListEntry]:
        host = urlsplit(response.url).hostname
        for row in response.css("li, tr, dd"):
            links = row.css("a[href]")
            if len(links) != 1:
                continue
            link = links[0]
            title = (link.attrib.get("title") or " ".join(link.css("::text").getall())).strip()
            date = parse_date(" ".join(row.css("::text").getall()))
            url = join_url(response, link.attrib["href"])
            if len(title) >= _MIN_TITLE and date and urlsplit(url).hostname == host:
                yield ListEntry(url, title, date)

    def next_page(self, response: Response) -> str | None:
        return next_page_link(response)
