"""Attachment text from real generated files, and hostile files that must only give a reason."""

from __future__ import annotations

import io
import zipfile

import pytest

from crawler.extract.files import MAX_PDF_PAGES, extract_file_text, sniff_format
from crawler.extract.sandbox import extract_file_text_safely

SUMMARY = "汕尾市交通运输局2018年政务公开工作总结"


def make_pdf(lines: list[str], pages: int = 1, encrypt: str | None = None) -> bytes:
    """A PDF with Chinese text in the STSong-Light CID font (no font file needed)."""
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.pdfgen import canvas

    pdfmetrics.registerFont(UnicodeCIDFont("STSong-Light"))
    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer, encrypt=encrypt)
    for _ in range(pages):
        pdf.setFont("STSong-Light", 12)
        for number, line in enumerate(lines):
            pdf.drawString(72, 760 - 18 * number, line)
        pdf.showPage()
    pdf.save()
    return buffer.getvalue()


def make_docx() -> bytes:
    import docx

    document = docx.Document()
    document.add_paragraph("关于印发2024年政务公开工作要点的通知")
    table = document.add_table(rows=2, cols=3)
    for cell, text in zip(table.rows[0].cells, ["序号", "工作任务", "牵头处室"], strict=True):
        cell.text = text
    for cell, text in zip(table.rows[1].cells, ["1", "做好政策解读", "办公室"], strict=True):
        cell.text = text
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def make_xlsx() -> bytes:
    import openpyxl

    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.title = "分工表"
    sheet.append(["序号", "工作任务", "责任单位"])
    sheet.append([1, "公开重大建设项目信息", "规划科"])
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def make_ofd(texts: list[str]) -> bytes:
    """A minimal OFD package (GB/T 33190): OFD.xml, a document, one page of TextCode elements."""
    ns = 'xmlns:ofd="http://www.ofdspec.org/2016"'
    codes = "".join(
        f'<ofd:TextObject ID="{n + 10}" Boundary="0 {n * 10} 200 10" Font="1" Size="5">'
        f'<ofd:TextCode X="0" Y="5">{text}</ofd:TextCode></ofd:TextObject>' for n, text in enumerate(texts)
    )
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as package:
        package.writestr("OFD.xml", f'<ofd:OFD {ns} Version="1.0"><ofd:DocBody><ofd:DocRoot>Doc_0/Document.xml'
                                    f'</ofd:DocRoot></ofd:DocBody></ofd:OFD>')
        package.writestr("Doc_0/Document.xml", f'<ofd:Document {ns}><ofd:Pages><ofd:Page ID="1" '
                                               f'BaseLoc="Pages/Page_0/Content.xml"/></ofd:Pages></ofd:Document>')
        package.writestr("Doc_0/Pages/Page_0/Content.xml",
                         f'<ofd:Page {ns}><ofd:Content><ofd:Layer ID="2">{codes}</ofd:Layer></ofd:Content></ofd:Page>')
    return buffer.getvalue()


def zipped(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def test_pdf_with_chinese_text() -> None:
    result = extract_file_text(make_pdf([SUMMARY, "公开方式：主动公开"]), "总结.pdf")
    assert (result.format, result.error) == ("pdf", None)
    assert SUMMARY in result.text and "公开方式：主动公开" in result.text


def test_docx_with_a_table() -> None:
    result = extract_file_text(make_docx(), "要点.docx")
    assert result.format == "docx"
    assert "关于印发2024年政务公开工作要点的通知" in result.text
    assert "序号 | 工作任务 | 牵头处室" in result.text and "1 | 做好政策解读 | 办公室" in result.text


def test_xlsx() -> None:
    result = extract_file_text(make_xlsx(), "分工.xlsx")
    assert "[分工表]" in result.text and "1 | 公开重大建设项目信息 | 规划科" in result.text


def test_ofd_text_codes() -> None:
    result = extract_file_text(make_ofd(["湘潭市交通运输局", "2019年政务公开工作要点"]), "通知.ofd")
    assert result.format == "ofd"
    assert result.text.splitlines() == ["湘潭市交通运输局", "2019年政务公开工作要点"]


def test_zip_holding_a_docx_with_a_gbk_member_name() -> None:
    # zipfile writes non-ASCII names as UTF-8; Chinese tools write GBK bytes without the UTF-8 flag.
    placeholder, gbk_name = b"ABCD1.docx", "附件1.docx".encode("gbk")
    assert len(placeholder) == len(gbk_name)
    archive = zipped({placeholder.decode(): make_docx()}).replace(placeholder, gbk_name)
    result = extract_file_text(archive, "附件.zip")
    assert result.format == "zip"
    assert "[附件1.docx]" in result.text and "做好政策解读" in result.text


def test_gbk_text_file() -> None:
    text = "局属各单位：现将有关事项通知如下。"
    assert extract_file_text(text.encode("gbk"), "说明.txt").text == text


def test_old_word_without_a_converter_says_so(monkeypatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    result = extract_file_text(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 600, "通知.doc")
    assert result.format == "doc" and result.text is None
    assert "install antiword or catdoc" in result.error


@pytest.mark.parametrize(("data", "name", "reason"), [
    (b"<!DOCTYPE html><html><body>404 Not Found</body></html>", "通知.pdf", "HTML page was served"),
    (b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR" + b"\0" * 64, "图.pdf", "unknown file format"),
])
def test_wrong_files_give_a_reason(data: bytes, name: str, reason: str) -> None:
    result = extract_file_text(data, name)
    assert result.text is None and reason in result.error


def test_truncated_pdf() -> None:
    data = make_pdf([SUMMARY])
    result = extract_file_text(data[: len(data) // 3], "总结.pdf")
    assert result.error and "PDF" in result.error


def test_encrypted_pdf() -> None:
    result = extract_file_text(make_pdf([SUMMARY], encrypt="secret"), "总结.pdf")
    assert result.text is None and "encrypted" in result.error


def test_pdf_of_thousands_of_pages_is_refused() -> None:
    result = extract_file_text(make_pdf(["页"], pages=MAX_PDF_PAGES + 1), "大.pdf")
    assert result.text is None and f"{MAX_PDF_PAGES + 1} pages" in result.error


def test_zip_bomb_is_refused() -> None:
    bomb = zipped({"a.txt": b"0" * (300 * 1024 * 1024)})
    assert len(bomb) < 1024 * 1024
    result = extract_file_text(bomb, "附件.zip")
    assert result.text is None and "zip bomb" in result.error


def test_the_sandbox_reads_files_and_enforces_its_limits() -> None:
    assert SUMMARY in extract_file_text_safely(make_pdf([SUMMARY]), "总结.pdf").text
    slow = extract_file_text_safely(make_pdf([SUMMARY], pages=400), "大.pdf", timeout=0.001)
    assert "took over" in slow.error
    large = ("序号" * 5_000_000).encode("gbk")
    starved = extract_file_text_safely(large, "大.txt", memory=32 * 1024 * 1024)
    assert starved.text is None and "more memory than allowed" in starved.error


def test_sniffing_ignores_misleading_names() -> None:
    assert sniff_format(make_docx(), "通知.pdf") == "docx"
    assert sniff_format(make_pdf(["一"]), "通知.doc") == "pdf"
