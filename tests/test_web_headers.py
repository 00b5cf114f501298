"""What every answer of `zwgk serve` carries, over real HTTP under uvicorn: the security headers on pages, API,
feeds, downloads and errors alike; feed links from the configured base URL whatever the Host header says;
CSV downloads whose formula cells are neutralised."""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import feedparser
import httpx
import pytest

from archive import Archive, open_archive
from archive.store import AttachmentFile
from archive.web import create_app
from tests.conftest import ROOT, free_port, serving, wait_for
from tests.test_read_only import URL, build_archive

pytestmark = pytest.mark.slow  # uvicorn servers

BASE_URL = "https://zwgk.example.org/archive/"
FORMULA_TITLE = '=HYPERLINK("http://x","y") 公路'
# Markup that would run if any field reached a page unescaped.
PAYLOAD = "\"'><script>alert(1)</script><img src=x onerror=alert(2)>"
HOSTILE_FIELDS = ("title", "doc_number", "index_number", "issuer", "written_date", "disclosure", "doc_type", "topic",
                  "keywords", "column")


@dataclass(frozen=True)
class Served:
    base: str
    archive: Archive
    document_id: int
    attachment_id: int
    hostile_id: int


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    db_url = f"sqlite:///{tmp_path_factory.mktemp('headers')}/archive.sqlite3"
    document_id, attachment_id = build_archive(db_url)
    writer = open_archive(db_url)
    writer.save_notice("shanghai", URL.replace("0001", "0002"), {
        "title": FORMULA_TITLE, "body": "公路 @SUM(1)", "body_original": "", "issuer": "+1",
        "published_at": "2024-06-01"}, "formula")
    hostile_url = URL.replace("0001", "0003")
    fields = {**{name: f"公路 {PAYLOAD} {name}" for name in HOSTILE_FIELDS}, "body": f"公路 {PAYLOAD}",
              "body_original": PAYLOAD, "published_at": "2024-07-01"}
    writer.save_notice("shanghai", hostile_url, fields, "hostile-1")
    hostile = writer.save_notice("shanghai", hostile_url, {**fields, "body": f"公路养护 {PAYLOAD} 修订"}, "hostile-2",
                                 attachments=[AttachmentFile(f"https://jtw.sh.gov.cn/{PAYLOAD}.pdf", PAYLOAD,
                                                             body=b"%PDF-1.4", text=PAYLOAD)])
    writer.close()
    archive = open_archive(db_url, read_only=True)
    with serving(create_app(archive, base_url=BASE_URL)) as base:
        yield Served(base, archive, document_id, attachment_id, hostile.document_id)
    archive.close()


def routes(served: Served) -> list[tuple[str, str, int, str]]:
    """(method, path, expected status, expected content type) of every kind of route and answer."""
    notice, attachment = served.document_id, served.attachment_id
    return [
        ("GET", "/?q=公路", 200, "text/html"),
        ("GET", f"/notices/{notice}", 200, "text/html"),
        ("GET", f"/notices/{notice}/diff?a=1&b=2", 200, "text/html"),
        ("GET", "/api/search?q=公路", 200, "application/json"),
        ("GET", f"/api/notices/{notice}", 200, "application/json"),
        ("GET", f"/api/notices/{notice}/diff", 200, "application/json"),
        ("GET", "/openapi.json", 200, "application/json"),
        ("GET", "/api/docs", 200, "text/html"),
        ("GET", "/feed.atom?q=公路", 200, "application/atom+xml"),
        ("GET", "/alerts/roads.atom", 200, "application/atom+xml"),
        ("GET", "/search.csv?q=公路", 200, "text/csv"),
        ("GET", "/search.jsonl?q=公路", 200, "application/x-ndjson"),
        ("GET", f"/attachments/{attachment}", 200, "application/octet-stream"),
        ("GET", "/notices/999999", 404, "text/html"),
        ("GET", "/api/notices/999999", 404, "application/json"),
        ("GET", "/no/such/page", 404, "text/html"),
        ("GET", "/alerts/nobody.atom", 404, "text/html"),
        ("POST", "/", 405, "text/html"),
        ("DELETE", "/api/search", 405, "application/json"),
        ("GET", "/api/search?sort=sideways", 422, "application/json"),
        ("GET", "/api/search?q=(公路", 400, "application/json"),
        ("GET", "/?q=year:20x", 400, "text/html"),
    ]


def assert_secured(response: httpx.Response, what: str) -> None:
    policy = response.headers.get("content-security-policy", "")
    assert "frame-ancestors 'none'" in policy, what
    assert response.headers.get("x-content-type-options") == "nosniff", what
    assert response.headers.get("referrer-policy") == "no-referrer", what


def test_every_answer_carries_the_security_headers(served: Served) -> None:
    for method, path, status, media in routes(served):
        what = f"{method} {path}"
        response = httpx.request(method, served.base + path, timeout=30)
        assert response.status_code == status, what
        assert response.headers["content-type"].startswith(media), what
        assert_secured(response, what)
        if media == "text/html" and path != "/api/docs":
            assert "script-src 'none'" in response.headers["content-security-policy"], what


