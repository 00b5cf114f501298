"""`zwgk db copy`: SQLite to PostgreSQL and back gives identical exports, and search works on each copy."""

from __future__ import annotations

import json

import pytest

from tests.conftest import FixtureSite, crawl, run_zwgk
from tests.test_crawl_attachments import SUMMARY, attach_pdf

# End to end (crawl processes, fixture servers): left out by `pytest -m "not slow"`.
pytestmark = pytest.mark.slow


def export(db_url: str) -> list[dict]:
    result = run_zwgk("export", "--all-versions", "--db", db_url)
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_copy_to_postgresql_and_back_gives_identical_exports(site: FixtureSite, sqlite_url: str, postgres_url: str,
                                                             tmp_path) -> None:
    edited = attach_pdf(site, SUMMARY)
    crawl(site, sqlite_url, "shanghai")
    site.replace_text(edited, "详见附件：", "现印发修订稿，详见附件：")
    crawl(site, sqlite_url, "shanghai", "--revisit")
    run_zwgk("alerts", "add", "plans", "-q", "工作总结", "--notify", "json://127.0.0.1:1/x", "--db", sqlite_url)
    original = export(sqlite_url)
    assert len(original) == 29 and any(record["attachments"] for record in original)

    there = run_zwgk("db", "copy", "--to", postgres_url, "--db", sqlite_url)
    assert there.returncode == 0, there.stderr
    assert export(postgres_url) == original
    back_url = f"sqlite:///{tmp_path}/back.sqlite3"
    back = run_zwgk("db", "copy", "--to", back_url, "--db", postgres_url)
    assert back.returncode == 0, back.stderr
    assert export(back_url) == original

    searches = [json.loads(run_zwgk("search", "公路", "--sort", "date", "--json", "--db", url).stdout)
                for url in (sqlite_url, postgres_url, back_url)]
    assert searches[0]["total"] > 0 and searches[0] == searches[1] == searches[2]
    assert "plans" in run_zwgk("alerts", "list", "--db", back_url).stdout
    # Ids go on after the copied ones: the copy keeps archiving.
    assert crawl(site, postgres_url, "shanghai", "--full").returncode == 0


def test_copy_refuses_a_target_that_holds_notices(site: FixtureSite, shanghai_archive: str, tmp_path) -> None:
    refused = run_zwgk("db", "copy", "--to", shanghai_archive, "--db", shanghai_archive)
    assert refused.returncode == 1 and "already holds data" in refused.stderr
