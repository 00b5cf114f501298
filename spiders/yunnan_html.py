"""The Yunnan provincial-department CMS (PHPCMS-like, static ``/html/`` output).

Lists are ``/html/{column}/index.html``, ``2.html``, ``3.html`` … with rows in
``div.list-content li`` (a link and a ``span`` date) and page links in
``div.pagenav``. Details are ``/html/{YYYY}/{column}_{MMDD}/{id}.html``.
"""

from __future__ import annotations

from collections.abc import Iterator

from scrapy.http import Response

from .base import ListEntry, NoticeSpider, join_url, next_page_link


class YunnanHtmlSpider(NoticeSpider):
    platform = "yunnan_html"
    detail_pattern = r"/html/\d{4}/[A-Za-z0-9]+_\d{4}/\d+\.html$"
    list_rows = "div.list-content li, ul.list li"

    def list_entries(self, response: Response) -> Iterator[ListEntry]:
        for row in response.css(self.list_rows):
            link = row.css("a[href]")
            if link:
                title = link.attrib.get("title") or " ".join(link.css("::text").getall()).strip()
                yield ListEntry(join_url(response, link.attrib["href"]), title or None,
                                row.css("span::text").get())

    def next_page(self, response: Response) -> str | None:
        return next_page_link(response)
