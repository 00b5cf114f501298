"""NUL and control characters from crawled pages: removed before either backend, kept in the raw page.

PostgreSQL refuses NUL in text where SQLite takes it, so a notice holding one was
archived on one backend and lost on the other, and `zwgk db copy` aborted; an ESC
sequence in a title drove the terminal of whoever ran `zwgk show`.
"""

from __future__ import annotations

import json

from fastapi.testclient import TestClient
from sqlalchemy import create_engine, select, text

from archive import open_archive
from archive.models import Attachment, Version
from archive.search.query import parse_query
from archive.store import AttachmentFile
from archive.web.app import create_app
from tests.conftest import run_zwgk
from tests.test_archive_store import URL, page, save

CONTROL = "\x00\x07\x1b\x7f\x9b"
HOSTILE_TITLE = "关于\x00公路\x1b[2J\x1b]0;pwned\x07养护的通知"
HOSTILE_BODY = "第一段\x00文字\x1b[31m红色\x1b[0m。"
TIMES = ("first_seen", "last_changed", "version_seen_at")


def archived(db_url: str) -> dict:
    """The one notice of the archive at ``db_url``, as exported, without the times of this run."""
    archive = open_archive(db_url)
    archive.ensure_source("shanghai", "上海市交通委员会", "jtw.sh.gov.cn", "shanghai_ivs")
    save(archive, page(body=HOSTILE_BODY, title=HOSTILE_TITLE))
    archive.close()
    [record] = map(json.loads, run_zwgk("export", "--db", db_url).stdout.splitlines())
    return {name: value for name, value in record.items() if name not in TIMES}


def test_a_notice_holding_nul_and_escapes_is_archived_alike_on_both_backends(sqlite_url: str,
                                                                            postgres_url: str) -> None:
    on_sqlite, on_postgres = archived(sqlite_url), archived(postgres_url)
    assert on_sqlite == on_postgres
    assert on_sqlite["title"] == "关于公路[2J]0;pwned养护的通知" and "第一段文字[31m红色[0m。" in on_sqlite["body"]
    assert not any(char in json.dumps(on_sqlite, ensure_ascii=False) for char in CONTROL)
    for url in (sqlite_url, postgres_url):
        archive = open_archive(url)
        hits = archive.search(parse_query("公\x00路"))
        assert [hit.url for hit in hits.hits] == [URL], url
        with archive.session() as session:
            raw_sha256 = session.scalar(text("SELECT raw_sha256 FROM versions"))
        assert b"\x00" in archive.raw_page(raw_sha256), "the raw page keeps its bytes"
        archive.close()
        with TestClient(create_app(db_url=url)) as client:
            answer = client.get("/api/search", params={"q": "公\x00路"})
        assert answer.status_code == 200 and answer.json()["total"] == 1, (url, answer.text)


def test_the_archive_drops_control_characters_from_any_caller(db_url: str) -> None:
    archive = open_archive(db_url)
    archive.ensure_source("shanghai", "上海市交通委员会", "jtw.sh.gov.cn", "shanghai_ivs")
    fields = {"title": HOSTILE_TITLE, "body": HOSTILE_BODY, "body_original": HOSTILE_BODY, "issuer": "交\x00委"}
    archive.save_notice("shanghai", URL, fields, "0" * 64, attachments=[
        AttachmentFile(f"{URL}.pdf", "附\x00件.pdf", b"%PDF-", text="附件\x00正文\x1b[1m", error=None)])
    with archive.session() as session:
        version = session.scalars(select(Version)).one()
        attachment = session.scalars(select(Attachment)).one()
        stored = [version.title, version.body, version.body_original, version.issuer, attachment.name,
                  attachment.text]
    archive.close()
    assert stored == ["关于公路[2J]0;pwned养护的通知", "第一段文字[31m红色[0m。", "第一段文字[31m红色[0m。", "交委",
                      "附件.pdf", "附件正文[1m"]


def older_sqlite_archive(sqlite_url: str) -> None:
    """An SQLite archive written before control characters were dropped: NUL and ESC in its text."""
    archive = open_archive(sqlite_url)
    archive.ensure_source("shanghai", "上海市交通委员会", "jtw.sh.gov.cn", "shanghai_ivs")
    save(archive, page())
    archive.close()
    engine = create_engine(sqlite_url)
    with engine.begin() as connection:  # below the models, as an older zwgk wrote it
        connection.execute(text("UPDATE versions SET title = :title, body = :body"),
                           {"title": HOSTILE_TITLE, "body": HOSTILE_BODY})
    engine.dispose()


def test_db_copy_of_an_archive_holding_nul_to_postgresql_succeeds(sqlite_url: str, postgres_url: str) -> None:
    older_sqlite_archive(sqlite_url)
    copied = run_zwgk("db", "copy", "--to", postgres_url, "--db", sqlite_url)
    assert copied.returncode == 0, copied.stderr
    [record] = map(json.loads, run_zwgk("export", "--db", postgres_url).stdout.splitlines())
    assert record["title"] == "关于公路[2J]0;pwned养护的通知" and record["body"] == "第一段文字[31m红色[0m。"


def test_show_search_and_history_print_no_escape_sequence(sqlite_url: str) -> None:
    older_sqlite_archive(sqlite_url)
    outputs = [run_zwgk("show", URL, "--db", sqlite_url), run_zwgk("search", "第一段", "--db", sqlite_url),
               run_zwgk("history", URL, "--db", sqlite_url)]
    for result in outputs:
        assert result.returncode == 0, result.stderr
        assert not any(char in result.stdout for char in CONTROL), result.stdout
    assert "关于公路养护的通知" in outputs[0].stdout and "第一段文字红色。" in outputs[0].stdout


def test_terminal_safe_removes_whole_sequences_and_keeps_text() -> None:
    from crawler.cli.common import terminal_safe

    hostile = "标题\x1b[2J\x1b[1;31m红\x1b[0m\x1b]0;title\x07\x1b]8;;http://x\x1b\\链接\x9b31m\r覆盖\x00\t列\n行"
    assert terminal_safe(hostile) == "标题红链接覆盖\t列\n行"
