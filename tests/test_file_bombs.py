"""Office files built as zip bombs: refused before python-docx or openpyxl unpack them.

The bombs are generated here (never committed): a real DOCX or XLSX whose main XML
part is replaced by a run repeated until it inflates to about 200 MiB, about 280 KB
zipped, as the one met in the wild.
"""

from __future__ import annotations

import io
import json
import tracemalloc
import zipfile

import pytest

from crawler.extract.files import MAX_COMPRESSION_RATIO, extract_file_text
from crawler.extract.sandbox import extract_file_text_safely
from tests.conftest import FixtureSite, crawl, run_zwgk, summary_row
from tests.test_extract_files import make_docx, make_xlsx

INFLATED = 200 * 1024 * 1024


def inflate_member(package: bytes, member: str, head: bytes, run: bytes, tail: bytes) -> bytes:
    """``package`` with ``member`` replaced by ``head``, ``run`` repeated to :data:`INFLATED` bytes, ``tail``."""
    source = zipfile.ZipFile(io.BytesIO(package))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as bomb:
        for info in source.infolist():
            if info.filename != member:
                bomb.writestr(info, source.read(info))
                continue
            with bomb.open(member, "w", force_zip64=True) as part:
                part.write(head)
                chunk = run * (1024 * 1024 // len(run))
                for _ in range(INFLATED // len(chunk) + 1):
                    part.write(chunk)
                part.write(tail)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def docx_bomb() -> bytes:
    namespace = b'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"'
    return inflate_member(make_docx(), "word/document.xml", b"<w:document " + namespace + b"><w:body>",
                          b"<w:p><w:r><w:t>\xe5\x85\xac\xe8\xb7\xaf</w:t></w:r></w:p>", b"</w:body></w:document>")


@pytest.fixture(scope="module")
def xlsx_bomb() -> bytes:
    namespace = b'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'
    return inflate_member(make_xlsx(), "xl/worksheets/sheet1.xml", b"<worksheet " + namespace + b"><sheetData>",
                          b'<row><c t="inlineStr"><is><t>x</t></is></c></row>', b"</sheetData></worksheet>")


@pytest.mark.parametrize(("bomb", "name", "member"), [("docx_bomb", "通知.docx", "word/document.xml"),
                                                       ("xlsx_bomb", "分工表.xlsx", "xl/worksheets/sheet1.xml")])
def test_an_office_zip_bomb_is_refused_quickly_in_little_memory(bomb: str, name: str, member: str,
                                                                request: pytest.FixtureRequest) -> None:
    data: bytes = request.getfixturevalue(bomb)
    assert len(data) < 1024 * 1024
    assert zipfile.ZipFile(io.BytesIO(data)).getinfo(member).file_size > INFLATED
    tracemalloc.start()
    result = extract_file_text(data, name)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert result.text is None
    assert member in result.error and f"ratio over {MAX_COMPRESSION_RATIO}" in result.error
    assert peak < 20 * 1024 * 1024, peak  # refused before anything was inflated
    # In the sandbox, as a crawl reads it: refused by the check, not killed by the memory limit.
    sandboxed = extract_file_text_safely(data, name, timeout=30, memory=512 * 1024 * 1024)
    assert sandboxed.text is None and "zip bomb" in sandboxed.error


def test_a_zip_whose_directory_lies_about_sizes_is_refused() -> None:
    from tests.test_extract_files import zipped

    data = bytearray(zipped({"a.txt": "公路".encode() * 1000}))
    directory = data.rindex(b"PK\x01\x02")
    data[directory + 20:directory + 24] = (10 * len(data)).to_bytes(4, "little")  # compressed size
    result = extract_file_text(bytes(data), "附件.zip")
    assert result.text is None and "declares more data than the file holds" in result.error


def test_a_member_larger_than_declared_is_read_no_further_than_declared() -> None:
    from tests.test_extract_files import zipped

    data = bytearray(zipped({"a.txt": b"0" * (50 * 1024 * 1024)}))
    directory = data.rindex(b"PK\x01\x02")
    data[directory + 24:directory + 28] = (1000).to_bytes(4, "little")  # uncompressed size, as declared
    data[22:26] = (1000).to_bytes(4, "little")  # and in the local header
    tracemalloc.start()
    result = extract_file_text(bytes(data), "附件.zip")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert result.text is None and "more than the 1000 bytes its directory declares" in result.error
    assert peak < 20 * 1024 * 1024, peak


def test_ordinary_office_files_still_read() -> None:
    assert "做好政策解读" in extract_file_text(make_docx(), "要点.docx").text
    assert "公开重大建设项目信息" in extract_file_text(make_xlsx(), "分工表.xlsx").text


@pytest.mark.slow
def test_a_crawl_archives_the_notice_and_records_the_bomb_unread(site: FixtureSite, db_url: str,
                                                                docx_bomb: bytes) -> None:
    host = "jtw.sh.gov.cn"
    notice = site.manifest(host)[0]["url"]
    path = "/cmsres/00/bomb/通知.docx"
    (site.root / host / path.lstrip("/")).parent.mkdir(parents=True, exist_ok=True)
    (site.root / host / path.lstrip("/")).write_bytes(docx_bomb)
    site.replace_text(notice, '<div id="ivs_content" class="Article_content">',
                      f'<div id="ivs_content" class="Article_content"><p>附件：<a href="{path}">通知.docx</a></p>')
    result = crawl(site, db_url, "shanghai")
    assert summary_row(result, "shanghai")["status"] == "completed", result.stderr
    records = {r["url"]: r for r in map(json.loads, run_zwgk("export", "--db", db_url).stdout.splitlines())}
    [attachment] = records[notice]["attachments"]
    assert attachment["size"] == len(docx_bomb) and attachment["text"] is None
    assert "zip bomb" in attachment["error"]
