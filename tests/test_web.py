"""The web pages and the JSON API, served over real HTTP, and read in a real headless Chromium."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import feedparser
import httpx
import pytest

from archive import open_archive
from archive.search import parse_query
from archive.web import create_app
from tests.conftest import SITES, FixtureSite, crawl, run_zwgk, serving
from tests.fixtures.server import FixtureServer
from tests.test_crawl_attachments import SUMMARY, attach_pdf

# End to end (crawl processes, uvicorn, Chromium): left out by `pytest -m "not slow"`.
pytestmark = pytest.mark.slow

HOSTILE_TITLE = "<script>window.hacked=1</script>关于公路养护的通知"
CHROMIUM = os.environ.get("ZWGK_TEST_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")


@dataclass(frozen=True)
class Served:
    base: str
    db_url: str
    edited: str  # a notice with two versions and an attachment
    hostile_id: int


@pytest.fixture(scope="module")
def served(tmp_path_factory) -> Iterator[Served]:
    """The Shanghai fixture crawled (one notice with a PDF, then edited: two versions), plus a notice whose
    title holds a script, served by `zwgk serve`'s app on 127.0.0.1."""
    root = tmp_path_factory.mktemp("web")
    shutil.copytree(SITES, root / "sites")
    db_url = f"sqlite:///{root}/archive.sqlite3"
    with FixtureServer(root / "sites") as server:
        site = FixtureSite(root / "sites", server)
        edited = attach_pdf(site, SUMMARY)
        assert crawl(site, db_url, "shanghai").returncode == 0
        site.replace_text(edited, "详见附件：", "现将修订后的工作总结印发给你们，详见附件：")
        assert crawl(site, db_url, "shanghai", "--revisit").returncode == 0
    archive = open_archive(db_url)
    hostile = archive.save_notice("shanghai", "https://jtw.sh.gov.cn/zxzfxx/20250101/hostile.html", {
        "title": HOSTILE_TITLE + "\x01", "body": "公路<img src=x onerror=\"window.hacked=2\">养护", "body_original": "",
        "published_at": "2025-01-01", "issuer": "<b>上海</b>"}, "hostile")
    with serving(create_app(archive)) as base:
        yield Served(base, db_url, edited, hostile.document_id)
    archive.close()


def get(served: Served, path: str, **params) -> httpx.Response:
    return httpx.get(served.base + path, params=params, timeout=30)


def test_the_api_searches_like_the_command_line(served: Served) -> None:
    api = get(served, "/api/search", q="公路", sort="date").json()
    cli = json.loads(run_zwgk("search", "公路", "--sort", "date", "--json", "--db", served.db_url).stdout)
    assert api["total"] == cli["total"] > 1
    assert [hit["document_id"] for hit in api["hits"]] == [hit["document_id"] for hit in cli["hits"]]
    assert dict(api["facets"]["source"]) == {"shanghai": api["total"]}
    filtered = get(served, "/api/search", q="公路", year="2023").json()
    assert 0 < filtered["total"] < api["total"] and all(h["published_at"].startswith("2023") for h in filtered["hits"])
    bad = get(served, "/api/search", q="(公路")
    assert bad.status_code == 400 and "without its" in bad.json()["detail"]
    assert get(served, "/api/search", sort="sideways").status_code == 422


def test_the_api_serves_notices_versions_and_diffs(served: Served) -> None:
    document_id = open_archive(served.db_url).find_document(served.edited).id
    notice = get(served, f"/api/notices/{document_id}").json()
    assert notice["url"] == served.edited and [v["version"] for v in notice["versions"]] == [1, 2]
    assert notice["record"]["attachments"][0]["name"].endswith(".pdf")
    first = get(served, f"/api/notices/{document_id}", version=1).json()["record"]
    assert first["version"] == 1 and "修订后" not in first["body"]
    change = get(served, f"/api/notices/{document_id}/diff", a=1, b=2).json()
    assert any(line["op"] == "+" and "修订后的工作总结" in line["text"] for line in change["lines"])
    assert get(served, f"/api/notices/{document_id}", version=9).status_code == 404
    assert get(served, "/api/notices/999999").status_code == 404
    spec = get(served, "/openapi.json").json()
    assert {"/api/search", "/api/notices/{document_id}", "/api/notices/{document_id}/diff"} <= set(spec["paths"])


