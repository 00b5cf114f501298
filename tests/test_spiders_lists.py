"""Each platform spider reads the saved list pages of its fixture site, without a crawl.

A response is built from a fixture file under the real URL the registry (or the previous
page) leads to, with the headers the fixture server sends, and passed through the
decoding middleware as in a crawl. The expectations were read from the pages themselves:
the first and last rows of each page below are copied from the HTML (or the JSON of the
gkmlpt API), and every row is checked against the site's manifest.json, which the
fixture site builder wrote (tests/fixtures/sites/README.md), never against spider output.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import scrapy
from scrapy.http import Response
from scrapy.responsetypes import responsetypes
from scrapy.settings import Settings
from scrapy.utils.test import get_crawler

from crawler.context import open_crawl_archive, plan_crawl
from crawler.items import DEFER, ROLE, WALK, WALK_ENDED, FetchErrorItem, walk_stat
from crawler.middlewares import ResponseEncodingMiddleware
from spiders.base import ListEntry, NoticeSpider
from spiders.loader import spider_class
from spiders.registry import BUNDLED_SOURCES, load_sources
from tests.conftest import SITES

# Sources on the generic platform, pointed at two fixture columns (the spider reads rows by shape).
GENERIC_SOURCES = """
[generic_sh]
name = "通用平台（上海栏目）"
host = "jtw.sh.gov.cn"
platform = "generic"
columns = ["https://jtw.sh.gov.cn/zxzfxx/index.html"]

[generic_yn]
name = "通用平台（云南栏目）"
host = "jtyst.yn.gov.cn"
platform = "generic"
columns = ["https://jtyst.yn.gov.cn/html/zhengwugonggao/index.html"]
"""
HTML = "text/html"  # the fixture server's type for pages: no charset, as many real sites send
JSON = "application/json; charset=utf-8"
SH, YN, XT, GZ = "https://jtw.sh.gov.cn", "https://jtyst.yn.gov.cn", "http://jtj.xiangtan.gov.cn", "https://jtj.gz.gov.cn"
GZ_API, SW_API = "http://jtj.gz.gov.cn/gkmlpt/api/all", "http://www.shanwei.gov.cn/swjtj/gkmlpt/api/all"


# Building spiders and responses


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """The project's ZWGK_* settings over an empty SQLite archive and a registry with generic sources."""
    root = tmp_path_factory.mktemp("spiders")
    registry = root / "sources.toml"
    registry.write_text(BUNDLED_SOURCES.read_text(encoding="utf-8") + GENERIC_SOURCES, encoding="utf-8")
    project = Settings()
    project.setmodule("crawler.settings")
    values = {name: project[name] for name in project if name.startswith("ZWGK_")}
    return {**values, "ZWGK_DB": f"sqlite:///{root / 'archive.sqlite3'}", "ZWGK_SOURCES": str(registry)}


@pytest.fixture
def spider_for(settings: dict[str, object]):
    """``spider_for(key)``: the spider `scrapy crawl KEY` runs, built by its from_crawler."""
    def build(key: str) -> NoticeSpider:
        source = load_sources(settings["ZWGK_SOURCES"])[key]
        cls = spider_class(key, source.platform)
        crawler = get_crawler(cls, settings)
        return cls.from_crawler(crawler, context=plan_crawl(open_crawl_archive(crawler.settings), source))
    return build


def fixture_file(url: str) -> Path:
    """The file the fixture server answers ``url`` with (a query string is ``@query`` in the name)."""
    parts = urlsplit(url)
    name = parts.path + (f"@{parts.query}" if parts.query else "")
    return SITES / parts.hostname / name.lstrip("/")


def downloaded(url: str, body: bytes | None = None, walk: str = "0") -> Response:
    """A list page as the downloader hands it to the spider: response class by type, decoded by its bytes."""
    body = fixture_file(url).read_bytes() if body is None else body
    headers = {"Content-Type": JSON if body.lstrip()[:1] in (b"{", b"[") else HTML}
    request = scrapy.Request(url, meta={ROLE: "list", WALK: walk})
    cls = responsetypes.from_args(headers=headers, url=url, body=body)
    response = cls(url=url, body=body, headers=headers, request=request)
    return ResponseEncodingMiddleware().process_response(request, response)


