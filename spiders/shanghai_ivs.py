"""The Shanghai municipal CMS (``ivs_*`` ids) that every *.sh.gov.cn department runs.

Lists are ``/{slug}/index.html``, ``index_2.html`` …; rows are ``<li><a title>``
with a ``span.time`` date; page links are drawn by a jQuery ``pagination({totalPage})``
script, so the page count is read from the script. Details are
``/{slug}/{YYYYMMDD}/{32 hex}.html``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from scrapy.http import Response

from .base import ListEntry, NoticeSpider, join_url, next_page_link

_TOTAL_PAGES = re.compile(r"totalPage\s*:\s*(\d+)")
_PAGE_NUMBER = re.compile(r"index(?:_(\d+))?\.html$")


class ShanghaiIvsSpider(NoticeSpider):
    platform = "shanghai_ivs"
    detail_pattern = r"/\d{8}/[0-9a-f]{32}\.html$"
    list_rows = "ul.pageList li, ul.uli14 li, ul.list-date li"

    def list_entries(self, response: Response) -> Iterator[ListEntry]:
        seen = set()
        for row in response.css(self.list_rows):
            link = row.css("a[href]")
            if not link:
                continue
            url = join_url(response, link.attrib["href"])
            if url in seen:
                continue
            seen.add(url)
            title = link.attrib.get("title") or " ".join(link.css("::text").getall()).strip()
            date = row.css("span.time::text, span::text").get()
            yield ListEntry(url, title or None, date.strip("()（） \n\t") if date else None)

    def next_page(self, response: Response) -> str | None:
        match = _PAGE_NUMBER.search(response.url)
        current = int(match.group(1) or 1) if match else 1
        total = _TOTAL_PAGES.search(response.text)
        if total:
            return response.urljoin(f"index_{current + 1}.html") if current < int(total.group(1)) else None
        return next_page_link(response)
