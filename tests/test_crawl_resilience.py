"""What a crawl does when things go wrong: nothing is lost, nothing spurious is archived."""

from __future__ import annotations

import asyncio
import json

import pytest
from scrapy import Spider
from scrapy.utils.test import get_crawler

from archive import ArchiveError, open_archive
from crawler.context import open_crawl_archive, plan_crawl
from crawler.items import PageItem
from crawler.pipelines import ArchivePipeline
from crawler.runs import RunRecorder
from spiders.registry import load_sources
from tests.conftest import FixtureSite, crawl, run_zwgk, summary_row

HOST = "jtw.sh.gov.cn"
LIST_1 = "https://jtw.sh.gov.cn/zxzfxx/index.html"


def archived_urls(db_url: str) -> set[str]:
    result = run_zwgk("export", "--db", db_url)
    return {json.loads(line)["url"] for line in result.stdout.splitlines()}


@pytest.mark.slow
def test_an_interrupted_first_crawl_is_completed_by_the_next_one(site: FixtureSite, sqlite_url: str) -> None:
    stopped = crawl(site, sqlite_url, "shanghai", "-s", "CLOSESPIDER_ITEMCOUNT=3")
    assert stopped.returncode == 1 and summary_row(stopped, "shanghai")["status"] == "interrupted"
    assert 0 < len(archived_urls(sqlite_url)) < len(site.manifest(HOST))
    resumed = crawl(site, sqlite_url, "shanghai")
    assert resumed.returncode == 0
    assert archived_urls(sqlite_url) == {n["url"] for n in site.manifest(HOST)}


@pytest.mark.slow
def test_a_page_that_failed_is_fetched_again_by_the_next_run(site: FixtureSite, sqlite_url: str) -> None:
    older = next(n["url"] for n in site.manifest(HOST) if n["list_page"] == 3)
    site.server.set_status("/" + older.split("://", 1)[1], 503)
    first = crawl(site, sqlite_url, "shanghai")
    assert summary_row(first, "shanghai")["errors"] == "1" and older not in archived_urls(sqlite_url)
    site.server.clear_status()
    second = crawl(site, sqlite_url, "shanghai")
    assert summary_row(second, "shanghai")["new"] == "1"
    assert older in archived_urls(sqlite_url)


@pytest.mark.slow
def test_a_challenge_page_is_not_archived_as_the_notice(site: FixtureSite, sqlite_url: str) -> None:
    notice = site.manifest(HOST)[1]["url"]
    path = site.path(notice)
    real = path.read_bytes()
    path.write_text("<html><head><script>document.cookie='x=1';location.reload()</script></head></html>")
    first = crawl(site, sqlite_url, "shanghai")
    row = summary_row(first, "shanghai")
    assert (row["new"], row["errors"]) == (str(len(site.manifest(HOST)) - 1), "1")
    assert "a challenge page" in first.stderr and notice not in archived_urls(sqlite_url)
    path.write_bytes(real)
    crawl(site, sqlite_url, "shanghai")
    assert notice in archived_urls(sqlite_url)


@pytest.mark.slow
def test_a_malformed_link_or_an_empty_list_is_recorded_and_the_rest_crawled(site: FixtureSite, sqlite_url: str) -> None:
    bad = '<li><a href="http://jtw.sh.gov.cn:99999/zxzfxx/20241221/0123456789abcdef0123456789abcdef.html">坏链接</a></li>'
    site.replace_text(LIST_1, '<ul class="uli14', f'<ul class="uli14 extra">{bad}</ul><ul class="uli14')
    result = crawl(site, sqlite_url, "shanghai")
    row = summary_row(result, "shanghai")
    assert (row["status"], row["new"], row["errors"]) == ("completed", str(len(site.manifest(HOST))), "1")

    site.replace_text(LIST_1, f'<ul class="uli14 extra">{bad}</ul>', "")
    list_3 = LIST_1.replace("index.html", "index_3.html")
    # A redesign: the rows now sit in markup the spider does not know.
    site.replace_text(list_3, '<ul class="uli14 nowrapli list-date pageList"', '<ul class="news-rows"')
    full = crawl(site, sqlite_url, "shanghai", "--full")
    assert "no notice links" in full.stderr and summary_row(full, "shanghai")["errors"] == "1"


@pytest.mark.slow
def test_a_revisited_page_is_read_with_its_list_context(site: FixtureSite, sqlite_url: str) -> None:
    """A page that shows no date of its own gets the list's date, on first sight and on every re-check."""
    notice = site.manifest(HOST)[0]
    url = notice["url"]
    content = site.path(url).read_text(encoding="utf-8")
    for dated in ('<meta name="PubDate" content="2024-12-20 09:30:00">', '(2024-12-20)'):
        content = content.replace(dated, "")
    site.path(url).write_text(content, encoding="utf-8")
    crawl(site, sqlite_url, "shanghai")
    site.replace_text(url, '<span id="count">', '<span id="count">7')
    revisit = crawl(site, sqlite_url, "shanghai", "--revisit")
    assert summary_row(revisit, "shanghai")["changed"] == "0"
    records = [json.loads(line) for line in run_zwgk("export", "--db", sqlite_url).stdout.splitlines()]
    assert next(r for r in records if r["url"] == url)["published_at"] == notice["published"]


def test_an_archive_failure_is_recorded_not_lost(sqlite_url: str, monkeypatch) -> None:
    crawler = get_crawler(Spider, {"ZWGK_DB": sqlite_url})
    spider = Spider(name="shanghai")
    spider.context = plan_crawl(open_crawl_archive(crawler.settings), load_sources()["shanghai"])
    crawler.spider = spider
    RunRecorder.from_crawler(crawler).spider_opened(spider)  # the run the error is recorded against
    pipeline = ArchivePipeline.from_crawler(crawler)
    pipeline.open_spider()

    def refuse(*args, **kwargs):
        raise ArchiveError("could not archive: value too long")

    monkeypatch.setattr(pipeline.archive, "save_notice", refuse)
    page = "<html><body><div id='ivs_content'><p>正文内容足够长的通知。</p></div></body></html>".encode()
    asyncio.run(pipeline.process_item(PageItem("shanghai", "https://jtw.sh.gov.cn/zxzfxx/20240101/a.html", page)))
    assert crawler.stats.get_value("zwgk/errors") == 1
    archive = open_archive(sqlite_url)
    with archive.session() as session:
        from archive.models import CrawlError
        errors = session.query(CrawlError).all()
    assert [(e.kind, e.url) for e in errors] == [("archive", "https://jtw.sh.gov.cn/zxzfxx/20240101/a.html")]


@pytest.mark.slow
def test_redirected_notices_stay_on_the_fixture_and_under_the_listed_url(site: FixtureSite, sqlite_url: str) -> None:
    """An absolute redirect to the real host is mapped too (tests never reach the internet)."""
    listed = site.manifest(HOST)[0]["url"]
    moved = listed.replace("/zxzfxx/", "/zxzfxx/moved/")
    site.path(moved).parent.mkdir(parents=True)
    site.path(listed).rename(site.path(moved))
    site.server.set_redirect("/" + listed.split("://", 1)[1], moved)
    result = crawl(site, sqlite_url, "shanghai")
    row = summary_row(result, "shanghai")
    assert (row["new"], row["errors"]) == (str(len(site.manifest(HOST))), "0"), result.stderr
    assert listed in archived_urls(sqlite_url)
    again = crawl(site, sqlite_url, "shanghai")
    assert summary_row(again, "shanghai")["pages"] == "1"  # the listed URL is known: no page beyond list 1