def notices(spider: NoticeSpider, response: Response) -> list[ListEntry]:
    """The rows of a list page the spider takes for notices (links of the platform's detail shape)."""
    return [entry for entry in spider.list_entries(response) if spider.detail_re.search(entry.url)]


def listed(entries: Iterable[ListEntry]) -> list[tuple[str, str | None, str | None]]:
    return [(entry.url, entry.title, entry.date) for entry in entries]


# What the pages show


@dataclass(frozen=True)
class Page:
    source: str
    url: str
    rows: int
    first: tuple[str, str, str]  # (url, title, date) of the first row, as the page shows it
    last: tuple[str, str, str]
    next_url: str | None

    def __str__(self) -> str:
        return f"{self.source}:{self.url.rsplit('/', 1)[-1]}"


SH_LIST, YN_LIST, XT_LIST = f"{SH}/zxzfxx/", f"{YN}/html/zhengwugonggao/", f"{XT}/6551/6553/"
HTML_PAGES = [
    Page("shanghai", f"{SH_LIST}index.html", 10,
         (f"{SH_LIST}20241220/8e0c3a170525d10b933b9970556dbb1e.html",
          "上海市交通委员会关于印发《上海市交通运输行业公共数据管理办法》的通知", "2024-12-20"),
         (f"{SH_LIST}20240628/8051fd2d6705c183eb917b6040c1bbbd.html",
          "上海市交通委员会关于印发《上海市慢行交通规划(2024—2035年)》的通知", "2024-06-28"),
         f"{SH_LIST}index_2.html"),
    Page("shanghai", f"{SH_LIST}index_2.html", 10,
         (f"{SH_LIST}20240612/b8ec55de4771af758d190b74aa83eee1.html",
          "上海市交通委员会关于做好2024年汛期交通运输安全防范工作的通知", "2024-06-12"),
         (f"{SH_LIST}20231017/263c446b8d5f01379b5d7c61e0edad44.html",
          "上海市交通委员会关于征集2024年度交通行业科技创新项目的通知", "2023-10-17"),
         f"{SH_LIST}index_3.html"),
    Page("shanghai", f"{SH_LIST}index_3.html", 8,
         (f"{SH_LIST}20230921/735c77fdfcbcf16ce810a90ee4160ada.html",
          "上海市交通委员会关于发布《上海市城市道路占路施工交通组织设计导则》的公告", "2023-09-21"),
         (f"{SH_LIST}20230116/ac323eea322cddb1d1bd292bbdd5eec4.html",
          "上海市交通委员会关于做好2023年春运工作的通知", "2023-01-16"),
         None),
    Page("yunnan", f"{YN_LIST}index.html", 10,
         (f"{YN}/html/2021/zhengwugonggao_1220/3101799.html",
          "云南省交通运输厅关于做好2022年元旦春节期间交通运输安全生产工作的通知", "2021-12-20"),
         (f"{YN}/html/2020/zhengwugonggao_1014/3100503.html",
          "云南省交通运输厅关于加快推进交通运输行业信用体系建设的实施意见", "2020-10-14"),
         f"{YN_LIST}2.html"),
    Page("yunnan", f"{YN_LIST}2.html", 10,
         (f"{YN}/html/2020/zhengwugonggao_0812/3100314.html",
          "云南省交通运输厅关于公布2020年第一批交通运输行政许可事项办理结果的公告", "2020-08-12"),
         (f"{YN}/html/2019/zhengwugonggao_0916/3099321.html",
          "云南省交通运输厅关于2019年国庆节期间小型客车免费通行的公告", "2019-09-16"),
         f"{YN_LIST}3.html"),
    # The last page's 下一页 leads to itself.
    Page("yunnan", f"{YN_LIST}3.html", 5,
         (f"{YN}/html/2019/zhengwugonggao_0802/3099186.html",
          "云南省交通运输厅关于同意调整昆明至丽江等省际客运班线经营方式的批复", "2019-08-02"),
         (f"{YN}/html/2019/zhengwugonggao_0114/3098586.html", "云南省交通运输厅关于做好2019年春运工作的通知",
          "2019-01-14"),
         None),
    # GBK without a declared charset.
    Page("xiangtan", f"{XT_LIST}index.htm", 10,
         (f"{XT_LIST}content_1073674.html",
          "湘潭市交通运输局关于做好2021年元旦春节期间交通运输安全生产工作的通知", "2020-12-18"),
         (f"{XT_LIST}content_1045573.html",
          "湘潭市交通运输局关于征求《湘潭市城市公共交通专项规划（2019-2035年）》意见的公告", "2019-08-13"),
         f"{XT_LIST}index_2.htm"),
    Page("xiangtan", f"{XT_LIST}index_2.htm", 10,
         (f"{XT_LIST}content_1043521.html", "湘潭市交通运输局关于公布行政权力清单和责任清单的公告", "2019-07-08"),
         (f"{XT_LIST}content_1023343.html", "湘潭市交通运输局关于做好2018年主汛期交通运输防汛工作的通知",
          "2018-07-19"),
         f"{XT_LIST}index_3.htm"),
    # 共3页, 第3页 and no 下一页.
    Page("xiangtan", f"{XT_LIST}index_3.htm", 4,
         (f"{XT_LIST}content_1020493.html", "湘潭市交通运输局关于开展农村公路“建管养运”专项督查的通知",
          "2018-05-30"),
         (f"{XT_LIST}content_1012798.html", "湘潭市交通运输局关于做好2018年春运工作的通知", "2018-01-15"),
         None),
    # The generic reader: Shanghai's pages are drawn by a script, so it sees no next page;
    # Yunnan's 下一页 link it follows.
    Page("generic_sh", f"{SH_LIST}index.html", 10,
         (f"{SH_LIST}20241220/8e0c3a170525d10b933b9970556dbb1e.html",
          "上海市交通委员会关于印发《上海市交通运输行业公共数据管理办法》的通知", "2024-12-20"),
         (f"{SH_LIST}20240628/8051fd2d6705c183eb917b6040c1bbbd.html",
          "上海市交通委员会关于印发《上海市慢行交通规划(2024—2035年)》的通知", "2024-06-28"),
         None),
    Page("generic_yn", f"{YN_LIST}index.html", 10,
         (f"{YN}/html/2021/zhengwugonggao_1220/3101799.html",
          "云南省交通运输厅关于做好2022年元旦春节期间交通运输安全生产工作的通知", "2021-12-20"),
         (f"{YN}/html/2020/zhengwugonggao_1014/3100503.html",
          "云南省交通运输厅关于加快推进交通运输行业信用体系建设的实施意见", "2020-10-14"),
         f"{YN_LIST}2.html"),
    Page("generic_yn", f"{YN_LIST}3.html", 5,
         (f"{YN}/html/2019/zhengwugonggao_0802/3099186.html",
          "云南省交通运输厅关于同意调整昆明至丽江等省际客运班线经营方式的批复", "2019-08-02"),
         (f"{YN}/html/2019/zhengwugonggao_0114/3098586.html", "云南省交通运输厅关于做好2019年春运工作的通知",
          "2019-01-14"),
         None),
]
each_html_page = pytest.mark.parametrize("page", HTML_PAGES, ids=str)


