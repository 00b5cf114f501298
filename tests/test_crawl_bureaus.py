"""End to end: the Yunnan and Xiangtan fixture sites, each on its platform spider, and all sources at once."""

from __future__ import annotations

import json

import pytest

from crawler.extract.docnumber import canonical_doc_number
from crawler.extract.normalise import normalise_text
from tests.conftest import FixtureSite, corpus_path, crawl, run_zwgk, summary_row

# End to end (crawl processes, fixture servers): left out by `pytest -m "not slow"`.
pytestmark = pytest.mark.slow

CHROME = ("现在位置", "您现在的位置", "点击数", "浏览次数", "分享至", "分享到", "上一篇", "下一篇", "打印", "关闭",
          "网站标识码", "ICP备", "公网安备")


def export(db_url: str) -> dict[str, dict]:
    result = run_zwgk("export", "--db", db_url)
    assert result.returncode == 0, result.stderr
    return {r["url"]: r for r in map(json.loads, result.stdout.splitlines())}


def seed_lines(name: str, first: str, last: str) -> list[str]:
    text = corpus_path("seeds", name).read_text(encoding="utf-8")
    start, end = text.index(first), text.index(last) + len(last)
    return [line.strip() for line in text[start:end].splitlines() if line.strip()]


def assert_in_order(body: str, lines: list[str]) -> None:
    position = 0
    for line in lines:
        found = body.find(line, position)
        assert found >= 0, f"seed line missing from the body (or out of order): {line}"
        position = found + len(line)


def crawl_all_of(site: FixtureSite, db_url: str, source: str, host: str) -> dict[str, dict]:
    result = crawl(site, db_url, source)
    assert result.returncode == 0, result.stdout + result.stderr
    manifest = site.manifest(host)
    assert summary_row(result, source)["new"] == str(len(manifest))
    records = export(db_url)
    assert set(records) == {notice["url"] for notice in manifest}
    for notice in manifest:
        record = records[notice["url"]]
        assert record["title"] == notice["title"] and record["published_at"].startswith(notice["published"])
        assert record["source"] == source
        published_number = notice["doc_number_as_published"]
        assert record["doc_number"] == (canonical_doc_number(published_number) if published_number else None)
        assert record["written_date"] == notice["written_date"] and record["issuer"] == notice["issuer"]
    return records


def test_yunnan_seed_001(site: FixtureSite, db_url: str) -> None:
    records = crawl_all_of(site, db_url, "yunnan", "jtyst.yn.gov.cn")
    [seed] = [r for r in records.values() if r["title"] == "云南省交通运输厅关于印发2020年政务公开工作要点的通知"]
    # The fields tests/corpus/seeds/README.md lists for seed 001.
    assert seed["doc_number"] is None
    assert seed["published_at"] == "2020-06-10T09:09:00"
    assert seed["written_date"] == "2020-06-05"
    assert seed["issuer"] == "云南省交通运输厅"
    lines = seed_lines("001_7bcdf6d371aac229.txt", "厅属各单位,厅机关各处室:", "按职责分工负责)")
    assert_in_order(seed["body"], [line for line in lines if not line.startswith(("上一篇", "下一篇"))])
    for chrome in CHROME:
        assert chrome not in seed["body"], chrome


def test_xiangtan_seed_002_gbk_without_charset(site: FixtureSite, db_url: str) -> None:
    records = crawl_all_of(site, db_url, "xiangtan", "jtj.xiangtan.gov.cn")
    [seed] = [r for r in records.values() if r["written_date"] == "2019-06-12"]
    assert seed["issuer"] == "湘潭市交通运输局" and seed["doc_number"] is None
    # body: simplified, artefacts removed; body_original: as published.
    assert "局属各单位,局机关相关科室" in seed["body"] and "(guān)" not in seed["body"]
    assert "局屬各單位,局機關(guān)相關(guān)科室" in seed["body_original"]
    cover = seed_lines("002_0c1275ba08b7b66a.txt", "局屬各單位", "2019年6月12日")
    assert_in_order(seed["body"], [normalise_text(line) for line in cover])
    assert "序号" in seed["body"] and "序號" in seed["body_original"]
    for chrome in CHROME:
        assert chrome not in seed["body"], chrome


