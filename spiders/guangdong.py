"""Guangdong's 集约化 platform: the gkmlpt 政府信息公开目录 and the NFCMS portal columns.

A column URL ending in ``/gkmlpt/index`` is the gkmlpt catalogue: its page is a
script shell whose ``window._CONFIG`` holds the site id (SID) and the category
tree; each leaf category is walked through the JSON API
``/gkmlpt/api/all/{category}?page=N&sid=SID`` (100 articles a page; pages 0 and
1 are the same batch, so the walk starts at 1). Any other column is an NFCMS
portal list (``ul.News_list`` rows, ``index_N.html`` pages). Both views of one
post share its id and are one document (the crawl context knows them as one).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterable, Iterator
from urllib.parse import parse_qs, urlencode, urlsplit

import scrapy
from scrapy.http import Response

from crawler.items import ROLE, WALK

from .base import ListEntry, NoticeSpider, join_url, next_page_link

GKMLPT_INDEX = "/gkmlpt/index"
CHINA_TIME = dt.timezone(dt.timedelta(hours=8))
API_PAGE_SIZE = 100
_SID = re.compile(r"""SID\s*:\s*['"]?(\d+)""")
_TREE = re.compile(r"TREE\s*:\s*\[")
_PORTAL_PAGE = re.compile(r"index(?:_(\d+))?\.html$")
_POST_ID = re.compile(r"/content/post_(\d+)\.html$")
_PAGE_COUNT = re.compile(r"共\s*(\d+)\s*页|createPageHTML\(\s*(\d+)|countPage\s*=\s*(\d+)")


class GuangdongSpider(NoticeSpider):
    platform = "guangdong"
    detail_pattern = r"/content/(?:\d+/\d+/)?post_\d+\.html$"
    portal_rows = "ul.News_list li, .news_list li, ul.ul_art_row li"

    def defer(self, entry: ListEntry) -> bool:
        """Portal rows of catalogue posts wait until the catalogue walks are done: the catalogue's
        list context (the publication time) then always wins, whatever order pages arrive in."""
        return bool(entry.fallback_url)

    def column_requests(self, column: str, walk: str) -> Iterable[scrapy.Request]:
        if urlsplit(column).path.endswith(GKMLPT_INDEX):
            yield scrapy.Request(column, callback=self.parse_gkmlpt_index, errback=self.failed, dont_filter=True,
                                 meta={ROLE: "list", WALK: walk})
        else:
            yield from super().column_requests(column, walk)

    def parse_gkmlpt_index(self, response: Response) -> Iterator[scrapy.Request]:
        """Read SID and the category tree; start one list walk per leaf category that holds posts
        (walk ids: the column's, then the category's)."""
        self.crawler.stats.inc_value("zwgk/list_pages")
        sid = _SID.search(response.text)
        tree = _json_array_after(response.text, _TREE)
        if sid is None or tree is None:
            self.logger.warning("%s: no window._CONFIG SID/TREE (has the catalogue changed?)", response.url)
            return
        api_base = response.url[: response.url.rindex(GKMLPT_INDEX)] + "/gkmlpt/api/all/"
        for category in _leaves(tree):
            query = urlencode({"page": 1, "sid": sid.group(1)})
            yield self.list_request(f"{api_base}{category}?{query}", f"{response.meta[WALK]}.{category}", first=True)

    def list_entries(self, response: Response) -> Iterator[ListEntry]:
        if "/gkmlpt/api/" in response.url:
            yield from _api_entries(response)
            return
        catalogue = self._catalogue_base(response.url)
        for row in response.css(self.portal_rows):
            link = row.css("a[href]")
            if not link:
                continue
            title = link.attrib.get("title") or " ".join(link.css("::text").getall()).strip()
            date = (row.css("span::text").get() or "").strip() or None
            url = join_url(response, link.attrib["href"])
            post = _POST_ID.search(url)
            if catalogue and post:
                # The catalogue's view of the post carries 文号, 发布机构 and 成文日期; the portal's is the fallback.
                post_id = int(post.group(1))
                view = f"{catalogue}/gkmlpt/content/{post_id // 1_000_000}/{post_id // 1000}/post_{post_id}.html"
                yield ListEntry(view, title or None, date, fallback_url=url)
            else:
                yield ListEntry(url, title or None, date)

    def _catalogue_base(self, url: str) -> str | None:
        """The gkmlpt base (scheme, host, prefix) of this source on the host of ``url``, if it has one."""
        host = urlsplit(url).hostname
        for column in self.source.columns:
            if urlsplit(column).path.endswith(GKMLPT_INDEX) and urlsplit(column).hostname == host:
                return column[: column.rindex(GKMLPT_INDEX)]
        return None

    def next_page(self, response: Response) -> str | None:
        if "/gkmlpt/api/" in response.url:
            if len(_articles(response)) < API_PAGE_SIZE:
                return None
            parts = urlsplit(response.url)
            query = {key: values[0] for key, values in parse_qs(parts.query).items()}
            query["page"] = str(int(query.get("page", "1")) + 1)
            return parts._replace(query=urlencode(query)).geturl()
        if link := next_page_link(response):
            return link
        match, count = _PORTAL_PAGE.search(urlsplit(response.url).path), _PAGE_COUNT.search(response.text)
        if match and count:
            current, total = int(match.group(1) or 1), int(next(group for group in count.groups() if group))
            return response.urljoin(f"index_{current + 1}.html") if current < total else None
        return None


def _articles(response: Response) -> list[dict]:
    try:
        data = json.loads(response.text)
    except ValueError:
        return []
    articles = data.get("articles") if isinstance(data, dict) else None
    return articles if isinstance(articles, list) else []


def _api_entries(response: Response) -> Iterator[ListEntry]:
    for article in _articles(response):
        url = article.get("url") or article.get("post_url")
        if not url:
            continue
        attachments = tuple((join_url(response, item["url"]), item.get("name") or item["url"].rsplit("/", 1)[-1])
                            for item in article.get("attachment") or () if item.get("url"))
        yield ListEntry(join_url(response, url), article.get("title"), _published(article), attachments)


def _published(article: dict) -> str | None:
    """The publication time of an API article (``date`` is often the 成文日期)."""
    epoch = article.get("display_publish_time") or article.get("create_time")
    if isinstance(epoch, (int, float)) and epoch > 0:
        return dt.datetime.fromtimestamp(epoch, CHINA_TIME).strftime("%Y-%m-%d %H:%M:%S")
    return article.get("created_at") or article.get("date") or None


def _leaves(nodes: list[dict]) -> Iterator[int]:
    """Leaf categories that hold posts, in tree order."""
    for node in nodes:
        children = node.get("children") or []
        if children:
            yield from _leaves(children)
        elif node.get("post_count", 1) and node.get("id") is not None:
            yield node["id"]


def _json_array_after(text: str, marker: re.Pattern[str]) -> list | None:
    """The JSON array that starts where ``marker`` ends, read to its matching bracket."""
    match = marker.search(text)
    if match is None:
        return None
    try:
        value, _ = json.JSONDecoder().raw_decode(text, match.end() - 1)
    except ValueError:
        return None
    return value if isinstance(value, list) else None