def list_page_number(url: str) -> int:
    """1 for index.html / index.htm, N for index_N / N.html."""
    stem = url.rsplit("/", 1)[-1].split(".")[0]
    return 1 if stem == "index" else int(stem.rsplit("_", 1)[-1])


def manifest_rows(url: str) -> list[tuple[str, str, str]]:
    """(url, title, published) of the notices the site builder put on the list page at ``url``."""
    host = urlsplit(url).hostname
    manifest = json.loads((SITES / host / "manifest.json").read_text(encoding="utf-8"))
    number = list_page_number(url)
    return [(notice["url"], notice["title"], notice["published"]) for notice in manifest
            if notice["list_page"] == number]


@each_html_page
def test_list_rows_are_the_notices_the_page_shows(spider_for, page: Page) -> None:
    entries = listed(notices(spider_for(page.source), downloaded(page.url)))
    assert len(entries) == page.rows
    assert entries[0] == page.first
    assert entries[-1] == page.last
    assert entries == manifest_rows(page.url)


@each_html_page
def test_next_page_is_the_one_the_page_links(spider_for, page: Page) -> None:
    assert spider_for(page.source).next_page(downloaded(page.url)) == page.next_url


def test_rows_inside_an_html_comment_are_not_notices(spider_for) -> None:
    """Shanghai's list pages keep two old rows in a comment: the site does not show them."""
    page = HTML_PAGES[0]
    hidden = f"{SH_LIST}20221228/a8461318c22323ae40affd0851156fa4.html"
    assert hidden.split(SH, 1)[1] in fixture_file(page.url).read_text(encoding="utf-8")
    assert hidden not in [entry.url for entry in notices(spider_for("shanghai"), downloaded(page.url))]


