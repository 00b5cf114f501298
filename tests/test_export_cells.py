"""CSV exports a spreadsheet opens without running crawled text as formulas (OWASP "CSV injection")."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pyarrow.parquet as pq
from click.testing import CliRunner

from archive import open_archive
from crawler.cli import cli

# Titles a hostile page could carry: each would run (or call out) in Excel or LibreOffice if written as it is.
FORMULAS = ['=HYPERLINK("http://x","y")', "=cmd|' /C calc'!A0", "+1", "@SUM(1)", "-2", "\t=1+1", "\r=1+1"]


def archive_of_formulas(db_url: str) -> None:
    archive = open_archive(db_url)
    archive.ensure_source("shanghai", "上海市交通委员会", "jtw.sh.gov.cn", "shanghai_ivs")
    for number, title in enumerate(FORMULAS):
        archive.save_notice("shanghai", f"https://jtw.sh.gov.cn/zxzfxx/20250101/f{number}.html", {
            "title": title, "body": f"公路 {title}", "body_original": "", "published_at": "2025-01-01",
            "issuer": "=1+2"}, f"hash{number}")
    archive.close()


def export(db_url: str, *args: str) -> str:
    result = CliRunner().invoke(cli, ["export", "--db", db_url, *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stdout


def csv_rows(text: str) -> list[dict[str, str]]:
    return sorted(csv.DictReader(io.StringIO(text)), key=lambda row: row["url"])


def test_csv_cells_that_would_run_as_formulas_are_neutralised(db_url: str) -> None:
    archive_of_formulas(db_url)
    rows = csv_rows(export(db_url, "--format", "csv"))
    assert [row["title"] for row in rows] == ["'" + title for title in FORMULAS]
    assert {row["issuer"] for row in rows} == {"'=1+2"}
    assert all(row["body"].startswith("公路 ") for row in rows), "cells that start with text stay as they are"
    assert {row["published_at"] for row in rows} == {"2025-01-01"}


def test_raw_cells_keeps_them_as_they_are(db_url: str) -> None:
    archive_of_formulas(db_url)
    rows = csv_rows(export(db_url, "--format", "csv", "--raw-cells"))
    assert [row["title"] for row in rows] == FORMULAS


def test_json_lines_and_parquet_keep_the_text_as_archived(db_url: str, tmp_path: Path) -> None:
    archive_of_formulas(db_url)
    lines = [json.loads(line) for line in export(db_url).splitlines()]
    assert sorted(record["title"] for record in lines) == sorted(FORMULAS)
    export(db_url, "--format", "parquet", "-o", str(tmp_path / "out.parquet"))
    assert sorted(pq.read_table(tmp_path / "out.parquet").column("title").to_pylist()) == sorted(FORMULAS)


def test_raw_cells_is_for_csv_only(sqlite_url: str) -> None:
    result = CliRunner().invoke(cli, ["export", "--db", sqlite_url, "--raw-cells"])
    assert result.exit_code == 2 and "--raw-cells is for --format csv" in result.output
