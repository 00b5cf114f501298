"""The one harvest path: every way of reading a notice (crawl, 304 re-check, reextract, extract) agrees.

The Shanwei gkmlpt notice 937660 keeps its text in a PDF. Here its page loses the
attachment block, as gkmlpt pages that render attachments by script do, so only the
catalogue API's ``attachment`` list names the file.
"""

from __future__ import annotations

import json
import re

import pytest

from tests.conftest import FixtureSite, crawl, run_zwgk, summary_row

NOTICE = "http://www.shanwei.gov.cn/swjtj/gkmlpt/content/0/937/post_937660.html"
pytestmark = pytest.mark.slow

PDF_URL = "http://www.shanwei.gov.cn/swjtj/attachment/0/937/937120/937660.pdf"
PDF_NAME = "汕尾市交通运输局2018年政务公开工作总结.pdf"


def name_the_pdf_only_in_the_api(site: FixtureSite) -> None:
    page = site.path(NOTICE)
    html = page.read_text(encoding="utf-8")
    without_block = re.sub(r'<div class="attachment">.*?</div>\n', "", html, flags=re.S)
    assert without_block != html and "937660.pdf" not in without_block.split("<script>window._CONFIG")[0]
    page.write_text(without_block, encoding="utf-8")


def versions_of(db_url: str, url: str) -> list[dict]:
    result = run_zwgk("export", "--all-versions", "--db", db_url)
    assert result.returncode == 0, result.stderr
    return [record for record in map(json.loads, result.stdout.splitlines()) if record["url"] == url]


def assert_one_version_with_the_pdf(site: FixtureSite, db_url: str) -> None:
    [version] = versions_of(db_url, NOTICE)
    [attachment] = version["attachments"]
    assert (attachment["url"], attachment["name"]) == (PDF_URL, PDF_NAME)
    assert attachment["size"] == site.path(PDF_URL).stat().st_size
    # The manifest's note: 公开方式 is only in the attached PDF.
    assert version["disclosure"] == "主动公开"


def test_an_attachment_only_the_list_api_names_never_makes_a_false_version(site: FixtureSite, sqlite_url: str) -> None:
    name_the_pdf_only_in_the_api(site)
    first = crawl(site, sqlite_url, "shanwei")
    assert first.returncode == 0, first.stdout + first.stderr
    assert_one_version_with_the_pdf(site, sqlite_url)

    revisit = crawl(site, sqlite_url, "shanwei", "--revisit")
    assert summary_row(revisit, "shanwei")["changed"] == "0", revisit.stdout
    [last_run, *_] = json.loads(run_zwgk("runs", "shanwei", "--json", "--db", sqlite_url).stdout)
    assert last_run["not_modified"] > 0  # the page answered 304: its attachment was re-checked alone
    assert_one_version_with_the_pdf(site, sqlite_url)

    reextracted = run_zwgk("reextract", "shanwei", "--db", sqlite_url)
    assert reextracted.returncode == 0, reextracted.stderr
    assert_one_version_with_the_pdf(site, sqlite_url)

    again = crawl(site, sqlite_url, "shanwei", "--full")
    assert summary_row(again, "shanwei")["changed"] == "0", again.stdout
    assert_one_version_with_the_pdf(site, sqlite_url)
    events = run_zwgk("history", NOTICE, "--json", "--db", sqlite_url)
    assert [event["kind"] for event in json.loads(events.stdout)["events"]] == ["new"]
