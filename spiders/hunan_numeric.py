"""The Hunan numeric-path CMS (Xiangtan, Yueyang): ``/{site}/{column}/index.htm``.

Pages are often GBK with no charset declared (decoded by the response encoding
middleware). Pagination comes in several variants: ``index_{n}.htm``,
``default_{n}.htm`` or ``index.jsp?pager.offset=``, with the page count in
``共N页`` or ``var maxPageItems = "N"``; a 下一页 link is used where there is one.
Details are ``content_{id}.html``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

from scrapy.http import Response

from .base import ListEntry, NoticeSpider, join_url, next_page_link

_PAGE_COUNT = re.compile(r"共\s*(\d+)\s*页|maxPageItems\s*=\s*[\"']?(\d+)")
_NUMBERED = re.compile(r"(index|default)(?:_(\d+))?\.htm$")
_OFFSET_STEP = 20


class HunanNumericSpider(NoticeSpider):
    platform = "hunan_numeric"
    detail_pattern = r"/content_\d+\.s?html?$"
    list_rows = ("ul.s_list li, .xxtl_ul li, .news-list .resultList, .gkgd-con li, .lbcc-nr li, "
                 ".jgxx-r-box tr")

    def list_entries(self, response: Response) -> Iterator[ListEntry]:
        for row in response.css(self.list_rows):
            link = row.css("a[href]")
            if link:
                title = link.attrib.get("title") or " ".join(link.css("::text").getall()).strip()
                date = row.css("span::text, td:last-child::text").re_first(r"\d{4}-\d{1,2}-\d{1,2}")
                yield ListEntry(join_url(response, link.attrib["href"]), title or None, date)

    def next_page(self, response: Response) -> str | None:
        if link := next_page_link(response):
            return link
        path = urlsplit(response.url).path
        if path.endswith("index.jsp"):
            offset = int(parse_qs(urlsplit(response.url).query).get("pager.offset", ["0"])[0])
            return response.urljoin(f"index.jsp?pager.offset={offset + _OFFSET_STEP}&pager.desc=false")
        match = _NUMBERED.search(path)
        count = _PAGE_COUNT.search(response.text)
        if not match or not count:
            return None
        current = int(match.group(2) or 1)
        if current >= int(count.group(1) or count.group(2)):
            return None
        return response.urljoin(f"{match.group(1)}_{current + 1}.htm")
