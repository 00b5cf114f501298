"""The extraction functions under hypothesis: random bytes, random HTML, mutated real pages and files.

Each must return (a notice, a value or None, a FileText with a reason) and never raise,
within a deadline per example; the runs are derandomized, so CI sees the same examples.
"""

from __future__ import annotations

import datetime as dt
import tracemalloc
from functools import lru_cache
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crawler.extract import Notice, extract_notice
from crawler.extract.attachments import find_attachments
from crawler.extract.dates import parse_date
from crawler.extract.docnumber import canonical_doc_number
from crawler.extract.encoding import decode_html
from crawler.extract.files import FileText, extract_file_text
from crawler.extract.html import parse_html
from crawler.extract.metadata import read_labelled_fields

REAL_PAGES = sorted((Path(__file__).parent / "corpus" / "real-pages").glob("*.htm*"))
BASES = ["https://jtw.sh.gov.cn/zxzfxx/20240516/a.html", "http://[::1]/x/", "https://例子.中国/a/b?c=d#e", ""]
HOSTILE_HREFS = [" JAVASCRIPT:alert(1)//a.pdf", "http://[::1:bad/x.html", "data:application/pdf;base64,JVBERi0=",
                 "file:///etc/passwd.pdf", "//evil.example/a.doc", "../../../../a.xls", "\x00a.pdf", "%zz.pdf",
                 "http://a.gov.cn:99999/a.pdf", "/cmsres/\u202e.pdf", "mailto:a@b.c", "#top", "", "   "]
LABELS = ["发布日期：", "成文日期：", "文号：", "发文字号:", "索引号：", "发布机构：", "公开方式：", "主题分类：",
          "标题："]
WORDS = ["2024年5月16日", "二〇二四年五月十六日", "沪交办〔2024〕323 号", "2024-13-45", "９９９９年", "〔〕号",
         "通知", "公路", "\x00", "\x1b[31m", "\ufffd", "\u3000", "&nbsp;", "<", "&#0;", "\ud7ff", "x" * 300]

text = st.text(st.characters(codec="utf-8"), max_size=200) | st.sampled_from(WORDS)
labelled_text = st.lists(st.tuples(st.sampled_from(LABELS), text), max_size=8).map(
    lambda pairs: "\n".join(label + value for label, value in pairs))


@st.composite
def html_pages(draw: st.DrawFn) -> str:
    """A page of nested elements holding labels, dates, 文号s and hostile links."""
    elements = draw(st.recursive(
        text.map(lambda value: value.replace("<", "&lt;")) | labelled_text,
        lambda inner: st.tuples(st.sampled_from(["div", "p", "td", "table", "span", "h1", "a", "script", "tr"]),
                                st.sampled_from(HOSTILE_HREFS) | text, st.lists(inner, max_size=4)).map(
            lambda parts: f'<{parts[0]} href="{parts[1]}" class="Article_content">{"".join(parts[2])}</{parts[0]}>'),
        max_leaves=20))
    head = draw(st.sampled_from(["", '<meta charset="gbk">', '<meta name="PubDate" content="2024-05-16 10:30">',
                                 '<meta name="ArticleTitle" content="\x00标题">', "<title>标题_网站</title>"]))
    return f"<html><head>{head}</head><body>{elements}</body></html>"


@st.composite
def mutated(draw: st.DrawFn, original: bytes) -> bytes:
    """``original`` with bytes flipped, a piece cut out or doubled, random bytes put in, or truncated."""
    data = bytearray(original)
    for _ in range(draw(st.integers(1, 6))):
        if not data:
            break
        at = draw(st.integers(0, len(data) - 1))
        kind = draw(st.sampled_from(["flip", "cut", "double", "insert", "truncate"]))
        if kind == "flip":
            data[at] ^= draw(st.integers(1, 255))
        elif kind == "cut":
            del data[at:at + draw(st.integers(1, 512))]
        elif kind == "double":
            data[at:at] = data[at:at + draw(st.integers(1, 512))]
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=64))
        else:
            del data[at:]
    return bytes(data)


def fuzz(examples: int, seconds: float):
    return settings(max_examples=examples, deadline=dt.timedelta(seconds=seconds), derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large], database=None)


def check_notice(notice: Notice) -> None:
    assert isinstance(notice, Notice) and isinstance(notice.body, str)
    for value in notice.as_dict().values():
        assert not (isinstance(value, str) and "\x00" in value)


@fuzz(60, 5)
@given(st.binary(max_size=20_000), st.sampled_from([None, "text/html; charset=gbk", "text/html; charset=utf-8",
                                                    "text/html; charset=x-unknown", "charset="]))
def test_random_bytes(data: bytes, content_type: str | None) -> None:
    assert isinstance(decode_html(data, content_type), str)
    check_notice(extract_notice(data, BASES[0], content_type=content_type))


@fuzz(40, 5)
@given(html_pages(), st.sampled_from(BASES))
def test_random_html(page: str, base: str) -> None:
    check_notice(extract_notice(page.encode("utf-8"), base or BASES[0]))
    links = find_attachments([parse_html(page)], base)
    assert all(link.url and isinstance(link.name, str) for link in links)


@fuzz(30, 8)
@given(st.sampled_from(REAL_PAGES).flatmap(lambda path: mutated(path.read_bytes())))
def test_mutated_real_pages(data: bytes) -> None:
    check_notice(extract_notice(data, BASES[0]))


@fuzz(200, 1)
@given(text | labelled_text)
def test_field_parsers(value: str) -> None:
    date = parse_date(value)
    assert date is None or (len(date) >= 10 and dt.date.fromisoformat(date[:10]))
    number = canonical_doc_number(value)
    assert number is None or isinstance(number, str)
    assert all(item.field and isinstance(item.value, str) for item in read_labelled_fields(value))


@lru_cache(maxsize=1)
def sample_files() -> list[tuple[bytes, str]]:
    from tests.test_extract_files import SUMMARY, make_docx, make_ofd, make_pdf, make_xlsx, zipped

    docx = make_docx()
    return [(make_pdf([SUMMARY]), "a.pdf"), (docx, "a.docx"), (make_xlsx(), "a.xlsx"), (make_ofd([SUMMARY]), "a.ofd"),
            (zipped({"附件.docx": docx, "说明.txt": SUMMARY.encode("gbk")}), "a.zip"), (SUMMARY.encode(), "a.txt")]


@fuzz(40, 10)
@given(st.integers(0, 5).flatmap(lambda index: st.tuples(mutated(sample_files()[index][0]),
                                                         st.just(sample_files()[index][1]))))
def test_mutated_files(case: tuple[bytes, str]) -> None:
    data, name = case
    tracemalloc.start()
    try:
        result = extract_file_text(data, name)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 64 * 1024 * 1024, peak
    assert isinstance(result, FileText) and (result.text is not None) != (result.error is not None)

