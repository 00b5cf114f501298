"""The web app and the reading commands cannot write: the database itself refuses, on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from alembic import command
from click.testing import CliRunner
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, func, insert, inspect, select
from sqlalchemy.exc import DBAPIError

from archive import open_archive
from archive.alerts import Alerts
from archive.db import SCHEMA_REVISION, alembic_config
from archive.models import Base, Source
from archive.store import AttachmentFile
from archive.web import create_app
from crawler.cli import cli

URL = "https://jtw.sh.gov.cn/zxzfxx/20240516/0001.html"
WRITE_REFUSED = r"attempt to write a readonly database|cannot execute INSERT in a read-only transaction"


def build_archive(db_url: str) -> tuple[int, int]:
    """A notice with two versions and an attachment, and an alert rule, written and closed as a crawl
    leaves them; returns the notice's and the attachment's ids."""
    archive = open_archive(db_url)
    archive.ensure_source("shanghai", "上海市交通委员会", "jtw.sh.gov.cn", "shanghai_ivs")
    fields = {"title": "关于公路养护的通知", "body": "公路养护工作。", "body_original": "公路养护工作。",
              "published_at": "2024-05-16"}
    archive.save_notice("shanghai", URL, fields, "v1")
    saved = archive.save_notice("shanghai", URL, {**fields, "body": "公路养护工作，修订。"}, "v2", attachments=[
        AttachmentFile("https://jtw.sh.gov.cn/cmsres/a.pdf", "附件", body=b"%PDF-1.4 fixture", text="附件正文")])
    Alerts(archive).add("roads", "公路", ["json://127.0.0.1:9/hook"])
    attachment_id = archive.find_document(URL).versions[-1].attachments[0].id
    archive.close()
    return saved.document_id, attachment_id


def row_counts(archive) -> dict[str, int]:
    with archive.session() as session:
        return {table.name: session.scalar(select(func.count()).select_from(table))
                for table in Base.metadata.sorted_tables}


def sqlite_file(db_url: str) -> Path | None:
    return Path(db_url.removeprefix("sqlite:///")) if db_url.startswith("sqlite:") else None


def fingerprint(path: Path | None) -> tuple[str, int] | None:
    return (hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns) if path else None


def test_no_request_can_write_to_the_archive(db_url: str) -> None:
    document_id, attachment_id = build_archive(db_url)
    before = fingerprint(sqlite_file(db_url))
    app = create_app(db_url=db_url)
    counts = row_counts(app.state.archive)
    routes = ["/", "/?q=公路", "/?q=公路&source=shanghai&all_versions=true", f"/notices/{document_id}",
              f"/notices/{document_id}?version=1", f"/notices/{document_id}/diff",
              f"/notices/{document_id}/diff?a=1&b=2",
              f"/attachments/{attachment_id}", "/search.csv?q=公路", "/search.jsonl", "/feed.atom?q=公路",
              "/alerts/roads.atom", "/api/search?q=公路", f"/api/notices/{document_id}",
              f"/api/notices/{document_id}/diff", "/openapi.json", "/api/docs"]
    with TestClient(app) as client:
        for route in routes:
            assert client.get(route).status_code == 200, route
        assert client.get(f"/notices/{document_id}?version=9").status_code == 404
        assert client.post("/api/search?q=公路").status_code == 405
    assert row_counts(app.state.archive) == counts
    with pytest.raises(DBAPIError, match=WRITE_REFUSED), app.state.archive.transaction() as session:
        session.execute(insert(Source).values(key="x", name="x", host="x.gov.cn", platform="generic"))
    with pytest.raises(DBAPIError, match=WRITE_REFUSED):
        app.state.archive.ensure_source("x", "x", "x.gov.cn", "generic")
    app.state.archive.close()
    assert fingerprint(sqlite_file(db_url)) == before


@pytest.mark.parametrize("command_line", [["serve"], ["search", "公路"], ["export"], ["show", "1"], ["runs"]])
def test_reading_a_missing_archive_is_one_line_and_creates_nothing(command_line: list[str], tmp_path: Path) -> None:
    missing = tmp_path / "not" / "here.sqlite3"
    result = CliRunner().invoke(cli, [*command_line, "--db", f"sqlite:///{missing}"])
    assert result.exit_code == 1
    assert result.output == f"Error: no archive at {missing}: crawl into it first (zwgk crawl), or give --db\n"
    assert not (tmp_path / "not").exists()


def test_an_empty_postgresql_database_is_no_archive_to_serve(postgres_url: str) -> None:
    result = CliRunner().invoke(cli, ["serve", "--db", postgres_url])
    assert result.exit_code == 1 and "Error: no archive at postgresql+psycopg://" in result.output
    assert len(result.output.splitlines()) == 1
    engine = create_engine(postgres_url)
    assert inspect(engine).get_table_names() == []  # the refusal created nothing
    engine.dispose()


@pytest.mark.parametrize("command_line", [["serve"], ["search", "公路"], ["export"], ["crawl", "shanghai"]])
def test_an_out_of_date_schema_is_an_operational_error_of_one_line(command_line: list[str], sqlite_url: str) -> None:
    archive = open_archive(sqlite_url)
    command.downgrade(alembic_config(archive.engine), "0003")
    archive.close()
    result = CliRunner().invoke(cli, [*command_line, "--db", sqlite_url])
    assert result.exit_code == 1
    assert result.output == (f"Error: the archive at {sqlite_file(sqlite_url)} is at schema 0003, this zwgk needs "
                             f"{SCHEMA_REVISION}: run `zwgk db upgrade` (back the database up first)\n")


@pytest.mark.parametrize("command_line", [["serve"], ["search", "公路"], ["export"], ["db", "upgrade"]])
def test_an_unreachable_postgresql_is_an_operational_error_of_one_line(command_line: list[str]) -> None:
    result = CliRunner().invoke(cli, [*command_line, "--db", "postgresql+psycopg://nobody@127.0.0.1:9/none"])
    assert result.exit_code == 1
    assert result.output.startswith("Error: cannot open the archive: ") and "127.0.0.1" in result.output
    assert len(result.output.splitlines()) == 1


@pytest.mark.parametrize("db", ["not a url", "foo://x/y"])
@pytest.mark.parametrize("command_line", [["serve"], ["search", "公路"], ["crawl", "shanghai"]])
def test_a_bad_database_url_is_a_usage_error(command_line: list[str], db: str) -> None:
    result = CliRunner().invoke(cli, [*command_line, "--db", db])
    assert result.exit_code == 2
    assert len(result.output.splitlines()) == 1 and "Traceback" not in result.output
