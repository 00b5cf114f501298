"""Soft 404s and challenge pages are told from notices (crawler.extract.verdict), and count against a source."""

from __future__ import annotations

import pytest

from archive.health import RunFacts, find_problem, run_facts
from archive.models import CrawlRun
from archive.store import AttachmentFile
from crawler.extract.files import FileText
from crawler.extract.sandbox import cap_text
from crawler.extract.verdict import CHALLENGE, EMPTY, NOTICE, SOFT_404, judge_page
from crawler.harvest import HarvestError, Page, read_page, refused_file
from tests.conftest import SITES
from tests.fixtures import hostile

URL = "https://jtw.sh.gov.cn/zxzfxx/20241220/8e0c3a170525d10b933b9970556dbb1e.html"
PAGE = (SITES / "jtw.sh.gov.cn" / "zxzfxx" / "20241220" / "8e0c3a170525d10b933b9970556dbb1e.html").read_text()


def kind_of(body: bytes) -> str:
    try:
        read_page(Page(URL, body, "text/html"))
    except HarvestError as error:
        return error.kind
    return NOTICE


@pytest.mark.parametrize(("body", "kind"), [
    (PAGE.encode(), NOTICE),
    (hostile.in_article(PAGE, "您访问的页面不存在"), SOFT_404),
    (hostile.in_article(PAGE, "该信息已删除"), SOFT_404),
    (hostile.error_box_in_chrome(PAGE, "抱歉，页面不存在或已被删除"), SOFT_404),
    (hostile.RUISHU_412.encode(), CHALLENGE),
    (hostile.COOKIE_RELOAD_200.encode(), CHALLENGE),
    (hostile.SECURITY_CHECK_200.encode(), CHALLENGE),
    (b"", EMPTY),
    (hostile.gbk_labelled_utf8(PAGE).body, NOTICE),
], ids=["notice", "in-article", "deleted", "error-box", "ruishu-412", "cookie-reload", "security-check", "empty",
        "gbk-as-utf8"])
def test_each_page_is_judged_in_the_harvest_path(body: bytes, kind: str) -> None:
    assert kind_of(body) == kind


def test_a_notice_that_quotes_an_error_phrase_or_links_files_stays_a_notice() -> None:
    quoting = "关于网站维护的通知\n" + "维护期间部分页面不存在或无法访问，敬请谅解。" * 20
    assert judge_page("关于网站维护的通知", quoting, quoting.encode(), None, links_files=False).kind == NOTICE
    assert judge_page("通知", "该信息已删除", b"<p>x</p>", None, links_files=True).kind == NOTICE
    short = judge_page("关于延长公示期的通知", "公示期延长至12月31日。", b"<p>x</p>", None, links_files=False)
    assert short.kind == NOTICE


def test_the_reason_quotes_what_gave_the_page_away() -> None:
    verdict = judge_page(None, "", hostile.in_article(PAGE, "该信息已删除"), None, links_files=False)
    assert verdict.kind == SOFT_404 and "信息已删除" in verdict.reason


@pytest.mark.parametrize("kind", ["soft-404", "challenge", "no-notice"])
def test_soft_404s_and_challenges_make_a_source_broken(kind: str) -> None:
    run = CrawlRun(status="completed", new=0, changed=0, unchanged=1, not_modified=0, incomplete=0)
    facts = run_facts(run, {kind: 3})
    assert facts.challenges == 3
    assert "'page not found' page instead of the notice" in find_problem(facts, [], known_notices=28)
    assert find_problem(run_facts(run, {kind: 1}), [], known_notices=28) is None  # one is not a broken site


def test_health_ignores_errors_that_are_not_about_the_page() -> None:
    run = CrawlRun(status="completed", new=5, changed=0, unchanged=0, not_modified=0, incomplete=0)
    assert run_facts(run, {"attachment": 4}) == RunFacts("completed", 5, 0, 0, 0, 0, 0, None)


def test_attachment_text_is_cut_at_the_cap_on_a_character_boundary() -> None:
    capped = cap_text(FileText("pdf", "公路" * 1000), 1000)
    assert capped.text == "公路" * 166 + "公" and len(capped.text.encode()) <= 1000
    assert capped.error == "text cut at 1,000 of 6,000 bytes (ZWGK_ATTACHMENT_TEXT_MAX)"
    assert cap_text(FileText("pdf", "短"), 1000) == FileText("pdf", "短")


def test_a_replacement_that_is_an_error_page_or_unreadable_is_refused() -> None:
    good = AttachmentFile("u", "a.pdf", b"%PDF-1.4 good", format="pdf", text="正文")
    html = AttachmentFile("u", "a.pdf", b"<html>", format="html", error="not extracted: an HTML page was served")
    locked = AttachmentFile("u", "a.pdf", b"%PDF-1.4 locked", format="pdf", error="not extracted: encrypted")
    assert "HTML page" in refused_file(html, None)
    assert "cannot be read" in refused_file(locked, good)
    assert refused_file(locked, None) is None  # nothing readable to keep: the file is archived with its reason
    assert refused_file(AttachmentFile("u", "a.pdf", b"%PDF-1.4 new", format="pdf", text="新"), good) is None