# Guangdong: the gkmlpt catalogue (a script shell and a JSON API) and the NFCMS portal


@pytest.mark.parametrize(("source", "index", "walks"), [
    # 人事信息 (2652) has post_count 0: no walk.
    pytest.param("guangzhou", "http://jtj.gz.gov.cn/gkmlpt/index",
                 [f"{GZ_API}/2650?page=1&sid=200029", f"{GZ_API}/2651?page=1&sid=200029"], id="guangzhou"),
    pytest.param("shanwei", "http://www.shanwei.gov.cn/swjtj/gkmlpt/index",
                 [f"{SW_API}/3001?page=1&sid=757", f"{SW_API}/3002?page=1&sid=757"], id="shanwei"),
])
def test_gkmlpt_index_starts_one_api_walk_per_category_with_posts(spider_for, source: str, index: str,
                                                                 walks: list[str]) -> None:
    spider = spider_for(source)
    requests = list(spider.parse_gkmlpt_index(downloaded(index)))
    assert [request.url for request in requests] == walks
    assert all(request.callback == spider.parse_list for request in requests)


def api_rows(url: str) -> list[tuple[str, str, str]]:
    """(url, title, created_at) of every article of a saved API page: the publication time it shows."""
    articles = json.loads(fixture_file(url).read_text(encoding="utf-8"))["articles"]
    return [(article["url"], article["title"], article["created_at"]) for article in articles]


@pytest.mark.parametrize(("source", "url", "rows", "next_url"), [
    ("guangzhou", f"{GZ_API}/2650?page=1&sid=200029", 100, f"{GZ_API}/2650?page=2&sid=200029"),
    # 30 articles, fewer than a page's 100: the last page (the saved page 3 is empty and never asked for).
    ("guangzhou", f"{GZ_API}/2650?page=2&sid=200029", 30, None),
    ("guangzhou", f"{GZ_API}/2651?page=1&sid=200029", 12, None),
    ("shanwei", f"{SW_API}/3001?page=1&sid=757", 8, None),
    ("shanwei", f"{SW_API}/3002?page=1&sid=757", 15, None),
], ids=lambda value: value.rsplit("/", 1)[-1].split("&")[0] if isinstance(value, str) and "/" in value else None)
def test_gkmlpt_api_pages(spider_for, source: str, url: str, rows: int, next_url: str | None) -> None:
    spider = spider_for(source)
    response = downloaded(url)
    entries = listed(notices(spider, response))
    assert len(entries) == rows
    assert entries == api_rows(url)
    assert spider.next_page(response) == next_url


def test_gkmlpt_api_first_row_and_its_publication_time(spider_for) -> None:
    """The first article of 通知公告: display_publish_time 1730175805 is 2024-10-29 12:23:25 China time."""
    entry = notices(spider_for("guangzhou"), downloaded(f"{GZ_API}/2650?page=1&sid=200029"))[0]
    assert listed([entry]) == [("https://jtj.gz.gov.cn/gkmlpt/content/8/8459/post_8459600.html",
                                "广州市交通运输局关于133路等3条公交线路优化调整的通告", "2024-10-29 12:23:25")]
    assert entry.attachments == ()


def test_gkmlpt_api_row_carries_the_files_it_lists(spider_for) -> None:
    """Seed 004's text lives in the PDF its API row names."""
    entries = notices(spider_for("shanwei"), downloaded(f"{SW_API}/3001?page=1&sid=757"))
    summary = next(entry for entry in entries if entry.url.endswith("/post_937660.html"))
    assert (summary.title, summary.date) == ("汕尾市交通运输局2018年政务公开工作总结", "2019-01-15 10:24:36")
    assert summary.attachments == (("http://www.shanwei.gov.cn/swjtj/attachment/0/937/937120/937660.pdf",
                                    "汕尾市交通运输局2018年政务公开工作总结.pdf"),)


PORTAL = f"{GZ}/zwgg/tzgg/"


def portal_rows(number: int) -> list[tuple[str, str, str]]:
    """(portal url, title, date) of the posts the site builder put on portal list page ``number``."""
    manifest = json.loads((SITES / "jtj.gz.gov.cn" / "manifest.json").read_text(encoding="utf-8"))
    return [(notice["portal_url"], notice["title"], notice["published"]) for notice in manifest
            if notice["portal_list_page"] == number]


