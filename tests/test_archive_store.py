"""The versioning rule and its transactions, on SQLite and on PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from archive import ArchiveError, open_archive
from archive.models import CrawlRun, Document, Event, RawPage, Version
from archive.store import RawResponse
from archive.urls import canonical_url
from crawler.extract import extract_notice

URL = "https://jtw.sh.gov.cn/zxzfxx/20240516/6ac131a8cd94a5cfaeb27303423e1675.html"
PAGE = """<html><head><meta name="PubDate" content="2024-05-16 10:30:00"><title>{title}</title></head>
<body><div class="header">上海市交通委员会 {clock}</div>
<div id="ivs_title">{title}</div>
<div id="ivs_content"><table><tr><td>索取号:</td><td>002421191K/2024-00025</td><td>发布机构:</td><td>上海市交通委员会</td></tr>
<tr><td>文件编号:</td><td>沪交办〔2024〕323 号</td><td>公开类别:</td><td>主动公开</td></tr></table>
<p>委机关各处室,委属各单位:</p><p>{body}</p></div>
<div class="footer">欢迎访问!你是第<span id="count">{count}</span>位访问者 Copyright 网站标识码3100000121</div>
</body></html>"""  # noqa: E501 (a page as published)


def page(body: str = "现予印发,请遵照执行。", count: int = 100, clock: str = "2024-05-16 10:00",
         title: str = "上海市交通委员会关于印发《2024年市交通委政务公开工作要点》的通知") -> bytes:
    return PAGE.format(body=body, count=count, clock=clock, title=title).encode("utf-8")


@pytest.fixture
def archive(db_url: str):
    archive = open_archive(db_url)
    archive.ensure_source("shanghai", "上海市交通委员会", "jtw.sh.gov.cn", "shanghai_ivs")
    yield archive
    archive.close()


def save(archive, data: bytes, url: str = URL, run_id: int | None = None):
    notice = extract_notice(data, url)
    return archive.save_notice("shanghai", url, notice.as_dict(), notice.content_hash,
                               raw=RawResponse(data, "text/html"), run_id=run_id)


def count(archive, model) -> int:
    with archive.session() as session:
        return session.scalar(select(func.count()).select_from(model))


def test_first_save_makes_a_document_a_version_and_a_new_event(archive) -> None:
    result = save(archive, page())
    assert (result.outcome, result.version) == ("new", 1)
    assert [event.kind for event in archive.events()] == ["new"]
    document = archive.find_document(URL)
    version = document.versions[0]
    assert version.doc_number == "沪交办〔2024〕323号"
    assert archive.raw_page(version.raw_sha256) == page()


def test_unchanged_resave_makes_no_version(archive) -> None:
    save(archive, page())
    result = save(archive, page())
    assert result.outcome == "unchanged"
    assert (count(archive, Version), count(archive, Event)) == (1, 1)


def test_changed_body_makes_one_version_and_one_changed_event(archive) -> None:
    save(archive, page())
    result = save(archive, page(body="现予印发,请认真遵照执行。"))
    assert (result.outcome, result.version) == ("changed", 2)
    assert [event.kind for event in archive.events()] == ["new", "changed"]
    document = archive.find_document(URL)
    assert document.version_count == 2
    assert [v.body.endswith("请认真遵照执行。") for v in document.versions] == [False, True]


def test_volatile_chrome_makes_no_version(archive) -> None:
    save(archive, page(count=100, clock="2024-05-16 10:00"))
    result = save(archive, page(count=101, clock="2024-05-17 08:31"))
    assert result.outcome == "unchanged"
    assert count(archive, Version) == 1


def test_traditional_and_simplified_forms_are_one_version(archive) -> None:
    save(archive, page(body="现予印发,请遵照执行。"))
    assert save(archive, page(body="現予印發,請遵照執行。")).outcome == "unchanged"


def test_http_and_https_and_trailing_noise_are_one_document(archive) -> None:
    save(archive, page())
    noisy = "http://www.jtw.sh.gov.cn:80" + URL.split("jtw.sh.gov.cn", 1)[1] + "?#top"
    assert canonical_url(noisy) == canonical_url(URL)
    assert save(archive, page(), url=noisy).outcome == "unchanged"
    assert count(archive, Document) == 1


def test_identical_raw_pages_are_stored_once(archive) -> None:
    save(archive, page())
    save(archive, page(), url=URL.replace("6ac1", "7bd2"))
    assert count(archive, RawPage) == 1


def test_failure_in_the_middle_of_a_write_leaves_no_partial_rows(archive, monkeypatch) -> None:
    def broken_event(*args, **kwargs):
        raise RuntimeError("disk unplugged")

    monkeypatch.setattr(type(archive), "_add_event", staticmethod(broken_event))
    with pytest.raises(RuntimeError):
        save(archive, page())
    assert [count(archive, model) for model in (Document, Version, Event, RawPage)] == [0, 0, 0, 0]


def test_failure_while_saving_a_change_keeps_the_old_version_whole(archive, monkeypatch) -> None:
    save(archive, page())
    monkeypatch.setattr(type(archive), "_add_event", staticmethod(lambda *a, **k: 1 / 0))
    with pytest.raises(ZeroDivisionError):
        save(archive, page(body="改过的正文。"))
    document = archive.find_document(URL)
    assert (document.version_count, count(archive, Version), count(archive, RawPage)) == (1, 1, 1)


def test_unknown_source_is_a_clear_error(archive) -> None:
    notice = extract_notice(page(), URL)
    with pytest.raises(ArchiveError, match="unknown source 'nowhere'"):
        archive.save_notice("nowhere", URL, notice.as_dict(), notice.content_hash)


def test_runs_record_their_counts(archive) -> None:
    run_id = archive.start_run("shanghai")
    save(archive, page(), run_id=run_id)
    archive.finish_run(run_id, "completed", {"pages": 3, "new": 1})
    run = archive.runs("shanghai")[0][0]
    assert (run.status, run.pages, run.new, run.finished_at is not None) == ("completed", 3, 1, True)
    assert archive.events()[0].run_id == run_id
    assert count(archive, CrawlRun) == 1


def test_export_records_carry_every_design_field(archive) -> None:
    save(archive, page())
    save(archive, page(body="改过的正文。"))
    latest = list(archive.iter_records())
    every = list(archive.iter_records(all_versions=True))
    assert [r["version"] for r in latest] == [2] and [r["version"] for r in every] == [1, 2]
    design = ("source, url, title, doc_number, index_number, issuer, written_date, published_at, disclosure, "
              "doc_type, body, body_original, attachments, version, versions, first_seen, last_changed, "
              "content_hash").split(", ")
    assert set(design) <= set(latest[0])
    record = latest[0]
    assert record["published_at"] == "2024-05-16T10:30:00"
    assert record["versions"] == 2 and record["attachments"] == []
    assert len(record["first_seen"]) == 19 and record["first_seen"][10] == "T"


def test_schema_revision_constant_is_the_newest_migration(sqlite_url: str) -> None:
    from archive.db import SCHEMA_REVISION, create_archive_engine, head_revision

    assert head_revision(create_archive_engine(sqlite_url)) == SCHEMA_REVISION


def test_a_run_that_archived_new_notices_without_finishing_its_walk_forbids_stopping_early(archive) -> None:
    assert not archive.list_walk_completed("shanghai")
    walked = archive.start_run("shanghai")
    save(archive, page(), run_id=walked)
    archive.finish_run(walked, "completed", {"new": 1}, walked_to_end=True)
    assert archive.list_walk_completed("shanghai")
    idle = archive.start_run("shanghai")  # failed at once: archived nothing, so left no gap
    archive.finish_run(idle, "failed", {})
    assert archive.list_walk_completed("shanghai")
    killed = archive.start_run("shanghai")  # archived the top of a list, then died
    save(archive, page(), url=URL.replace(".html", "_2.html"), run_id=killed)
    assert not archive.list_walk_completed("shanghai")
    archive.close_abandoned_runs("shanghai")
    again = archive.start_run("shanghai")
    archive.finish_run(again, "completed", {}, walked_to_end=True)
    assert archive.list_walk_completed("shanghai")


def test_a_lease_has_one_holder_at_a_time(archive) -> None:
    from archive.leases import Lease, LeaseTaken

    with Lease(archive, "crawl:shanghai", holder="a"):
        with pytest.raises(LeaseTaken, match="held by a"):
            Lease(archive, "crawl:shanghai", holder="b").acquire()
        with Lease(archive, "crawl:yunnan", holder="b"):
            pass
    with Lease(archive, "crawl:shanghai", holder="b"):
        pass
