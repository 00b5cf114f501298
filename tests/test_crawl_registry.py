"""A source is data: a registry entry on a known platform is a working spider, no Python needed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import FAST_CRAWL, FixtureSite, run_zwgk, summary_row

# End to end (crawl processes, fixture servers): left out by `pytest -m "not slow"`.
pytestmark = pytest.mark.slow

HOST = "jtw.sh.gov.cn"


def registry(tmp_path: Path, text: str) -> str:
    path = tmp_path / "sources.toml"
    path.write_text(text, encoding="utf-8")
    return str(path)


def crawl_with(site: FixtureSite, sources: str, db_url: str, *args: str):
    return run_zwgk("crawl", *args, *FAST_CRAWL, "--db", db_url, host_map=site.host_map_json,
                    extra_env={"ZWGK_SOURCES": sources})


def test_a_sixth_source_added_by_data_alone_is_crawled(site: FixtureSite, sqlite_url: str, tmp_path: Path) -> None:
    sources = registry(tmp_path, f'''
[sh_policy]
name = "上海市交通委员会（政策文件）"
level = "province"
region = "上海市"
host = "{HOST}"
platform = "shanghai_ivs"
columns = ["https://{HOST}/zxzfxx/index.html"]
body_selectors = ["#ivs_content"]
''')
    listed = run_zwgk("sources", extra_env={"ZWGK_SOURCES": sources})
    assert listed.stdout.startswith("sh_policy")
    result = crawl_with(site, sources, sqlite_url, "sh_policy")
    assert result.returncode == 0, result.stderr
    assert summary_row(result, "sh_policy")["new"] == str(len(site.manifest(HOST)))
    records = [json.loads(line) for line in run_zwgk("export", "--db", sqlite_url).stdout.splitlines()]
    assert {r["source"] for r in records} == {"sh_policy"}


def test_the_generic_spider_reads_an_unknown_platform_by_its_conventions(site: FixtureSite, sqlite_url: str,
                                                                        tmp_path: Path) -> None:
    """Rows with a link and a date are notices; fields come from meta tags, labels and the body."""
    sources = registry(tmp_path, f'''
[unknown_cms]
name = "未知平台的栏目"
host = "{HOST}"
platform = "generic"
columns = ["https://{HOST}/zxzfxx/index.html"]
''')
    result = crawl_with(site, sources, sqlite_url, "--all")
    assert result.returncode == 0, result.stderr
    page_one = [n for n in site.manifest(HOST) if n["list_page"] == 1]
    records = {r["url"]: r for r in map(json.loads, run_zwgk("export", "--db", sqlite_url).stdout.splitlines())}
    # The pages are drawn by a script here, so a generic reader sees the first list page only.
    assert set(records) == {n["url"] for n in page_one}
    for notice in page_one:
        assert records[notice["url"]]["title"] == notice["title"]
        assert records[notice["url"]]["published_at"].startswith(notice["published"])
