"""Every version of a notice, and what changed between any two."""

from __future__ import annotations

import json

import pytest

from archive.output.diff import diff_lines, diff_records
from tests.conftest import FixtureSite, crawl, run_zwgk

HOST = "jtw.sh.gov.cn"


def test_a_changed_line_is_diffed_character_by_character() -> None:
    lines = diff_lines("一、总则\n本办法自2024年1月1日起施行。\n附则", "一、总则\n本办法自2024年3月1日起施行。\n附则")
    assert [(line.op, line.text) for line in lines if line.op != " "] == [
        ("-", "本办法自2024年1月1日起施行。"), ("+", "本办法自2024年3月1日起施行。")]
    removed, added = lines[1], lines[2]
    assert ("-", "1") in removed.parts and ("+", "3") in added.parts
    assert "".join(text for op, text in added.parts if op != "-") == added.text


def test_fields_and_attachment_texts_are_compared() -> None:
    old = {"version": 1, "title": "关于印发办法的通知", "doc_number": None, "body": "正文",
           "attachments": [{"name": "附件1.pdf", "text": "第一条"}]}
    new = {"version": 2, "title": "关于印发办法的通知", "doc_number": "沪交规〔2024〕1号", "body": "正文",
           "attachments": [{"name": "附件1.pdf", "text": "第一条（修订）"}]}
    change = diff_records(old, new)
    assert change.fields == [("doc_number", None, "沪交规〔2024〕1号")]
    assert change.removed == ["第一条"] and change.added == ["第一条（修订）"]
    assert diff_records(new, new).unchanged


@pytest.mark.slow
def test_history_and_diff_of_an_edited_notice(site: FixtureSite, shanghai_archive: str) -> None:
    notice = site.manifest(HOST)[3]
    path = site.path(notice["url"])
    page = path.read_text(encoding="utf-8")
    marker = "</p>"
    edited = page.replace(marker, "</p><p>新增一段：自发布之日起施行。</p>", 1)
    assert edited != page
    site.replace_text(notice["url"], page, edited)
    assert crawl(site, shanghai_archive, "shanghai", "--revisit").returncode == 0

    history = json.loads(run_zwgk("history", notice["url"], "--json", "--db", shanghai_archive).stdout)
    assert [v["version"] for v in history["versions"]] == [1, 2]
    assert history["versions"][1]["lines_added"] >= 1 and history["versions"][0]["lines_added"] is None
    table = run_zwgk("history", str(history["document_id"]), "--db", shanghai_archive).stdout
    assert "v1" in table and "v2" in table and "first seen" in table

    shown = run_zwgk("diff", notice["url"], "--db", shanghai_archive)
    assert shown.returncode == 0, shown.stderr
    assert "version 1 → 2" in shown.stdout
    assert any(line.startswith("+ ") and "新增一段" in line for line in shown.stdout.splitlines())
    same = run_zwgk("diff", notice["url"], "2", "2", "--db", shanghai_archive)
    assert "no difference" in same.stdout
    assert run_zwgk("diff", notice["url"], "1", "9", "--db", shanghai_archive).returncode == 1
    assert run_zwgk("diff", notice["url"], "1", "--db", shanghai_archive).returncode == 2
    assert run_zwgk("history", "https://jtw.sh.gov.cn/none.html", "--db", shanghai_archive).returncode == 1