@pytest.mark.parametrize(("name", "first", "last", "next_url"), [
    ("index.html", ("post_8459600", "广州市交通运输局关于133路等3条公交线路优化调整的通告", "2024-10-29"),
     ("post_8420675", "广州市交通运输局关于印发《广州市水路客运管理办法》的通知", "2023-05-29"),
     f"{PORTAL}index_2.html"),
    ("index_2.html", ("post_8415800", "广州市交通运输局关于内环路地铁站点施工期间交通组织调整的通告", "2023-03-25"),
     ("post_8394275", "广州市交通运输局局属事业单位2022年公开招聘工作人员公告", "2022-06-11"), f"{PORTAL}index_3.html"),
    ("index_3.html",
     ("post_8392925", "广州市交通运输局关于拟认定2022年度交通运输行业平安工地示范项目的公示", "2022-05-24"),
     ("post_8390525", "广州市交通运输局关于广州大道北桥梁检测期间交通组织调整的通告", "2022-04-22"), None),
], ids=["index.html", "index_2.html", "index_3.html"])
def test_portal_rows_lead_to_the_catalogue_view_of_each_post(spider_for, name: str, first: tuple[str, str, str],
                                                            last: tuple[str, str, str], next_url: str | None) -> None:
    """A portal row is read through the gkmlpt view of the same post (it has 文号, 发布机构, 成文日期),
    on the catalogue's own scheme and host (http, as the registry names it); the portal page is the
    fallback."""
    spider = spider_for("guangzhou")
    response = downloaded(f"{PORTAL}{name}")
    entries = notices(spider, response)
    rows = [(entry.fallback_url, entry.title, entry.date) for entry in entries]
    assert rows == portal_rows(list_page_number(name))
    for entry, (post, title, date) in ((entries[0], first), (entries[-1], last)):
        post_id = int(post.removeprefix("post_"))
        assert entry.fallback_url == f"{PORTAL}content/{post}.html"
        assert entry.url == f"http://jtj.gz.gov.cn/gkmlpt/content/{post_id // 1_000_000}/{post_id // 1000}/{post}.html"
        assert (entry.title, entry.date) == (title, date)
    assert spider.next_page(response) == next_url


def test_portal_rows_wait_for_the_catalogue(spider_for) -> None:
    """The catalogue's list context (its publication time) wins: portal rows are marked to wait until
    the rest of the crawl is done, and only the next portal page is asked for at once."""
    spider = spider_for("guangzhou")
    url = f"{PORTAL}index.html"
    out = list(spider.parse_list(downloaded(url)))
    waiting = [request for request in out if request.meta.get(DEFER)]
    assert [(request.url, request.callback) for request in out if request not in waiting] == [
        (f"{PORTAL}index_2.html", spider.parse_list)]
    assert [request.cb_kwargs["entry"].fallback_url for request in waiting] == [
        row[0] for row in portal_rows(1)]
    assert all(request.callback == spider.parse_detail for request in waiting)


# A list walk through the callback, as the engine drives it


@dataclass(frozen=True)
class Walk:
    source: str
    first: str
    last: str
    pages: int

    def __str__(self) -> str:
        return self.source


WALKS = [
    Walk("shanghai", f"{SH_LIST}index.html", f"{SH_LIST}index_3.html", 3),
    Walk("yunnan", f"{YN_LIST}index.html", f"{YN_LIST}3.html", 3),
    Walk("xiangtan", f"{XT_LIST}index.htm", f"{XT_LIST}index_3.htm", 3),
    Walk("guangzhou", f"{GZ_API}/2650?page=1&sid=200029", f"{GZ_API}/2650?page=2&sid=200029", 2),
    Walk("generic_yn", f"{YN_LIST}index.html", f"{YN_LIST}3.html", 3),
]


WALK_ID = "3"  # a walk's id: the index of its column in the registry entry


def walk(spider: NoticeSpider, first: str) -> Iterator[tuple[str, list[object]]]:
    """Follow a list walk from its first page: (page url, what the callback yielded) per page."""
    url: str | None = first
    while url:
        out = list(spider.parse_list(downloaded(url, walk=WALK_ID)))
        yield url, out
        pages = [item for item in out if isinstance(item, scrapy.Request) and item.callback == spider.parse_list]
        assert len(pages) <= 1, f"{url} leads to {len(pages)} list pages"
        assert all(page.meta[WALK] == WALK_ID for page in pages), "a next page left its walk"
        url = pages[0].url if pages else None


