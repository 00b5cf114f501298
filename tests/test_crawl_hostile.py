"""End to end against a hostile Shanghai fixture site (tests/fixtures/hostile.py), on both backends.

Whatever a page or a file answers (errors, resets, drips, hangs, bombs, challenges, soft
404s, broken replacement files), the archive gains no document and no version from it,
every failure is recorded against its URL and run with its reason, and no request or
crawl outlives its deadline.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import zlib
from collections.abc import Callable

import pytest
from sqlalchemy import select

from archive import open_archive
from archive.models import CrawlError, Document, RawPage, Version
from tests.conftest import FAST_CRAWL, ROOT, FixtureSite, StderrLines, crawl, run_zwgk, summary_row, wait_for
from tests.fixtures import hostile
from tests.fixtures.server import Behaviour
from tests.test_crawl_attachments import PDF_URL, SUMMARY, attach_pdf, versions_of
from tests.test_extract_files import make_pdf

pytestmark = pytest.mark.slow

HOST = "jtw.sh.gov.cn"
# Short deadlines and one retry keep a test's hangs and drips to seconds.
QUICK = ["-s", "DOWNLOAD_TIMEOUT=3", "-s", "RETRY_TIMES=1"]

# Per notice (by its place in the manifest): how its page misbehaves, and the error kind and
# words the run records for it.
PageFault = Callable[[str], Behaviour]
PAGE_FAULTS: list[tuple[PageFault, str, str]] = [
    (lambda page: hostile.unavailable(503, retry_after=1), "http-503", "answered 503"),
    (lambda page: hostile.unavailable(502, retry_after=1), "http-502", "answered 502"),
    (lambda page: hostile.unavailable(500, retry_after=1), "http-500", "answered 500"),
    (lambda page: hostile.ResetInHeaders(), "download", "broke off"),
    (lambda page: hostile.Truncated(page.encode()), "download", "broke off"),
    (lambda page: hostile.Answer(hostile.RUISHU_412.encode(), 412), "http-412", "answered 412"),
    (lambda page: hostile.Answer(hostile.COOKIE_RELOAD_200.encode()), "challenge", "请开启JavaScript"),
    (lambda page: hostile.Answer(hostile.SECURITY_CHECK_200.encode()), "challenge", "安全验证"),
    (lambda page: hostile.Answer(hostile.in_article(page, "您访问的页面不存在")), "soft-404", "页面不存在"),
    (lambda page: hostile.Answer(hostile.in_article(page, "该信息已删除")), "soft-404", "信息已删除"),
    (lambda page: hostile.Answer(hostile.error_box_in_chrome(page, "抱歉，页面不存在或已被删除")), "soft-404",
     "页面不存在"),
    (lambda page: hostile.Answer(b""), "no-notice", "no notice text"),
    (lambda page: hostile.Endless(content_type="text/html"), "too-large", "DOWNLOAD_MAXSIZE"),
    (lambda page: hostile.gzip_bomb(64 * 1024 ** 2), "too-large", "DOWNLOAD_MAXSIZE"),
    (lambda page: hostile.Hang(), "timeout", "timed out"),
    (lambda page: hostile.Drip(), "timeout", "timed out"),
]


def path_of(url: str) -> str:
    return "/" + url.split("://", 1)[1]


def misbehave(site: FixtureSite) -> dict[str, tuple[str, str]]:
    """Give the first notices their faults, the next two a redirect loop; the expected (kind, words) by URL."""
    notices = [n["url"] for n in site.manifest(HOST)]
    expected = {}
    for url, (fault, kind, words) in zip(notices, PAGE_FAULTS, strict=False):
        site.server.misbehave(path_of(url), fault(site.path(url).read_text(encoding="utf-8")))
        expected[url] = (kind, words)
    first, second = notices[len(PAGE_FAULTS):len(PAGE_FAULTS) + 2]
    site.server.set_redirect(path_of(first), second)
    site.server.set_redirect(path_of(second), first)
    expected[first] = expected[second] = ("redirect-loop", "loop")
    return expected


def errors_of_run(db_url: str, run: int) -> dict[str, tuple[str, str]]:
    with open_archive(db_url).session() as session:
        return {e.url: (e.kind, e.message) for e in session.scalars(select(CrawlError).where(CrawlError.run_id == run))}


def last_run(db_url: str) -> dict:
    return json.loads(run_zwgk("runs", "shanghai", "--json", "--db", db_url).stdout)[0]


def version_counts(db_url: str) -> dict[str, int]:
    records = map(json.loads, run_zwgk("export", "--all-versions", "--db", db_url).stdout.splitlines())
    counts: dict[str, int] = {}
    for record in records:
        counts[record["url"]] = counts.get(record["url"], 0) + 1
    return counts


def assert_recorded(errors: dict[str, tuple[str, str]], expected: dict[str, tuple[str, str]]) -> None:
    wrong = {url: errors.get(url) for url, (kind, words) in expected.items()
             if url not in errors or errors[url][0] != kind or words not in errors[url][1]}
    assert not wrong, json.dumps(wrong, ensure_ascii=False, indent=1)


def test_hostile_pages_make_no_document_and_no_version(site: FixtureSite, db_url: str) -> None:
    total = len(site.manifest(HOST))
    expected = misbehave(site)
    first = crawl(site, db_url, "shanghai", *QUICK)
    assert summary_row(first, "shanghai")["status"] == "completed", first.stderr
    assert set(version_counts(db_url)).isdisjoint(expected)  # no document from any of them
    assert len(version_counts(db_url)) == total - len(expected)
    assert_recorded(errors_of_run(db_url, last_run(db_url)["id"]), expected)

    site.server.clear_behaviours()
    site.server.clear_redirects()
    good = crawl(site, db_url, "shanghai", *QUICK)
    assert summary_row(good, "shanghai")["errors"] == "0", good.stderr
    assert version_counts(db_url) == dict.fromkeys((n["url"] for n in site.manifest(HOST)), 1)

    misbehave(site)
    revisit = crawl(site, db_url, "shanghai", "--revisit", *QUICK)
    row = summary_row(revisit, "shanghai")
    assert (row["changed"], row["errors"]) == ("0", str(len(expected))), revisit.stderr
    assert version_counts(db_url) == dict.fromkeys((n["url"] for n in site.manifest(HOST)), 1)
    run = last_run(db_url)
    assert run["errors"] == len(expected)
    assert_recorded(errors_of_run(db_url, run["id"]), expected)


def test_pages_that_are_only_badly_labelled_are_read_right(site: FixtureSite, db_url: str) -> None:
    """GBK bytes labelled UTF-8 and a page without validators are the notice: read right, no second version."""
    gbk, bare = site.manifest(HOST)[:2]
    for notice, fault in ((gbk, hostile.gbk_labelled_utf8), (bare, lambda page: hostile.Answer(page.encode()))):
        site.server.misbehave(path_of(notice["url"]), fault(site.path(notice["url"]).read_text(encoding="utf-8")))
    first = crawl(site, db_url, "shanghai", *QUICK)
    assert summary_row(first, "shanghai")["errors"] == "0", first.stderr
    records = {r["url"]: r for r in map(json.loads, run_zwgk("export", "--db", db_url).stdout.splitlines())}
    assert [records[n["url"]]["title"] for n in (gbk, bare)] == [gbk["title"], bare["title"]]
    site.server.clear_behaviours()
    again = crawl(site, db_url, "shanghai", "--revisit", *QUICK)
    assert summary_row(again, "shanghai")["changed"] == "0", again.stderr
    assert set(version_counts(db_url).values()) == {1}


def test_a_broken_replacement_attachment_keeps_the_last_good_copy(site: FixtureSite, db_url: str) -> None:
    notice = attach_pdf(site, SUMMARY)
    crawl(site, db_url, "shanghai", *QUICK)
    [good] = versions_of(db_url, notice)[0]["attachments"]
    replacements = [
        (hostile.Answer(b"<!DOCTYPE html><html><body><h1>404 Not Found</h1></body></html>",
                        content_type="application/pdf"), "HTML page was served"),
        (hostile.Answer(make_pdf(SUMMARY, encrypt="secret"), content_type="application/pdf"), "encrypted"),
        (hostile.Endless(), "larger than"),
        (hostile.Hang(), "took longer than 3"),
    ]
    for replacement, reason in replacements:
        site.server.misbehave(path_of(PDF_URL), replacement)
        revisit = crawl(site, db_url, "shanghai", "--revisit", *QUICK, "-s", "ZWGK_ATTACHMENT_MAXSIZE=2000000")
        assert summary_row(revisit, "shanghai")["changed"] == "0", revisit.stderr
        [version] = versions_of(db_url, notice)
        assert version["attachments"] == [good]
        errors = errors_of_run(db_url, last_run(db_url)["id"])
        assert errors[PDF_URL][0] == "attachment" and reason in errors[PDF_URL][1], errors


def test_attachment_text_is_capped_and_the_cap_recorded(site: FixtureSite, db_url: str) -> None:
    lines = [f"第{n}条 本办法所称公共数据，是指本市交通运输行业各单位履职中产生的数据。" for n in range(400)]
    notice = attach_pdf(site, lines)
    result = crawl(site, db_url, "shanghai", *QUICK, "-s", "ZWGK_ATTACHMENT_TEXT_MAX=4000")
    assert summary_row(result, "shanghai")["errors"] == "0", result.stderr
    [attachment] = versions_of(db_url, notice)[0]["attachments"]
    assert 3900 <= len(attachment["text"].encode()) <= 4000 and attachment["text"].startswith("第0条")
    assert "text cut at 4,000 of" in attachment["error"] and "ZWGK_ATTACHMENT_TEXT_MAX" in attachment["error"]


def test_hung_and_dripping_requests_end_at_their_deadline(site: FixtureSite, sqlite_url: str) -> None:
    hung, dripping = (n["url"] for n in site.manifest(HOST)[:2])
    hang, drip = hostile.Hang(), hostile.Drip(interval=0.5)
    site.server.misbehave(path_of(hung), hang)
    site.server.misbehave(path_of(dripping), drip)
    started = time.monotonic()
    result = crawl(site, sqlite_url, "shanghai", "-s", "DOWNLOAD_TIMEOUT=4", "-s", "RETRY_TIMES=0")
    took = time.monotonic() - started
    hang.release()
    row = summary_row(result, "shanghai")
    assert (row["status"], row["errors"]) == ("completed", "2"), result.stderr
    errors = errors_of_run(sqlite_url, last_run(sqlite_url)["id"])
    assert errors[hung][0] == errors[dripping][0] == "timeout"
    # The drip sends a byte every half second for a day: only the deadline ends it.
    assert took < 60, took


def test_the_whole_crawl_stops_at_its_time_limit(site: FixtureSite, sqlite_url: str) -> None:
    hang = hostile.Hang()
    for notice in site.manifest(HOST):
        site.server.misbehave(path_of(notice["url"]), hang)
    started = time.monotonic()
    result = crawl(site, sqlite_url, "shanghai", "-s", "DOWNLOAD_TIMEOUT=600", "-s", "CLOSESPIDER_TIMEOUT=5")
    took = time.monotonic() - started
    hang.release()
    assert summary_row(result, "shanghai")["status"] == "interrupted", result.stderr
    assert last_run(sqlite_url)["message"] == "crawl stopped: closespider_timeout"
    assert took < 30, took


def test_sigterm_stops_a_crawl_held_by_a_hung_page_within_30_seconds(site: FixtureSite, sqlite_url: str) -> None:
    hang = hostile.Hang()
    for notice in site.manifest(HOST):
        site.server.misbehave(path_of(notice["url"]), hang)
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "ZWGK_HOST_MAP": site.host_map_json}
    env.pop("ZWGK_DB", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "crawler.cli", "crawl", "shanghai", *FAST_CRAWL, "--db", sqlite_url,
         "-s", "DOWNLOAD_TIMEOUT=600"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)
    stderr = StderrLines(process)
    try:
        wait_for(hang.arrived.is_set, "a request to hang")
        process.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        process.wait(timeout=60)
        took = time.monotonic() - signalled
    finally:
        process.kill()
        hang.release()
    assert took < 30, (took, stderr.text())
    assert last_run(sqlite_url)["status"] == "interrupted", stderr.text()


def test_reextract_leaves_an_archived_soft_404_as_it_is(site: FixtureSite, db_url: str) -> None:
    """A page an older extractor archived although it was a soft 404 is named, and its version kept."""
    notice = site.manifest(HOST)[0]
    crawl(site, db_url, "shanghai", *QUICK)
    soft_404 = hostile.in_article(site.path(notice["url"]).read_text(encoding="utf-8"), "该信息已删除")
    with open_archive(db_url).transaction() as session:
        raw = session.scalar(select(RawPage).join(Version, Version.raw_sha256 == RawPage.sha256)
                             .join(Document).where(Document.url == notice["url"]))
        raw.compressed = zlib.compress(soft_404)
    result = run_zwgk("reextract", "shanghai", "--db", db_url)
    assert result.returncode == 0, result.stderr
    assert f"{notice['url']}: left as archived: soft-404: a 'page not found' page" in result.stderr
    [version] = versions_of(db_url, notice["url"])
    assert version["title"] == notice["title"] and "有效期至2029年12月31日" in version["body"]
