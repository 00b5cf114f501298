"""The `zwgk` command as a user meets it: help, usage errors, extract, export, show, db."""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from archive import open_archive
from crawler.cli import cli
from tests.conftest import ROOT
from tests.test_archive_store import URL, page, save

SEED_PAGE = ROOT / "tests/fixtures/sites/jtw.sh.gov.cn/zxzfxx/20240516/6ac131a8cd94a5cfaeb27303423e1675.html"


def invoke(*args: str, input: str | bytes | None = None):
    return CliRunner().invoke(cli, list(args), input=input, catch_exceptions=False)


def test_console_script_is_installed() -> None:
    script = Path(sys.executable).with_name("zwgk")
    completed = subprocess.run([str(script), "--help"], capture_output=True, text=True)
    assert completed.returncode == 0 and "crawl" in completed.stdout


def walk_commands(command: click.Command = cli, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """The path of every command and subcommand under ``zwgk``, the group itself first."""
    yield path
    if isinstance(command, click.Group):
        context = click.Context(command)
        for name in command.list_commands(context):
            yield from walk_commands(command.get_command(context, name), (*path, name))


def command_at(path: tuple[str, ...]) -> click.Command:
    command = cli
    for name in path:
        command = command.get_command(click.Context(command), name)
    return command


def help_page(path: tuple[str, ...]):
    return CliRunner().invoke(cli, [*path, "--help"], prog_name="zwgk", catch_exceptions=False)


ALL_COMMANDS = list(walk_commands())
# Options whose --help line says nothing but its default; a description is still owed.
def command_id(path: tuple[str, ...]) -> str:
    return " ".join(("zwgk", *path))


def option_params() -> Iterator:
    for path in ALL_COMMANDS:
        for option in command_at(path).params:
            if isinstance(option, click.Option) and not option.hidden:
                name = max(option.opts, key=len)
                yield pytest.param(path, option, id=f"{command_id(path)} {name}")


def test_the_walk_finds_the_commands_a_user_knows() -> None:
    assert {("crawl",), ("export",), ("search",), ("db", "upgrade"), ("alerts", "run"), ("schedule", "run")} \
        <= set(ALL_COMMANDS)


@pytest.mark.parametrize("path", ALL_COMMANDS, ids=command_id)
def test_every_command_has_help(path: tuple[str, ...]) -> None:
    result = help_page(path)
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"Usage: {command_id(path)} ")
    description = (command_at(path).help or command_at(path).short_help or "").strip()
    assert description, f"{command_id(path)} has no description"
    assert description.split("\n")[0].split()[0] in result.output


@pytest.mark.parametrize(("path", "option"), list(option_params()))
def test_every_option_is_described(path: tuple[str, ...], option: click.Option) -> None:
    """Its --help line says what it does, beyond its metavar and the [default: …] notes."""
    command = command_at(path)
    names, text = option.get_help_record(click.Context(command, info_name=command_id(path)))
    assert names.split()[0].rstrip(",") in help_page(path).output
    assert re.sub(r"\s*\[[^\]]*\]\s*$", "", text).strip(), f"{command_id(path)} {names} has no description"


@pytest.mark.parametrize(("args", "message"), [
    (["crawl"], "name at least one source"),
    (["crawl", "nowhere"], "unknown source nowhere"),
    (["crawl", "shanghai", "--all"], "not both"),
    (["crawl", "shanghai", "-s", "NOEQUALS"], "NAME=VALUE"),
    (["crawl", "shanghai", "-s", "HOST_MAP={not json"], "HOST_MAP is not valid JSON"),
    (["crawl", "shanghai", "-s", "DOWNLOAD_DELAY=soon"], "DOWNLOAD_DELAY takes a number"),
    (["crawl", "shanghai", "-s", "CONCURRENT_REQUESTS_PER_DOMAIN=0"], "must be at least 1"),
    (["crawl", "shanghai", "-s", "RETRY_TIMES=-2"], "cannot be negative"),
    (["crawl", "shanghai", "-s", "ROBOTSTXT_OBEY=perhaps"], "takes true or false"),
    (["search", "(公路"], "without its"),
    (["alerts", "add", "x", "--source-health", "-q", "公路", "--notify", "json://h/x"], "takes no query"),
    (["alerts", "add", "x", "--source-health", "--changes", "--notify", "json://h/x"], "--changes"),
    (["schedule", "list", "--config", "/no/such/zwgk.toml"], "cannot read config file"),
    (["export", "--format", "xml"], "'xml' is not one of"),
    (["export", "--db", "not a url"], "not a database URL"),
    (["extract", "/no/such/file.html", "--url", "http://x/"], "No such file"),
    (["extract", "-", "--url", "http://x/", "--source", "nowhere"], "unknown source"),
])
def test_bad_usage_is_one_line_and_exit_2(args: list[str], message: str, tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, args, input="")
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output


