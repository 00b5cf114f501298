"""End to end: a notice whose text lives in a /cmsres/ PDF, on the Shanghai fixture, on both backends."""

from __future__ import annotations

import json
import os

import pytest

from tests.conftest import FixtureSite, crawl, run_zwgk, summary_row
from tests.test_extract_files import make_pdf

# End to end (crawl processes, fixture servers): left out by `pytest -m "not slow"`.
pytestmark = pytest.mark.slow

HOST = "jtw.sh.gov.cn"
PDF_URL = "https://jtw.sh.gov.cn/cmsres/8d/8d519f60c2744bc3b89917f33b57cbc6/9587fff6168f4efffa79b390c2d0a5c0.pdf"
PDF_NAME = "上海市交通委员会2018年政务公开工作总结.pdf"
SUMMARY = ["上海市交通委员会2018年政务公开工作总结", "一、主动公开政府信息情况", "公开方式：主动公开"]


def attach_pdf(site: FixtureSite, lines: list[str]) -> str:
    """Give the newest fixture notice a /cmsres/ PDF attachment, as ghzyj-style pages have."""
    notice = site.manifest(HOST)[0]["url"]
    pdf = site.path(PDF_URL)
    pdf.parent.mkdir(parents=True, exist_ok=True)
    pdf.write_bytes(make_pdf(lines))
    stat = pdf.stat()
    os.utime(pdf, (stat.st_atime, stat.st_mtime + 10))
    if PDF_NAME not in site.path(notice).read_text(encoding="utf-8"):
        site.replace_text(notice, '<div id="ivs_content" class="Article_content">',
                          f'<div id="ivs_content" class="Article_content"><p>详见附件：'
                          f'<a href="{PDF_URL.split(HOST)[1]}">{PDF_NAME}</a></p>')
    return notice


def versions_of(db_url: str, url: str) -> list[dict]:
    result = run_zwgk("export", "--all-versions", "--db", db_url)
    return [r for r in map(json.loads, result.stdout.splitlines()) if r["url"] == url]


def test_a_pdf_attachment_is_archived_with_its_text(site: FixtureSite, db_url: str) -> None:
    notice = attach_pdf(site, SUMMARY)
    result = crawl(site, db_url, "shanghai")
    assert summary_row(result, "shanghai")["errors"] == "0", result.stderr
    [record] = versions_of(db_url, notice)
    [attachment] = record["attachments"]
    assert attachment["url"] == PDF_URL and attachment["name"] == PDF_NAME
    assert attachment["size"] == site.path(PDF_URL).stat().st_size and len(attachment["sha256"]) == 64
    assert all(line in attachment["text"] for line in SUMMARY)
    shown = run_zwgk("show", notice, "--db", db_url).stdout
    assert "一、主动公开政府信息情况" in shown


def test_a_replaced_pdf_makes_exactly_one_version_and_a_recrawl_none(site: FixtureSite, db_url: str) -> None:
    notice = attach_pdf(site, SUMMARY)
    crawl(site, db_url, "shanghai")
    unchanged = crawl(site, db_url, "shanghai", "--revisit")
    assert summary_row(unchanged, "shanghai")["changed"] == "0"
    attach_pdf(site, [*SUMMARY, "二、依申请公开情况"])
    replaced = crawl(site, db_url, "shanghai", "--revisit")
    assert summary_row(replaced, "shanghai")["changed"] == "1", replaced.stderr
    versions = versions_of(db_url, notice)
    assert [v["version"] for v in versions] == [1, 2]
    assert "二、依申请公开情况" in versions[1]["attachments"][0]["text"]
    assert versions[0]["attachments"][0]["sha256"] != versions[1]["attachments"][0]["sha256"]
    again = crawl(site, db_url, "shanghai", "--revisit")
    assert summary_row(again, "shanghai")["changed"] == "0"


