"""End to end: crawl the Shanghai fixture site over HTTP through HOST_MAP into a real archive."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

from tests.conftest import ROOT, FixtureSite, corpus_path, crawl, run_zwgk, summary_row

# End to end (crawl processes, fixture servers): left out by `pytest -m "not slow"`.
pytestmark = pytest.mark.slow

HOST = "jtw.sh.gov.cn"
SEED_URL = "https://jtw.sh.gov.cn/zxzfxx/20240516/6ac131a8cd94a5cfaeb27303423e1675.html"
CHROME = ("您现在的位置", "分享到", "打印", "关闭", "政策性文件留言咨询", "只接收对该政策性文件的相关咨询",
          "留言时请注明", "Copyright", "网站标识码", "ICP备", "公网安备", "欢迎访问", "访问者", "发布时间",
          "索取号", "上一篇", "下一篇")


def export(db_url: str, *args: str) -> list[dict]:
    result = run_zwgk("export", "--format", "jsonl", "--db", db_url, *args)
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def detail_requests(site: FixtureSite) -> list:
    return [r for r in site.server.requests if re.search(r"/\d{8}/[0-9a-f]{32}\.html$", r.path)]


def seed_notice_lines() -> list[str]:
    """The notice text of seed 003, from its greeting to the end of the 工作要点, as the copy has it."""
    text = corpus_path("seeds", "003_566bb029906badb2.txt").read_text(encoding="utf-8")
    start = text.index("委机关各处室")
    end = text.index("确保政策解读、政府开放日等工作顺利开展。") + len("确保政策解读、政府开放日等工作顺利开展。")
    # The copy lost 年月日 in the signature date; the page (and so the body) has 2024年5月13日.
    return [line.strip() for line in text[start:end].splitlines() if line.strip() and line.strip() != "2024513"]


@pytest.fixture
def crawled(site: FixtureSite, db_url: str) -> tuple[FixtureSite, str]:
    result = crawl(site, db_url, "shanghai")
    assert result.returncode == 0, result.stdout + result.stderr
    return site, db_url


def test_first_crawl_archives_every_notice(site: FixtureSite, db_url: str) -> None:
    result = crawl(site, db_url, "shanghai", "-s", "ZWGK_PROGRESS_INTERVAL=0.05")
    assert result.returncode == 0, result.stderr
    assert re.search(r"^shanghai: \d+ pages, \d+ new, 0 changed, 0 errors$", result.stderr, re.M), result.stderr
    manifest = site.manifest(HOST)
    row = summary_row(result, "shanghai")
    assert (row["status"], row["new"], row["changed"], row["errors"]) == ("completed", str(len(manifest)), "0", "0")
    records = export(db_url)
    assert sorted(r["url"] for r in records) == sorted(n["url"] for n in manifest)
    by_url = {r["url"]: r for r in records}
    for notice in manifest:
        record = by_url[notice["url"]]
        assert record["title"] == notice["title"]
        assert record["published_at"].startswith(notice["published"])
        assert record["source"] == "shanghai" and record["version"] == 1


def test_seed_003_comes_out_with_every_field(crawled) -> None:
    _, db_url = crawled
    record = next(r for r in export(db_url) if r["url"] == SEED_URL)
    # The fields tests/corpus/seeds/README.md lists for seed 003.
    assert record["title"] == "上海市交通委员会关于印发《2024年市交通委政务公开工作要点》的通知"
    assert record["doc_number"] == "沪交办〔2024〕323号"
    assert record["published_at"].startswith("2024-05-16")
    assert record["written_date"] == "2024-05-13"
    assert record["issuer"] == "上海市交通委员会"
    assert record["index_number"] == "002421191K/2024-00025"
    assert record["disclosure"] == "主动公开"
    assert record["doc_type"] == "通知"
    body = record["body"]
    position = 0
    for line in seed_notice_lines():
        found = body.find(line, position)
        assert found >= 0, f"seed line missing from the body (or out of order): {line}"
        position = found + len(line)
    assert "2024年5月13日" in body
    for chrome in CHROME:
        assert chrome not in body, f"chrome {chrome!r} reached the body"
    assert body.startswith("委机关各处室") and body.endswith("确保政策解读、政府开放日等工作顺利开展。")


def test_unchanged_recrawl_makes_no_version_and_stops_at_the_first_list_page(crawled) -> None:
    site, db_url = crawled
    site.server.clear_log()
    result = crawl(site, db_url, "shanghai")
    assert result.returncode == 0, result.stderr
    row = summary_row(result, "shanghai")
    assert (row["new"], row["changed"]) == ("0", "0")
    paths = [r.path for r in site.server.requests]
    assert paths == ["/jtw.sh.gov.cn/robots.txt", "/jtw.sh.gov.cn/zxzfxx/index.html"]
    assert all(r["version"] == 1 for r in export(db_url, "--all-versions"))


def test_full_walks_every_list_page_without_new_versions(crawled) -> None:
    site, db_url = crawled
    site.server.clear_log()
    result = crawl(site, db_url, "shanghai", "--full")
    assert result.returncode == 0
    lists = sorted(r.path for r in site.server.requests if "/index" in r.path)
    assert lists == [f"/jtw.sh.gov.cn/zxzfxx/{name}" for name in ("index.html", "index_2.html", "index_3.html")]
    assert detail_requests(site) == []


def test_revisit_of_unchanged_notices_is_answered_by_304s(crawled) -> None:
    site, db_url = crawled
    site.server.clear_log()
    result = crawl(site, db_url, "shanghai", "--revisit")
    assert result.returncode == 0, result.stderr
    details = detail_requests(site)
    assert len(details) == len(site.manifest(HOST))
    assert {r.status for r in details} == {304}
    assert all("If-None-Match" in r.headers for r in details)
    row = summary_row(result, "shanghai")
    assert (row["new"], row["changed"], row["unchanged"]) == ("0", "0", str(len(details)))
    assert len(export(db_url, "--all-versions")) == len(details)


def test_an_edited_page_makes_exactly_one_new_version(crawled) -> None:
    site, db_url = crawled
    site.replace_text(SEED_URL, "现予印发,请遵照执行。", "现予印发,请认真遵照执行。")
    result = crawl(site, db_url, "shanghai", "--revisit")
    assert summary_row(result, "shanghai")["changed"] == "1"
    versions = export(db_url, "--all-versions")
    edited = [r for r in versions if r["url"] == SEED_URL]
    assert [r["version"] for r in edited] == [1, 2]
    assert "请认真遵照执行" in edited[1]["body"] and "请认真遵照执行" not in edited[0]["body"]
    assert len(versions) == len(site.manifest(HOST)) + 1


def test_a_change_in_volatile_chrome_makes_no_version(crawled) -> None:
    site, db_url = crawled
    site.replace_text(SEED_URL, '<span id="count">', '<span id="count">9')
    result = crawl(site, db_url, "shanghai", "--revisit")
    assert summary_row(result, "shanghai")["changed"] == "0"
    seed_fetches = [r for r in site.server.requests if SEED_URL.split(HOST)[1] in r.path]
    assert seed_fetches[-1].status == 200  # fetched in full, compared, found unchanged
    assert len(export(db_url, "--all-versions")) == len(site.manifest(HOST))


def test_a_broken_page_is_recorded_and_the_crawl_goes_on(site: FixtureSite, db_url: str) -> None:
    broken = site.manifest(HOST)[0]["url"]
    site.server.set_status("/" + broken.split("://", 1)[1], 500)
    result = crawl(site, db_url, "shanghai")
    row = summary_row(result, "shanghai")
    assert result.returncode == 0
    assert (row["status"], row["new"], row["errors"]) == ("completed", str(len(site.manifest(HOST)) - 1), "1")
    assert "500" in result.stderr
    attempts = [r for r in site.server.requests if r.path == "/" + broken.split("://", 1)[1]]
    assert len(attempts) == 3  # the first try and two retries, each after a back-off


def test_an_unreachable_site_fails_fast_with_one_clear_line(sqlite_url: str) -> None:
    host_map = json.dumps({HOST: "http://127.0.0.1:9/jtw.sh.gov.cn"})  # nothing listens on port 9
    result = run_zwgk("crawl", "shanghai", "--db", sqlite_url, "-s", "RETRY_TIMES=0", host_map=host_map)
    assert result.returncode == 1
    assert summary_row(result, "shanghai")["status"] == "failed"
    assert "connection refused" in result.stderr
    assert "Traceback" not in result.stderr


def test_scrapy_crawl_works_with_the_same_defaults(site: FixtureSite, sqlite_url: str) -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "scrapy", "crawl", "shanghai", "-s", "AUTOTHROTTLE_ENABLED=False",
         "-s", "DOWNLOAD_DELAY=0", "-s", "LOG_LEVEL=WARNING"],
        capture_output=True, text=True, cwd=ROOT, timeout=240,
        env={**os.environ, "ZWGK_DB": sqlite_url, "ZWGK_HOST_MAP": site.host_map_json},
    )
    assert completed.returncode == 0, completed.stderr
    assert len(export(sqlite_url)) == len(site.manifest(HOST))