@pytest.mark.parametrize(("source", "first_pages"), [
    ("yunnan", ["/jtyst.yn.gov.cn/html/zhengwugonggao/index.html"]),
    ("xiangtan", ["/jtj.xiangtan.gov.cn/6551/6553/index.htm"]),
    # The catalogue's index, then the first API page of each category that holds posts, then the portal.
    ("guangzhou", ["/jtj.gz.gov.cn/gkmlpt/index", "/jtj.gz.gov.cn/gkmlpt/api/all/2650?page=1&sid=200029",
                   "/jtj.gz.gov.cn/gkmlpt/api/all/2651?page=1&sid=200029", "/jtj.gz.gov.cn/zwgg/tzgg/index.html"]),
    ("shanwei", ["/www.shanwei.gov.cn/swjtj/gkmlpt/index",
                 "/www.shanwei.gov.cn/swjtj/gkmlpt/api/all/3001?page=1&sid=757",
                 "/www.shanwei.gov.cn/swjtj/gkmlpt/api/all/3002?page=1&sid=757"]),
])
def test_unchanged_recrawl_stops_at_the_first_list_page(site: FixtureSite, sqlite_url: str, source: str,
                                                        first_pages: list[str]) -> None:
    crawl(site, sqlite_url, source)
    site.server.clear_log()
    again = crawl(site, sqlite_url, source)
    assert (summary_row(again, source)["new"], summary_row(again, source)["changed"]) == ("0", "0")
    fetched = sorted(r.path for r in site.server.requests if not r.path.endswith("robots.txt"))
    assert fetched == sorted(first_pages)


def test_crawl_all_archives_every_fixture_notice_once_and_reports_per_source(site: FixtureSite,
                                                                           sqlite_url: str) -> None:
    result = crawl(site, sqlite_url, "--all")
    assert result.returncode == 0, result.stderr
    hosts = {"guangzhou": "jtj.gz.gov.cn", "shanghai": "jtw.sh.gov.cn", "yunnan": "jtyst.yn.gov.cn",
             "xiangtan": "jtj.xiangtan.gov.cn", "shanwei": "www.shanwei.gov.cn"}
    for source, host in hosts.items():
        assert summary_row(result, source)["new"] == str(len(site.manifest(host)))
    records = export(sqlite_url)
    assert len(records) == sum(len(site.manifest(host)) for host in hosts.values())


def test_guangzhou_seed_000_once_through_gkmlpt_and_the_portal(site: FixtureSite, db_url: str) -> None:
    result = crawl(site, db_url, "guangzhou")
    assert result.returncode == 0, result.stdout + result.stderr
    manifest = site.manifest("jtj.gz.gov.cn")
    records = export(db_url)
    # The portal lists posts the catalogue has too (same post id): each is one document.
    assert len(records) == len(manifest) == int(summary_row(result, "guangzhou")["new"])
    [seed] = [r for r in records.values() if r["doc_number"] == "穗交运函〔2022〕415号"]
    # The fields tests/corpus/seeds/README.md lists for seed 000.
    assert seed["title"] == "广州市交通运输局关于印发贯彻落实广州市2022年政务公开工作要点分工方案的通知"
    assert seed["published_at"] == "2022-07-19T15:00:01"
    assert seed["written_date"] == "2022-07-18" and seed["issuer"] == "广州市交通运输局"
    assert "工作任务 | 具体要求 | 牵头处室(单位) | 配合处室(单位) | 备注" in seed["body"]
    for chrome in CHROME:
        assert chrome not in seed["body"], chrome


def test_shanwei_seed_004_text_lives_in_its_attachment(site: FixtureSite, db_url: str) -> None:
    result = crawl(site, db_url, "shanwei")
    assert result.returncode == 0, result.stdout + result.stderr
    records = export(db_url)
    assert len(records) == len(site.manifest("www.shanwei.gov.cn"))
    [seed] = [r for r in records.values() if r["title"] == "汕尾市交通运输局2018年政务公开工作总结"]
    assert seed["issuer"] == "汕尾市交通运输局" and seed["doc_number"] is None and seed["written_date"] is None
    assert seed["disclosure"] == "主动公开"
    [attachment] = seed["attachments"]
    lines = seed_lines("004_8c2dd1c9494a536d.txt", "2018年,我局严格按照", "不断推动\"五公开\"工作向纵深发展。")
    assert_in_order("".join(attachment["text"].split()), ["".join(line.split()) for line in lines])