def test_a_malformed_host_map_in_the_environment_is_a_usage_error(tmp_path: Path) -> None:
    from tests.conftest import run_zwgk

    result = run_zwgk("crawl", "shanghai", "--db", f"sqlite:///{tmp_path / 'a.sqlite3'}", host_map="{oops")
    assert result.returncode == 2
    assert "HOST_MAP is not valid JSON" in result.stderr and "Traceback" not in result.stderr


def test_a_database_that_cannot_be_opened_is_one_line_and_exit_1(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["export", "--db", "postgresql+psycopg://nobody@127.0.0.1:9/none"])
    assert result.exit_code == 1
    assert result.output.startswith("Error: cannot open the archive:")
    assert len(result.output.strip().splitlines()) == 1


def test_extract_a_saved_page_from_stdin_with_a_source() -> None:
    url = "https://jtw.sh.gov.cn/zxzfxx/20240516/6ac131a8cd94a5cfaeb27303423e1675.html"
    result = invoke("extract", "-", "--url", url, "--source", "shanghai", input=SEED_PAGE.read_bytes())
    record = json.loads(result.output)
    assert record["source"] == "shanghai"
    assert record["doc_number"] == "沪交办〔2024〕323号"
    assert record["written_date"] == "2024-05-13"
    assert len(record["content_hash"]) == 64


def test_export_writes_jsonl_and_csv_files_whole(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'a.sqlite3'}"
    archive = open_archive(db)
    archive.ensure_source("shanghai", "上海市交通委员会", "jtw.sh.gov.cn", "shanghai_ivs")
    save(archive, page())
    save(archive, page(body="改过的正文。"))
    archive.close()

    invoke("export", "--db", db, "--format", "csv", "-o", str(tmp_path / "out.csv"))
    rows = list(csv.DictReader(io.StringIO((tmp_path / "out.csv").read_text(encoding="utf-8"))))
    assert len(rows) == 1 and rows[0]["version"] == "2" and json.loads(rows[0]["attachments"]) == []
    assert rows[0]["doc_number"] == "沪交办〔2024〕323号"

    invoke("export", "--db", db, "--all-versions", "-o", str(tmp_path / "all.jsonl"))
    lines = (tmp_path / "all.jsonl").read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["version"] for line in lines] == [1, 2]
    assert not list(tmp_path.glob(".*.part"))


def test_an_export_that_fails_half_way_leaves_the_previous_file(tmp_path: Path, monkeypatch) -> None:
    from archive import ArchiveError
    from archive.output import export

    db = f"sqlite:///{tmp_path / 'a.sqlite3'}"
    archive = open_archive(db)
    archive.ensure_source("shanghai", "上海市交通委员会", "jtw.sh.gov.cn", "shanghai_ivs")
    save(archive, page())
    archive.close()
    target = tmp_path / "out.jsonl"
    target.write_text("the previous export\n", encoding="utf-8")

    def failing(records):
        yield "{}\n"
        raise ArchiveError("the database went away")

    monkeypatch.setattr(export, "jsonl_lines", failing)
    result = CliRunner().invoke(cli, ["export", "--db", db, "-o", str(target)])
    assert result.exit_code == 1 and "the database went away" in result.output
    assert target.read_text(encoding="utf-8") == "the previous export\n"
    assert [path.name for path in tmp_path.iterdir() if path.name.startswith(".")] == []


def test_show_by_url_and_by_id(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'a.sqlite3'}"
    archive = open_archive(db)
    archive.ensure_source("shanghai", "上海市交通委员会", "jtw.sh.gov.cn", "shanghai_ivs")
    document_id = save(archive, page()).document_id
    save(archive, page(body="改过的正文。"))
    archive.close()
    by_url = invoke("show", URL, "--db", db).output
    assert "沪交办〔2024〕323号" in by_url and "2 of 2" in by_url and "改过的正文。" in by_url
    first = json.loads(invoke("show", str(document_id), "--version", "1", "--json", "--db", db).output)
    assert first["version"] == 1 and "改过的正文" not in first["body"]
    missing = CliRunner().invoke(cli, ["show", "https://jtw.sh.gov.cn/none.html", "--db", db])
    assert missing.exit_code == 1 and "no archived notice" in missing.output