def test_an_internal_error_carries_them_too(served: Served, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args, **kwargs):
        raise RuntimeError("the database went away")

    monkeypatch.setattr(served.archive, "search", broken)
    for path, media in (("/?q=公路", "text/html"), ("/api/search?q=公路", "application/json")):
        response = httpx.get(served.base + path, timeout=30)
        assert response.status_code == 500 and response.headers["content-type"].startswith(media), path
        assert "went away" not in response.text, "an internal error is not shown to the reader"
        assert_secured(response, path)


@pytest.mark.parametrize("path", ["/feed.atom?q=公路", "/alerts/roads.atom"])
def test_feed_links_do_not_follow_the_host_header(served: Served, path: str) -> None:
    response = httpx.get(served.base + path, headers={"Host": "evil.example"}, timeout=30)
    assert response.status_code == 200 and "evil.example" not in response.text
    feed = feedparser.parse(response.content)
    links = [link.href for link in feed.feed.links] + [entry.link for entry in feed.entries]
    assert feed.entries and all(link.startswith(BASE_URL) for link in links), links
    assert any(link.startswith(BASE_URL + "notices/") for link in links)


def test_search_csv_neutralises_formula_cells(served: Served) -> None:
    text = httpx.get(served.base + "/search.csv", params={"q": "公路"}, timeout=30).content.decode("utf-8-sig")
    [row] = [row for row in csv.DictReader(io.StringIO(text)) if "HYPERLINK" in row["title"]]
    assert row["title"] == "'" + FORMULA_TITLE and row["issuer"] == "'+1" and row["body"] == "公路 @SUM(1)"
    jsonl = httpx.get(served.base + "/search.jsonl", params={"q": "公路"}, timeout=30).text
    assert '"title": "=HYPERLINK(' in jsonl, "JSON Lines keep the text as archived"


def serve_process(db_url: str, *args: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "crawler.cli", "serve", "--port", str(port), "--db", db_url,
                                *args], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "PYTHONWARNINGS": "ignore"})
    return process, f"http://127.0.0.1:{port}"


def answers(base: str) -> bool:
    try:
        return httpx.get(base + "/api/search", timeout=5).status_code == 200
    except httpx.TransportError:
        return False


def test_serve_takes_its_base_url_from_the_config(tmp_path: Path) -> None:
    db_url = f"sqlite:///{tmp_path}/archive.sqlite3"
    build_archive(db_url)
    config = tmp_path / "zwgk.toml"
    config.write_text('[alerts]\nbase_url = "https://zwgk.example.org/"\n', encoding="utf-8")
    process, base = serve_process(db_url, "--config", str(config))
    try:
        wait_for(lambda: answers(base) or process.poll() is not None, "zwgk serve to answer", timeout=90)
        assert process.poll() is None, process.stderr.read()
        feed = httpx.get(base + "/feed.atom", headers={"Host": "evil.example"}, timeout=30).text
        assert "https://zwgk.example.org/notices/" in feed and "evil.example" not in feed
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_serve_refuses_a_base_url_that_is_not_http(tmp_path: Path) -> None:
    db_url = f"sqlite:///{tmp_path}/archive.sqlite3"
    build_archive(db_url)
    process, _ = serve_process(db_url, "--base-url", "javascript:alert(1)")
    _, stderr = process.communicate(timeout=90)
    assert process.returncode == 2 and "is not an http(s) URL" in stderr


def test_payloads_in_every_field_reach_no_page_unescaped(served: Served) -> None:
    hostile = served.hostile_id
    answers = {path: httpx.get(served.base + path, timeout=30) for path in (
        "/?q=公路", "/?q=公路&all_versions=true", f"/?q={PAYLOAD}", f"/?q=year:{PAYLOAD}", f"/?issuer={PAYLOAD}",
        f"/notices/{hostile}", f"/notices/{hostile}?version=1", f"/notices/{hostile}/diff", "/feed.atom?q=公路",
        "/alerts/roads.atom", "/notices/999999", f"/no/{PAYLOAD}")}
    for path, response in answers.items():
        assert "<script>alert" not in response.text and "<img src=x" not in response.text, path
    notice = answers[f"/notices/{hostile}"].text
    assert notice.count("&lt;script&gt;alert(1)&lt;/script&gt;") >= len(HOSTILE_FIELDS), "every field is shown, escaped"
    feed = feedparser.parse(answers["/feed.atom?q=公路"].content)
    assert any(entry.title == f"公路 {PAYLOAD} title" for entry in feed.entries), "the feed has the title as text"
    api = httpx.get(served.base + f"/api/notices/{hostile}", timeout=30)
    assert api.headers["content-type"] == "application/json"
    assert api.json()["record"]["issuer"] == f"公路 {PAYLOAD} issuer"
