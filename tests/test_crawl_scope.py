"""End to end: the crawl's scope and bounds against hostile links, on SQLite and PostgreSQL.

A canary fixture server on another loopback port, which HOST_MAP does not map, stands for
every address the crawler must never reach (an intranet host, a cloud metadata address);
the hostile links and redirects below are reconstructions of what real pages hold.
"""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select

from archive import open_archive
from archive.models import CrawlError
from tests.conftest import FAST_CRAWL, FixtureSite, run_zwgk, summary_row
from tests.fixtures.server import FixtureServer

pytestmark = pytest.mark.slow

HOST = "jtw.sh.gov.cn"
OPENING = '<div id="ivs_content" class="Article_content">'
REGISTRY = f'''
[shanghai]
name = "上海市交通委员会"
host = "{HOST}"
platform = "shanghai_ivs"
columns = ["https://{HOST}/zxzfxx/index.html"]
body_selectors = ["#ivs_content"]
file_hosts = ["localhost"]
'''


@pytest.fixture
def canary(tmp_path: Path):
    """A loopback server no request of the crawl may reach."""
    (tmp_path / "canary").mkdir()
    with FixtureServer(tmp_path / "canary") as server:
        yield server


def crawl_shanghai(site: FixtureSite, db_url: str, tmp_path: Path, *args: str):
    registry = tmp_path / "sources.toml"
    registry.write_text(REGISTRY, encoding="utf-8")
    return run_zwgk("crawl", "shanghai", *args, *FAST_CRAWL, "--db", db_url, host_map=site.host_map_json,
                    extra_env={"ZWGK_SOURCES": str(registry)})


def add_links(site: FixtureSite, notice: str, hrefs: list[str]) -> None:
    links = "".join(f'<a href="{href}">附件{index}.pdf</a> ' for index, href in enumerate(hrefs))
    site.replace_text(notice, OPENING, f"{OPENING}<p>附件：{links}</p>")


def crawl_errors(db_url: str) -> list[tuple[str, str, str]]:
    with open_archive(db_url).session() as session:
        return [tuple(row) for row in session.execute(select(CrawlError.url, CrawlError.kind, CrawlError.message))]


def exported(db_url: str) -> dict[str, dict]:
    return {record["url"]: record for record in map(json.loads, run_zwgk("export", "--db", db_url).stdout.splitlines())}


def test_links_and_redirects_out_of_scope_reach_nothing_and_are_recorded(site: FixtureSite, db_url: str,
                                                                           canary: FixtureServer,
                                                                           tmp_path: Path) -> None:
    notices = [entry["url"] for entry in site.manifest(HOST)]
    canary_port = urlsplit(canary.base_url).port
    refused = {  # href on the page -> (the URL recorded, its kind, what the reason says)
        f"{canary.base_url}/secret.pdf": (f"{canary.base_url}/secret.pdf", "scope", "127.0.0.1 is not one of"),
        "http://intranet.invalid/x.pdf": ("http://intranet.invalid/x.pdf", "scope", "intranet.invalid is not one of"),
        "file:///cmsres/../etc/passwd": ("file:///cmsres/../etc/passwd", "scope", "file: URLs are not fetched"),
        "data:application/pdf,%25PDF-1.4/x.pdf": ("data:application/pdf,%25PDF-1.4/x.pdf", "scope",
                                                  "data: URLs are not fetched"),
        f"http://localhost:{canary_port}/cmsres/x.pdf": (f"http://localhost:{canary_port}/cmsres/x.pdf", "scope",
                                                         "localhost resolves to"),
        " JAVASCRIPT:alert(1)//a.pdf": ("JAVASCRIPT:alert(1)//a.pdf", "bad-link", "a malformed attachment link"),
        "http://[::1:bad/x.pdf": ("http://[::1:bad/x.pdf", "bad-link", "a malformed attachment link"),
    }
    add_links(site, notices[0], list(refused))
    # Detail pages that redirect off the source: to the canary, and to another bureau HOST_MAP maps.
    off_site = {notices[1]: f"{canary.base_url}/evil.html", notices[2]: "https://jtj.gz.gov.cn/zwgg/tzgg/index.html"}
    for notice, location in off_site.items():
        site.server.set_redirect(f"/{HOST}{notice.split(HOST, 1)[1]}", location)

    result = crawl_shanghai(site, db_url, tmp_path)

    row = summary_row(result, "shanghai")
    assert result.returncode == 0 and row["status"] == "completed", result.stdout + result.stderr
    assert canary.requests == []
    assert not [r.path for r in site.server.requests if not r.path.startswith(f"/{HOST}/")]
    records = exported(db_url)
    assert records[notices[0]]["attachments"] == []  # archived, without the refused files
    assert notices[1] not in records and notices[2] not in records
    assert len(records) == len(notices) - 2
    errors = crawl_errors(db_url)
    for url, kind, reason in refused.values():
        assert any(e[:2] == (url, kind) and reason in e[2] for e in errors), (url, errors)
    for notice, location in off_site.items():
        host = urlsplit(location).hostname
        assert any(e[:2] == (notice, "scope") and f"{host} is not one of the source's own hosts" in e[2]
                   for e in errors), (notice, errors)


def test_caps_bound_a_notice_of_20000_files_and_a_list_of_10000_links(site: FixtureSite, db_url: str,
                                                                      tmp_path: Path) -> None:
    """The attachment cap at its default; the list cap lowered to 20 so that the 10 links it lets
    through past the page's own rows are quick to fetch. tests/test_scope.py reads a list page of
    100,000 links at the default cap of 500 without a crawl: its 14 MB take a crawl about a minute
    to parse on a loaded machine, too long for a test run side by side with others."""
    notices = [entry["url"] for entry in site.manifest(HOST)]
    add_links(site, notices[0], [f"/cmsres/cap/{index}.pdf" for index in range(20_000)])
    fake = "".join(f'<li><a href="/zxzfxx/20250101/{index:032x}.html" title="链接{index}">链接</a>'
                   f'<span class="time">2025-01-01</span></li>' for index in range(10_000))
    site.replace_text(f"https://{HOST}/zxzfxx/index.html", "</ul>\n<!-- <ul", f"{fake}</ul>\n<!-- <ul")

    result = crawl_shanghai(site, db_url, tmp_path, "-s", "ZWGK_MAX_LIST_LINKS=20")

    assert summary_row(result, "shanghai")["status"] == "completed", result.stdout + result.stderr
    paths = [r.path for r in site.server.requests]
    assert sum("/cmsres/cap/" in path for path in paths) == 50  # ZWGK_MAX_ATTACHMENTS
    assert sum("/zxzfxx/20250101/" in path for path in paths) == 20 - 10  # the page's own 10 rows come first
    errors = crawl_errors(db_url)
    assert any(e[:2] == (notices[0], "cap") and "ZWGK_MAX_ATTACHMENTS" in e[2] for e in errors)
    assert any(e[:2] == (f"https://{HOST}/zxzfxx/index.html", "cap") and "more than 20 notice links" in e[2]
               for e in errors)
    assert len(exported(db_url)[notices[0]]["attachments"]) == 50