def test_hostile_attachments_are_recorded_and_the_crawl_finishes(site: FixtureSite, sqlite_url: str) -> None:
    """One crawl meets every kind of hostile file, each behind its own notice."""
    from crawler.extract.files import MAX_PDF_PAGES
    from tests.test_extract_files import zipped

    good = make_pdf(SUMMARY)
    hostile = {
        "bomb.zip": (zipped({"a.txt": b"0" * (300 * 1024 * 1024)}), "zip bomb"),
        "huge.pdf": (make_pdf(["页"], pages=MAX_PDF_PAGES + 1), f"{MAX_PDF_PAGES + 1} pages"),
        "locked.pdf": (make_pdf(SUMMARY, encrypt="secret"), "encrypted"),
        "cut.pdf": (good[: len(good) // 3], "broken PDF"),
        "error.pdf": (b"<!DOCTYPE html><html><body>404 Not Found</body></html>", "HTML page was served"),
        "big.txt": (b"x" * 3_000_000, "larger than"),
    }
    manifest = site.manifest(HOST)
    for notice, (name, (data, _)) in zip(manifest, hostile.items(), strict=False):
        path = f"/cmsres/00/hostile/{name}"
        (site.root / HOST / path.lstrip("/")).parent.mkdir(parents=True, exist_ok=True)
        (site.root / HOST / path.lstrip("/")).write_bytes(data)
        site.replace_text(notice["url"], '<div id="ivs_content" class="Article_content">',
                          f'<div id="ivs_content" class="Article_content"><p>附件：<a href="{path}">{name}</a></p>')
    result = crawl(site, sqlite_url, "shanghai", "-s", "ZWGK_ATTACHMENT_MAXSIZE=2000000")
    row = summary_row(result, "shanghai")
    assert (row["status"], row["new"]) == ("completed", str(len(manifest))), result.stderr
    records = {r["url"]: r for r in map(json.loads, run_zwgk("export", "--db", sqlite_url).stdout.splitlines())}
    for notice, (name, (_, reason)) in zip(manifest, hostile.items(), strict=False):
        [attachment] = records[notice["url"]]["attachments"]
        assert attachment["text"] is None and reason in attachment["error"], (name, attachment["error"])


def test_reextract_restores_derived_fields_from_stored_bytes_without_a_version(site: FixtureSite,
                                                                               sqlite_url: str) -> None:
    from sqlalchemy import update

    from archive import open_archive
    from archive.models import Attachment, Event, Version

    notice = attach_pdf(site, SUMMARY)
    crawl(site, sqlite_url, "shanghai")
    archive = open_archive(sqlite_url)
    with archive.session() as session, session.begin():  # what an older extractor might have left
        session.execute(update(Version).values(title="旧的标题", extractor_version="0"))
        session.execute(update(Attachment).values(text=None, error="not extracted: old reader"))
    site.server.clear_log()

    result = run_zwgk("reextract", "shanghai", "--db", sqlite_url)
    assert result.returncode == 0, result.stderr
    total = len(site.manifest(HOST))
    assert f"re-extracted {total} notices" in result.stdout and f"{total} updated" in result.stdout
    assert site.server.requests == []  # nothing fetched
    [record] = versions_of(sqlite_url, notice)
    assert record["version"] == 1 and record["title"] == site.manifest(HOST)[0]["title"]
    assert "一、主动公开政府信息情况" in record["attachments"][0]["text"]
    with archive.session() as session:
        assert {event.kind for event in session.query(Event)} == {"new"}
        assert {version.extractor_version for version in session.query(Version)} == {"1"}
    again = run_zwgk("reextract", "--db", sqlite_url)
    assert f"0 updated, {total} unchanged" in again.stdout
    revisit = crawl(site, sqlite_url, "shanghai", "--revisit")
    assert summary_row(revisit, "shanghai")["changed"] == "0"


def test_an_attachment_over_the_size_limit_is_recorded(site: FixtureSite, sqlite_url: str) -> None:
    notice = attach_pdf(site, SUMMARY)
    result = crawl(site, sqlite_url, "shanghai", "-s", "ZWGK_ATTACHMENT_MAXSIZE=1000")
    assert summary_row(result, "shanghai")["status"] == "completed"
    [attachment] = versions_of(sqlite_url, notice)[0]["attachments"]
    assert attachment["sha256"] is None and "larger than" in attachment["error"]