def test_db_upgrade_creates_and_then_keeps_the_schema(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'new.sqlite3'}"
    assert "was empty" in invoke("db", "upgrade", "--db", db).output
    from archive.db import SCHEMA_REVISION

    assert f"(was {SCHEMA_REVISION})" in invoke("db", "upgrade", "--db", db).output


def test_sources_lists_the_registry() -> None:
    output = invoke("sources").output
    assert "shanghai" in output and "上海市交通委员会" in output and "https://jtw.sh.gov.cn/zxzfxx/index.html" in output
    assert json.loads(invoke("sources", "--json").output)["shanghai"]["platform"] == "shanghai_ivs"


def test_a_broken_registry_file_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "sources.toml"
    bad.write_text('[x]\nname = "X"\n', encoding="utf-8")
    result = CliRunner().invoke(cli, ["sources", "--sources", str(bad)])
    assert result.exit_code == 2 and "lacks host, platform, columns" in result.output


@pytest.mark.parametrize(("args", "code", "message"), [
    (["db", "upgrade", "--db", "sqlite:///{tmp}"], 2, "is a directory"),
    (["export", "--db", "foo://x/y"], 2, "unknown database kind"),
    (["db", "upgrade", "--db", "postgresql+psycopg://nobody@127.0.0.1:9/none"], 1, "cannot open the archive"),
    (["export", "--db", "sqlite:///{tmp}/a.sqlite3", "-o", "{tmp}/no/such/dir/x.jsonl"], 1, "cannot write"),
    (["show", "²", "--db", "sqlite:///{tmp}/a.sqlite3"], 1, "no archived notice"),
    (["show", "99999999999999999999999", "--db", "sqlite:///{tmp}/a.sqlite3"], 1, "no archived notice"),
])
def test_archive_and_file_problems_are_one_line(args: list[str], code: int, message: str, tmp_path: Path) -> None:
    open_archive(f"sqlite:///{tmp_path / 'a.sqlite3'}").close()
    result = CliRunner().invoke(cli, [arg.replace("{tmp}", str(tmp_path)) for arg in args])
    assert result.exit_code == code, result.output
    assert message in result.output and "Traceback" not in result.output


def test_show_version_zero_is_refused(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'a.sqlite3'}"
    archive = open_archive(db)
    archive.ensure_source("shanghai", "上海市交通委员会", "jtw.sh.gov.cn", "shanghai_ivs")
    save(archive, page())
    archive.close()
    result = CliRunner().invoke(cli, ["show", URL, "--version", "0", "--db", db])
    assert result.exit_code == 1 and "not 0" in result.output


def test_csv_export_of_an_empty_archive_has_its_header(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'a.sqlite3'}"
    open_archive(db).close()
    output = invoke("export", "--db", db, "--format", "csv").output
    assert output.splitlines()[0].startswith("source,url,title,doc_number")


@pytest.mark.parametrize(("entry", "message"), [
    ('columns = "https://x.gov.cn/"', "columns must be a list of strings"),
    ('columns = ["https://x.gov.cn/"]\nbody_selector = ["#zoom"]', "unknown keys body_selector"),
    ('columns = ["https://x.gov.cn/"]\nbody_selectors = ["div[["]', "bad CSS selector"),
    ('columns = ["https://x.gov.cn/"]\ndetail_pattern = "(["', "bad detail_pattern"),
])
def test_registry_mistakes_are_reported(entry: str, message: str, tmp_path: Path) -> None:
    registry = tmp_path / "sources.toml"
    registry.write_text(f'[x]\nname = "X"\nhost = "x.gov.cn"\nplatform = "shanghai_ivs"\n{entry}\n', encoding="utf-8")
    result = CliRunner().invoke(cli, ["sources", "--sources", str(registry)])
    assert result.exit_code == 2 and message in result.output


def test_a_source_on_an_unknown_platform_is_refused_before_crawling(tmp_path: Path) -> None:
    registry = tmp_path / "sources.toml"
    registry.write_text('[x]\nname = "X"\nhost = "x.gov.cn"\nplatform = "nope"\ncolumns = ["https://x.gov.cn/"]\n',
                        encoding="utf-8")
    result = CliRunner().invoke(cli, ["crawl", "x", "--sources", str(registry), "--db", f"sqlite:///{tmp_path}/a.db"])
    assert result.exit_code == 2 and "known platforms: generic, guangdong, hunan_numeric, shanghai_ivs" in result.output


def test_doctor_names_a_reader_for_every_format() -> None:
    output = invoke("doctor").output
    assert "pdf: pypdfium2" in output and "docx: python-docx" in output and "ofd: built in" in output
    assert "doc/wps:" in output  # antiword/catdoc, or MISSING where neither is installed