@pytest.mark.parametrize("case", WALKS, ids=str)
def test_a_first_crawl_walks_every_list_page_and_asks_for_every_notice(spider_for, case: Walk) -> None:
    spider = spider_for(case.source)
    pages = list(walk(spider, case.first))
    assert len(pages) == case.pages and pages[-1][0] == case.last
    details = [item for _, out in pages for item in out
               if isinstance(item, scrapy.Request) and item.callback == spider.parse_detail]
    expected = [row for url, _ in pages for row in notices(spider_for(case.source), downloaded(url))]
    assert [request.cb_kwargs["entry"] for request in details] == expected
    assert [request.url for request in details] == [entry.url for entry in expected]
    assert not [item for _, out in pages for item in out if isinstance(item, FetchErrorItem)]
    assert spider.crawler.stats.get_value(walk_stat(WALK_ENDED, WALK_ID)) == 1


# Broken and empty list pages

MAINTENANCE = "<html><head><title>系统维护</title></head><body><p>系统维护中，请稍后访问。</p></body></html>".encode()


def truncated(url: str) -> bytes:
    """The fixture page cut off before its first notice row (a download that broke off)."""
    body = fixture_file(url).read_bytes()
    marker = {"jtw.sh.gov.cn": b'<ul class="uli14', "jtyst.yn.gov.cn": b'<div class="list-content',
              "jtj.xiangtan.gov.cn": b"content_", "jtj.gz.gov.cn": b'<ul class="News_list'}[urlsplit(url).hostname]
    return body[: body.index(marker)]


BROKEN_HTML = [
    ("shanghai", f"{SH_LIST}index.html"),
    ("yunnan", f"{YN_LIST}index.html"),
    ("xiangtan", f"{XT_LIST}index.htm"),
    ("guangzhou-portal", f"{PORTAL}index.html"),
    ("generic_yn", f"{YN_LIST}index.html"),
]
BROKEN_API = {
    "cut off": fixture_file(f"{GZ_API}/2650?page=1&sid=200029").read_bytes()[:2000],
    "error page": b"<html><body><h1>502 Bad Gateway</h1></body></html>",
    "no articles": b'{"classify": null, "total": 0, "articles": null}',
    "empty": b"",
}
BROKEN = [
    *[pytest.param(name.split("-")[0], url, body, id=f"{name}-{kind}")
      for name, url in BROKEN_HTML
      for kind, body in (("maintenance", MAINTENANCE), ("cut off", truncated(url)), ("empty", b""))],
    *[pytest.param("guangzhou", f"{GZ_API}/2650?page=1&sid=200029", body, id=f"gkmlpt-{kind}")
      for kind, body in BROKEN_API.items()],
]


@pytest.mark.parametrize(("source", "url", "body"), BROKEN)
def test_a_broken_list_page_is_one_error_and_the_end_of_its_walk(spider_for, source: str, url: str,
                                                                 body: bytes) -> None:
    spider = spider_for(source)
    out = list(spider.parse_list(downloaded(url, body)))
    assert [(type(item), item.url, item.kind, item.role) for item in out] == [
        (FetchErrorItem, url, "empty-list", "list")]
    assert spider.crawler.stats.get_value(walk_stat(WALK_ENDED, "0")) == 1


def test_a_waiting_portal_row_is_dropped_when_the_catalogue_listed_its_post(spider_for) -> None:
    """When the crawl lets the waiting rows go, a row whose post the catalogue has listed meanwhile
    (under its own scheme) is not fetched again, and every other row is fetched once."""
    spider = spider_for("guangzhou")
    out = list(spider.parse_list(downloaded(f"{PORTAL}index.html")))
    details = [item for item in out if item.meta.get(DEFER)]
    listed_by_catalogue, only_on_the_portal = details[0], details[1]
    spider.known.add(listed_by_catalogue.url.replace("http://", "https://"))  # the catalogue's scheme
    assert not spider.still_wanted(listed_by_catalogue)
    assert spider.still_wanted(only_on_the_portal) and not spider.still_wanted(only_on_the_portal)
