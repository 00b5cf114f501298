"""Extraction checks against 15 real saved pages of Chinese government sites.

Source of the expectations
--------------------------
Every expected value in ``PAGES`` below comes from the ground-truth table in
``tests/corpus/real-pages/README.md`` (read against the saved pages
themselves to settle details), never from zwgk's own output.  Where the README
leaves a choice open, the row's comment says which value was chosen and why.

The pages are read from ``tests/corpus/real-pages/`` (provenance in
``tests/corpus/README.md``).  If that folder is missing, every test here FAILS
(it does not skip): the corpus is part of the repository and its absence is an
error.

Each page is run once through ``zwgk extract FILE --url URL`` in-process
(click's test runner); the JSON record it prints is shared by all tests of
that page.

Comparison rules
----------------
* title: compared with all whitespace removed on both sides; in addition the
  title must be normalised (trimmed, no newline/tab/U+3000/U+00A0, no runs of
  spaces).  The README value is the title a reader sees.
* published_at: ``record["published_at"].startswith(expected)``; a date-only
  expectation accepts any time of day.  The value must be ISO 8601
  (``YYYY-MM-DD`` or ``YYYY-MM-DDTHH:MM[:SS]``).  Where the page shows a date
  and a ``<meta>`` date that differ, the visible one is expected.
* issuer: compared with all whitespace removed on both sides; null expected
  where neither a visible value nor a meta ``ContentSource`` exists.
* doc_number, index_number, written_date: exact equality (null included).
* body: ``body_original`` with all whitespace removed (``\\s`` covers U+00A0
  and U+3000) must start with the README's "first 15" and end with its
  "last 15", copied character for character; ``body`` (the normalised form)
  must be non-empty; neither may contain page chrome (``CHROME``).
* doc_type: the 文种 that ends the title of a 公文; null for news items and
  for 01, a law, whose title ends in 法, which is not a 公文 文种.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from crawler.cli import cli

PAGES_DIR = Path(__file__).resolve().parent / "corpus" / "real-pages"

# Navigation, sharing, printing and footer text that must never leak into a
# notice's body.  Checked against every page: none of these strings occurs in
# the body span of any of the 15 pages (07's QR-code line sits inside its
# container but is not body text; the README excludes it).
CHROME: tuple[str, ...] = (
    "您现在的位置",
    "分享到",
    "打印",
    "关闭窗口",
    "上一篇",
    "下一篇",
    "网站标识码",
    "ICP备",
    "扫一扫在手机打开当前页",
)

ISO_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2})?)?")


@dataclass(frozen=True)
class Page:
    """Expected extraction result for one saved page."""

    file: str
    url: str
    title: str
    published_at: str
    issuer: str | None
    doc_number: str | None
    index_number: str | None
    written_date: str | None
    doc_type: str | None
    body_first: str
    body_last: str


PAGES: list[Page] = [
    # TRS 政务公开 page with a metadata table.  <title> is the generic
    # "政务公开信息内容页"; the title is the 名称 row.  published_at: the
    # table's 公开日期 2018-01-01, not meta PubDate 2018-03-14 11:30.
    # issuer: the table's 发布机构, not meta Author (武汉市市场监督管理局).
    # 文号 cell is empty; no 成文日期 field.  doc_type null: the title ends in
    # 法, a law, not one of the 公文 文种.
    Page(
        file="01_gsj.wuhan.gov.cn_fbzdjzf.html",
        url="http://gsj.wuhan.gov.cn:9091/zwgk/whgszwgk/zwgk/zcfg/fl/201803/t20180314_224599.html",
        title="中华人民共和国反不正当竞争法",
        published_at="2018-01-01",
        issuer="武汉市工商局",
        doc_number=None,
        index_number="Whgs-16-02-010",
        written_date=None,
        doc_type=None,
        body_first="第一条为了促进社会主义市场经济",
        body_last="法自2018年1月1日起施行。",
    ),
    # Hanweb news item.  Visible 发布日期 2016-11-22 (meta PubDate adds 09:53,
    # same day).  issuer: visible 信息来源.
    Page(
        file="02_fgw.zj.gov.cn_dqgdzctz.html",
        url="http://fgw.zj.gov.cn/art/2016/11/22/art_1621004_30332664.html",
        title="1-10月德清县固定资产投资结构趋稳趋优",
        published_at="2016-11-22",
        issuer="省发改委",
        doc_number=None,
        index_number=None,
        written_date=None,
        doc_type=None,
        body_first="1-10月，全县固定资产投资完",
        body_last="结构趋稳趋优。（德清县发改局）",
    ),
    # TRS news item.  The README gives only the relative meta Url
    # (t20190918_693227.shtml); the absolute URL is the one the page's own
    # share script uses.  Title: the <h2>, without the <h3> subtitle.  Trap:
    # the info spans' alt attributes carry stale values (时间：2017-11-08 20:26,
    # 来源：省政府办公厅); the visible text is expected.
    Page(
        file="03_www.shanxi.gov.cn_ppslx.html",
        url="http://www.shanxi.gov.cn/yw/sxyw/201909/t20190918_693227.shtml",
        title="山西品牌丝路行（南美站）正式启动",
        published_at="2019-09-18T06:23",
        issuer="山西日报",
        doc_number=None,
        index_number=None,
        written_date=None,
        doc_type=None,
        body_first="图为山西品牌丝路行（南美站）启",
        body_last="乌拉圭、阿根廷举行。（张巨峰）",
    ),
    # 国务院公报 article.  The README gives no URL: this one follows gov.cn's
    # 公报 pattern with the page's meta manuscriptId 711039.  Title: <title>
    # carries a full-width space in "2007　年末"; it is normalised away.
    # published_at: nothing visible, so meta firstpublishedtime
    # 2007-08-20-23:59:59 (date-only prefix).  issuer null: no visible source
    # and no meta ContentSource (meta author 马娟 is an editor).
    # written_date: adoption date in the body, （2007年6月29日…通过）.
    Page(
        file="04_www.gov.cn_gwygb2007-23_jueyi.html",
        url="https://www.gov.cn/gongbao/content/2007/content_711039.htm",
        title="全国人民代表大会常务委员会关于批准财政部发行特别国债购买外汇及调整2007年末国债余额限额的决议",
        published_at="2007-08-20",
        issuer=None,
        doc_number=None,
        index_number=None,
        written_date="2007-06-29",
        doc_type="决议",
        body_first="全国人民代表大会常务委员会关于",
        body_last="额调整为53365.53亿元。",
    ),
    # Press-conference statement (news).  URL from the file's first-line
    # comment.  issuer null: 责任编辑：系统管理员 is not an issuer and there
    # is no meta ContentSource.
    Page(
        file="05_www.cmse.gov.cn_xwfbh20120624.html",
        url="http://www.cmse.gov.cn/ztbd/xwfbh/201206/t20120624_43188.html",
        title="天宫一号与神舟九号载人交会对接任务第二场新闻发布会",
        published_at="2012-06-24",
        issuer=None,
        doc_number=None,
        index_number=None,
        written_date=None,
        doc_type=None,
        body_first="2012年6月24日中国载人航",
        body_last="。下面，我愿意回答大家的提问。",
    ),
    # News item.  The README gives no URL: content-169-NNNNNN.html form with
    # an invented id.  Title without the "保定市人民政府网——" prefix of
    # <title>/meta ArticleTitle; the space between its two clauses is in the
    # visible heading (ignored by the whitespace-free comparison).
    # published_at: visible 发布时间 2021-04-07, not meta PubDate 2021-04-09.
    # issuer: visible 信息发布人：管理员 is not an issuer, so meta ContentSource.
    Page(
        file="06_www.baoding.gov.cn_xwfbh20210407.html",
        url="http://www.baoding.gov.cn/content-169-385600.html",
        title="保定市统筹推动城市和产业转型升级 着力构建“医车电数游”五大优势产业集群",
        published_at="2021-04-07",
        issuer="保定市人民政府网",
        doc_number=None,
        index_number=None,
        written_date=None,
        doc_type=None,
        body_first="唐尧网讯（记者刘向真）4月7日",
        body_last="“创新型保定”提供强大源动力。",
    ),
    # 印发 notice (cover letter + PDF link).  The README gives no URL: built
    # from the article id in the attachment paths (174084153/files/…), the
    # column list /fzgg/tzgg/list.shtml and the 2025-02 publication month.
    # The <h1> title has a <br> after 印发.  published_at: visible 日期
    # 2025-02-26 11:54, not meta PubDate 2025-03-27.  issuer: visible 来源 is
    # empty, so meta ContentSource 产业处.  written_date: the 落款 date.
    # The body's last 15 exclude the in-container QR-code line.
    Page(
        file="07_fzgg.gansu.gov.cn_sbgx.html",
        url="https://fzgg.gansu.gov.cn/fzgg/tzgg/202502/174084153.shtml",
        title="甘肃省发展和改革委员会等部门关于印发《甘肃省关于加力支持工业企业设备更新的若干措施》的通知",
        published_at="2025-02-26T11:54",
        issuer="产业处",
        doc_number=None,
        index_number=None,
        written_date="2025-02-25",
        doc_type="通知",
        body_first="各市、自治州人民政府、兰州新区",
        body_last="持工业企业设备更新的若干措施》",
    ),
    # gov.cn 政策文件库 excerpt: all metadata from the table (成文日期
    # 2018年12月04日, 发布日期 2018年12月11日).
    Page(
        file="08_www.gov.cn_content_5347765_excerpt.html",
        url="http://www.gov.cn/zhengce/content/2018-12/11/content_5347765.htm",
        title="国务院办公厅关于国家综合性消防救援车辆悬挂应急救援专用号牌有关事项的通知",
        published_at="2018-12-11",
        issuer="国务院办公厅",
        doc_number="国办发〔2018〕114号",
        index_number="000014349/2018-00215",
        written_date="2018-12-04",
        doc_type="通知",
        body_first="国务院办公厅关于国家综合性消防",
        body_last="样图。（三）大型车辆涂装样图。",
    ),
    # Same template as 08; the body ends with the signature and date.
    Page(
        file="09_www.gov.cn_content_5346276_excerpt.html",
        url="http://www.gov.cn/zhengce/content/2018-12/06/content_5346276.htm",
        title="国务院办公厅关于2019年部分节假日安排的通知",
        published_at="2018-12-06",
        issuer="国务院办公厅",
        doc_number="国办发明电〔2018〕15号",
        index_number="000014349/2018-00213",
        written_date="2018-12-04",
        doc_type="通知",
        body_first="国务院办公厅关于2019年部分",
        body_last="务院办公厅2018年12月4日",
    ),
    # Same template as 08.
    Page(
        file="10_www.gov.cn_content_5360002_excerpt.html",
        url="http://www.gov.cn/zhengce/content/2019-01/22/content_5360002.htm",
        title="国务院办公厅关于开展城镇小区配套幼儿园治理工作的通知",
        published_at="2019-01-22",
        issuer="国务院办公厅",
        doc_number="国办发〔2019〕3号",
        index_number="000014349/2019-00002",
        written_date="2019-01-09",
        doc_type="通知",
        body_first="国务院办公厅关于开展城镇小区配",
        body_last="19年1月9日（此件公开发布）",
    ),
    # Same template as 08.  印发 notice: the body runs on into the attached
    # 工作方案 and ends there, not with a signature.
    Page(
        file="11_www.gov.cn_content_5338761_excerpt.html",
        url="http://www.gov.cn/zhengce/content/2018-11/09/content_5338761.htm",
        title="国务院办公厅关于印发《政府网站集约化试点工作方案》的通知",
        published_at="2018-11-09",
        issuer="国务院办公厅",
        doc_number="国办函〔2018〕71号",
        index_number="000014349/2018-00204",
        written_date="2018-10-27",
        doc_type="通知",
        body_first="国务院办公厅关于印发《政府网站",
        body_last="地区本部门政府网站集约化工作。",
    ),
    # NFCMS 政府公报 excerpt.  The README names only the issue folder and post
    # id 12212437: URL in NFCMS's content/post_<id>.html form.
    # published_at: visible 信息提供日期 2025-06-04 (meta pubDate and the
    # commented-out 发布日期 2025-06-04 16:40 agree on the day).  issuer:
    # visible 信息来源, two bodies.  索引号/文号 are empty (in a commented-out
    # block), so null.  written_date: the date line at the top of the body.
    Page(
        file="12_www.sz.gov.cn_zfgb2025-17_tjgb_excerpt.html",
        url="https://www.sz.gov.cn/zfgb/2025/gb1374/content/post_12212437.html",
        title="深圳市2024年国民经济和社会发展统计公报",
        published_at="2025-06-04",
        issuer="深圳市统计局  国家统计局深圳调查队",
        doc_number=None,
        index_number=None,
        written_date="2025-05-22",
        doc_type="公报",
        body_first="深圳市统计局国家统计局深圳调查",
        body_last="；其他数据均来自深圳市统计局。",
    ),
    # Shanghai ivs excerpt.  issuer: the visible source line under the title
    # (#ivs_date, both joint issuers; same as meta Author), preferred to meta
    # ContentSource, which names only 上海市统计局.  written_date null ON
    # PURPOSE: the signature carrying 2025年3月20日 fell in an excerpt gap, so
    # the date is only inside an HTML comment and not on the page.
    Page(
        file="13_tjj.sh.gov.cn_tjgb2024_excerpt.html",
        url="http://tjj.sh.gov.cn/tjgb/20250324/a7fe18c6d5c24d66bfca89c5bb4cdcfb.html",
        title="2024年上海市国民经济和社会发展统计公报",
        published_at="2025-03-25",
        issuer="上海市统计局 国家统计局上海调查总队",
        doc_number=None,
        index_number=None,
        written_date=None,
        doc_type="公报",
        body_first="2024年，上海坚持以习近平新",
        body_last="计局、国家统计局上海调查总队。",
    ),
    # Same template as 08; 发文机关 is 国务院 itself.
    Page(
        file="14_www.gov.cn_content_5342665_excerpt.html",
        url="http://www.gov.cn/zhengce/content/2018-11/23/content_5342665.htm",
        title="国务院关于支持自由贸易试验区深化改革创新若干措施的通知",
        published_at="2018-11-23",
        issuer="国务院",
        doc_number="国发〔2018〕38号",
        index_number="000014349/2018-00207",
        written_date="2018-11-07",
        doc_type="通知",
        body_first="国务院关于支持自由贸易试验区深",
        body_last="8年11月7日（此件公开发布）",
    ),
    # Same template as 08.  Published in 2019, numbered 〔2018〕.
    Page(
        file="15_www.gov.cn_content_5354526_excerpt.html",
        url="http://www.gov.cn/zhengce/content/2019-01/03/content_5354526.htm",
        title="国务院办公厅关于抓好赋予科研机构和人员更大自主权有关文件贯彻落实工作的通知",
        published_at="2019-01-03",
        issuer="国务院办公厅",
        doc_number="国办发〔2018〕127号",
        index_number="000014349/2018-00225",
        written_date="2018-12-26",
        doc_type="通知",
        body_first="国务院办公厅关于抓好赋予科研机",
        body_last="年12月26日（此件公开发布）",
    ),
]

each_page = pytest.mark.parametrize("page", PAGES, ids=[page.file for page in PAGES])


def _squash(text: str) -> str:
    """Remove all whitespace (``\\s`` includes U+00A0 and U+3000)."""
    return re.sub(r"\s", "", text)


def _require_corpus() -> None:
    if not PAGES_DIR.is_dir():
        pytest.fail(
            f"real-page corpus not found at {PAGES_DIR}; these tests need the saved "
            "pages in tests/corpus/real-pages/",
            pytrace=False,
        )


@functools.cache
def _extract(page: Page) -> dict[str, Any]:
    """Run ``zwgk extract`` on one saved page and return its JSON record."""
    _require_corpus()
    path = PAGES_DIR / page.file
    assert path.is_file(), f"saved page missing from the corpus: {path}"
    result = CliRunner().invoke(cli, ["extract", str(path), "--url", page.url])
    assert result.exit_code == 0, (
        f"zwgk extract exited with {result.exit_code}:\n{result.output}\n{result.exception!r}"
    )
    # stdout only: since click 8.2, result.output also carries stderr.
    record = json.loads(result.stdout)
    assert isinstance(record, dict), f"expected one JSON object, got {type(record).__name__}"
    return record


def test_table_covers_every_saved_page() -> None:
    _require_corpus()
    on_disk = sorted(path.name for path in PAGES_DIR.glob("*.html"))
    assert on_disk == [page.file for page in PAGES]


@each_page
def test_title(page: Page) -> None:
    title = _extract(page)["title"]
    assert isinstance(title, str)
    assert title == title.strip(), f"title not trimmed: {title!r}"
    assert not re.search(r"[^\S ]| {2,}", title), f"title whitespace not normalised: {title!r}"
    assert _squash(title) == _squash(page.title)


@each_page
def test_published_at(page: Page) -> None:
    published_at = _extract(page)["published_at"]
    assert isinstance(published_at, str), f"published_at is {published_at!r}"
    assert ISO_DATETIME.fullmatch(published_at), f"not ISO 8601: {published_at!r}"
    assert published_at.startswith(page.published_at)


@each_page
def test_issuer(page: Page) -> None:
    issuer = _extract(page)["issuer"]
    if page.issuer is None:
        assert issuer is None
    else:
        assert isinstance(issuer, str), f"issuer is {issuer!r}"
        assert _squash(issuer) == _squash(page.issuer)


@each_page
def test_doc_number(page: Page) -> None:
    assert _extract(page)["doc_number"] == page.doc_number


@each_page
def test_index_number(page: Page) -> None:
    assert _extract(page)["index_number"] == page.index_number


@each_page
def test_written_date(page: Page) -> None:
    assert _extract(page)["written_date"] == page.written_date


@each_page
def test_body_start_and_end(page: Page) -> None:
    record = _extract(page)
    assert isinstance(record["body"], str) and record["body"].strip(), "body is empty"
    body_original = _squash(record["body_original"])
    assert body_original.startswith(page.body_first), f"body starts {body_original[:30]!r}"
    assert body_original.endswith(page.body_last), f"body ends {body_original[-30:]!r}"


@each_page
def test_body_has_no_page_chrome(page: Page) -> None:
    record = _extract(page)
    for field in ("body_original", "body"):
        text = _squash(record[field])
        leaked = [chrome for chrome in CHROME if chrome in text]
        assert not leaked, f"{field} contains page chrome: {leaked}"


@each_page
def test_doc_type(page: Page) -> None:
    assert _extract(page)["doc_type"] == page.doc_type