def test_downloads_feed_and_attachment(served: Served) -> None:
    total = get(served, "/api/search", q="公路").json()["total"]
    csv_bytes = get(served, "/search.csv", q="公路").content
    assert csv_bytes.startswith("\ufeff".encode())
    assert len(list(csv.DictReader(io.StringIO(csv_bytes.decode("utf-8-sig"))))) == total
    assert len(get(served, "/search.jsonl", q="公路").text.splitlines()) == total

    feed = feedparser.parse(get(served, "/feed.atom", q="公路").content)
    assert not feed.bozo and len(feed.entries) == total
    published = [entry.published for entry in feed.entries]
    assert published == sorted(published, reverse=True), "the feed must list the newest first"
    assert feed.entries[0].title == HOSTILE_TITLE  # text, escaped by the XML writer, its control character gone

    document = open_archive(served.db_url).find_document(served.edited)
    attachment = document.versions[-1].attachments[0]
    download = get(served, f"/attachments/{attachment.id}")
    assert download.status_code == 200 and hashlib.sha256(download.content).hexdigest() == attachment.sha256
    assert download.headers["content-disposition"].startswith("attachment;")
    assert download.headers["content-type"] == "application/octet-stream"


def test_crawled_text_is_escaped(served: Served) -> None:
    for path, params in (("/", {"q": "公路养护"}), (f"/notices/{served.hostile_id}", {})):
        page = get(served, path, **params)
        assert page.status_code == 200
        assert "<script>window.hacked" not in page.text and "&lt;script&gt;window.hacked=1&lt;/script&gt;" in page.text
        assert "<img src=x" not in page.text and "<b>上海</b>" not in page.text
        assert "script-src 'none'" in page.headers["content-security-policy"]


def test_a_researcher_in_a_browser(served: Served, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    assert CHROMIUM, "no Chromium: apt-get install chromium (or set ZWGK_TEST_CHROMIUM to a Chromium binary)"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(accept_downloads=True)
        page.goto(served.base + "/")
        page.get_by_label("检索词").fill("公路")
        page.get_by_role("button", name="检索").click()
        page.wait_for_selector("li.hit")
        assert "公路" in page.locator("li.hit mark").first.inner_text()
        assert page.locator("ul[data-facet=source] li").count() >= 1
        assert "共" in page.locator("#total").inner_text()
        assert page.evaluate("window.hacked") is None  # the hostile notice is among the hits, inert

        page.goto(served.base + "/?" + httpx.QueryParams({"q": "工作总结"}).__str__())
        page.locator("li.hit a.title").first.click()
        page.wait_for_selector("table.meta")
        assert page.locator("td[data-field=issuer]").inner_text() == "上海市交通委员会"
        assert page.locator("ol.versions li").count() == 2

        page.get_by_label("旧版本").select_option("1")
        page.get_by_label("新版本").select_option("2")
        page.get_by_role("button", name="比较").click()
        page.wait_for_selector(".lines")
        assert "修订后的工作总结" in page.locator(".lines ins").all_inner_texts()[0] + "".join(
            page.locator(".lines .ins").all_inner_texts())

        page.go_back()
        with page.expect_download() as download_info:
            page.locator("ul.attachments a").first.click()
        saved = tmp_path / "download.pdf"
        download_info.value.save_as(saved)
        assert saved.read_bytes().startswith(b"%PDF")
        browser.close()


def test_pages_that_do_not_exist_say_so(served: Served) -> None:
    missing = get(served, "/notices/999999")
    assert missing.status_code == 404 and "no archived notice 999999" in missing.text and "<html" in missing.text
    assert get(served, "/attachments/999999").status_code == 404
    bad = get(served, "/", q="公路 year:20x")
    assert bad.status_code == 400 and "not a year" in bad.text


def test_each_alert_rule_has_a_feed(served: Served) -> None:
    from archive.alerts import Alerts

    archive = open_archive(served.db_url)
    Alerts(archive).add("web-feed", "工作总结", ["json://127.0.0.1:1/unused"])
    feed = feedparser.parse(get(served, "/alerts/web-feed.atom").content)
    expected = archive.search(parse_query("工作总结"), sort="date", limit=50, facets=False).hits
    assert not feed.bozo and [entry.title for entry in feed.entries] == [hit.title for hit in expected] != []
    assert get(served, "/alerts/nobody.atom").status_code == 404


def test_absurd_ids_are_answered_not_crashed_on(served: Served) -> None:
    for path in ("/attachments/99999999999999999999", "/notices/99999999999999999999", "/api/notices/0"):
        assert get(served, path).status_code in (404, 422), path
