"""Text of attached files: PDF, Word, Excel, WPS, OFD, ZIP and plain text.

Each format is read by a library made for it (pypdfium2, python-docx, openpyxl,
xlrd) or by a converter program where one is installed (antiword, catdoc for
old Word and WPS files). The format is sniffed from the bytes, not trusted from
the name: an HTML error page served as ``.pdf`` is reported as such. A file that
cannot be read gives a reason (``error``), never a silently empty text.
Run untrusted files through :mod:`crawler.extract.sandbox`, which adds time and
memory limits.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import struct
import subprocess
import tempfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import PurePosixPath

from lxml import etree

from .encoding import decode_html
from .normalise import tidy_lines

MAX_PDF_PAGES = 2000
MAX_ZIP_MEMBERS = 200
MAX_UNPACKED_BYTES = 200 * 1024 * 1024
MAX_COMPRESSION_RATIO = 200
# Members this small may be compressed past MAX_COMPRESSION_RATIO (a blank sheet, a run of spaces).
SMALL_MEMBER_BYTES = 1024 * 1024
_ZIP_PIECE = 64 * 1024
CONVERTER_TIMEOUT = 60
OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_HTML_START = re.compile(rb"^\s*(?:<!doctype html|<html|<head|<body|<\?xml[^>]*>\s*<html)", re.I)


@dataclass(frozen=True)
class FileText:
    """What could be read from a file: its format, its text, or why there is none."""

    format: str
    text: str | None = None
    error: str | None = None


class ExtractionError(Exception):
    """A file that cannot be read; the message is the reason recorded with it."""


def converters() -> dict[str, str | None]:
    """What reads each format on this machine: a library version, a program path, or None (missing)."""
    from importlib.metadata import PackageNotFoundError, version

    def package(name: str) -> str | None:
        try:
            return f"{name} {version(name)}"
        except PackageNotFoundError:
            return None

    word = shutil.which("antiword") or shutil.which("catdoc")
    return {
        "pdf": package("pypdfium2"), "docx": package("python-docx"), "xlsx": package("openpyxl"),
        "xls/et": package("xlrd"), "doc/wps": word, "ofd": "built in (zip + XML)", "zip": "built in",
        "txt": "built in", "rar/7z": None,
    }


def sniff_format(data: bytes, name: str = "") -> str:
    """The file's real format: pdf, docx, xlsx, ofd, zip, ole2 (doc/xls/wps/et), html, text or unknown."""
    suffix = PurePosixPath(name.lower()).suffix.lstrip(".")
    if data.startswith(b"%PDF-"):
        return "pdf"
    if data.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        try:
            names = set(zipfile.ZipFile(io.BytesIO(data)).namelist())
        except zipfile.BadZipFile:
            return "zip"
        if "word/document.xml" in names:
            return "docx"
        if "xl/workbook.xml" in names:
            return "xlsx"
        if "OFD.xml" in names or any(n.lower().endswith("ofd.xml") for n in names):
            return "ofd"
        return "zip"
    if data.startswith(OLE2_MAGIC):
        return {"xls": "xls", "et": "xls", "wps": "wps"}.get(suffix, "doc")
    if _HTML_START.match(data[:512]):
        return "html"
    if suffix == "txt" or (data and b"\x00" not in data[:4096]):
        return "text"
    return "unknown"


def extract_file_text(data: bytes, name: str = "") -> FileText:
    """Read the text of one file; never raises for a bad file (the reason is in ``error``)."""
    file_format = sniff_format(data, name)
    reader = _READERS.get(file_format)
    if reader is None:
        return FileText(file_format, error=_unreadable(file_format, name))
    try:
        text = reader(data)
    except ExtractionError as error:
        return FileText(file_format, error=str(error))
    except MemoryError:
        return FileText(file_format, error="not extracted: reading the file needs more memory than allowed")
    except Exception as error:  # a library meeting a broken file raises anything
        problem = f"{error.__class__.__name__}: {error}"
        return FileText(file_format, error=f"not extracted: broken {file_format} file ({problem})")
    return FileText(file_format, text=tidy_lines(text))


def _unreadable(file_format: str, name: str) -> str:
    if file_format == "html":
        return "not extracted: an HTML page was served instead of the file (an error or login page?)"
    return f"not extracted: unknown file format ({name or 'no name'})"


def _pdf(data: bytes) -> str:
    import pypdfium2 as pdfium

    try:
        document = pdfium.PdfDocument(data)
    except pdfium.PdfiumError as error:
        reason = str(error)
        if "password" in reason.lower():
            raise ExtractionError("not extracted: the PDF is encrypted (password protected)") from error
        raise ExtractionError(f"not extracted: broken PDF ({reason})") from error
    try:
        if len(document) > MAX_PDF_PAGES:
            raise ExtractionError(f"not extracted: the PDF has {len(document)} pages (limit {MAX_PDF_PAGES})")
        pages = []
        for page in document:
            pages.append(page.get_textpage().get_text_range())
        return "\n".join(pages)
    finally:
        document.close()


def _docx(data: bytes) -> str:
    import docx

    _checked_zip(data)  # python-docx opens the zip itself: refuse a bomb before it does
    document = docx.Document(io.BytesIO(data))
    parts: list[str] = []
    body = document.element.body
    for block in body.iterchildren():
        tag = etree.QName(block).localname
        if tag == "p":
            parts.append("".join(node.text or "" for node in block.iter() if etree.QName(node).localname == "t"))
        elif tag == "tbl":
            for row in block.iter(f"{{{block.nsmap['w']}}}tr"):
                cells = ["".join(t.text or "" for t in cell.iter(f"{{{block.nsmap['w']}}}t"))
                         for cell in row.iter(f"{{{block.nsmap['w']}}}tc")]
                parts.append(" | ".join(cells))
    return "\n".join(parts)


def _xlsx(data: bytes) -> str:
    import openpyxl

    _checked_zip(data)
    workbook = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    lines: list[str] = []
    for sheet in workbook.worksheets:
        lines.append(f"[{sheet.title}]")
        for row in sheet.iter_rows(values_only=True):
            cells = ["" if value is None else str(value) for value in row]
            if any(cells):
                lines.append(" | ".join(cells).rstrip(" |"))
    workbook.close()
    return "\n".join(lines)


def _xls(data: bytes) -> str:
    import xlrd

    book = xlrd.open_workbook(file_contents=data, on_demand=True)
    lines: list[str] = []
    for sheet in book.sheets():
        lines.append(f"[{sheet.name}]")
        for row in range(sheet.nrows):
            cells = [str(value) if value != "" else "" for value in sheet.row_values(row)]
            if any(cells):
                lines.append(" | ".join(cells).rstrip(" |"))
    return "\n".join(lines)


def _word_binary(data: bytes) -> str:
    """Old Word (.doc) and WPS files, through antiword or catdoc where installed."""
    for program, arguments in (("antiword", ["-m", "UTF-8.txt"]), ("catdoc", ["-d", "utf-8"])):
        if shutil.which(program) is None:
            continue
        with tempfile.NamedTemporaryFile(suffix=".doc") as handle:
            handle.write(data)
            handle.flush()
            completed = subprocess.run([program, *arguments, handle.name], capture_output=True,
                                       timeout=CONVERTER_TIMEOUT, env={**os.environ, "LANG": "C.UTF-8"})
        if completed.returncode == 0 and completed.stdout.strip():
            return completed.stdout.decode("utf-8", errors="replace")
    raise ExtractionError("not extracted: no converter for Word/WPS binary files (install antiword or catdoc)")


def _ofd(data: bytes) -> str:
    """OFD (GB/T 33190): a zip of XML pages whose text sits in TextCode elements."""
    archive = _checked_zip(data)
    pages = sorted((n for n in archive.namelist() if re.search(r"Pages/Page_?\d+/Content\.xml$", n, re.I)),
                   key=lambda n: [int(d) for d in re.findall(r"\d+", n)])
    lines: list[str] = []
    for page in pages:
        root = etree.fromstring(archive.read(page), parser=etree.XMLParser(resolve_entities=False, no_network=True))
        lines.extend("".join(map(str, node.itertext()))
                     for node in root.iter() if etree.QName(node).localname == "TextCode")
    return "\n".join(lines)


def _zip(data: bytes) -> str:
    """A zip archive: the text of each member zwgk can read, under the member's name."""
    archive = _checked_zip(data)
    parts = []
    for info in archive.infolist():
        if info.is_dir():
            continue
        member = extract_file_text(archive.read(info), _member_name(info))
        if member.format == "zip":
            parts.append(f"[{_member_name(info)}] (nested archive not opened)")
        elif member.text:
            parts.append(f"[{_member_name(info)}]\n{member.text}")
    return "\n\n".join(parts)


def _member_name(info: zipfile.ZipInfo) -> str:
    if info.flag_bits & 0x800:  # the name is UTF-8
        return info.filename
    try:  # Chinese archives often carry GBK names, which zipfile reads as cp437
        return info.filename.encode("cp437").decode("gb18030")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return info.filename


def _checked_zip(data: bytes) -> zipfile.ZipFile:
    """Open a zip, refusing bombs before any member is unpacked.

    Refused: too many members, too much unpacked in all, one member whose declared size
    is over :data:`MAX_COMPRESSION_RATIO` times its compressed size (unless small), or
    compressed sizes that add up to more than the file holds (a lying directory).
    Each member is also unpacked once in bounded pieces and refused if it holds more
    than declared: zipfile trusts the declared size, and a library reading a member
    whole would inflate a lying one into memory in one piece.
    """
    archive = zipfile.ZipFile(io.BytesIO(data))
    infos = archive.infolist()
    if len(infos) > MAX_ZIP_MEMBERS:
        raise ExtractionError(f"not extracted: the archive has {len(infos)} members (limit {MAX_ZIP_MEMBERS})")
    if sum(info.compress_size for info in infos) > len(data):
        raise ExtractionError("not extracted: the archive's directory declares more data than the file holds")
    for info in infos:
        if info.file_size > max(SMALL_MEMBER_BYTES, MAX_COMPRESSION_RATIO * info.compress_size):
            raise ExtractionError(f"not extracted: {info.filename} would unpack to {info.file_size} bytes from"
                                  f" {info.compress_size} (ratio over {MAX_COMPRESSION_RATIO}: a zip bomb?)")
    unpacked = sum(info.file_size for info in infos)
    if unpacked > MAX_UNPACKED_BYTES or unpacked > MAX_COMPRESSION_RATIO * max(len(data), 1) + SMALL_MEMBER_BYTES:
        raise ExtractionError(f"not extracted: the archive would unpack to {unpacked} bytes (a zip bomb?)")
    for info in infos:
        if _real_size(data, info) > info.file_size:
            raise ExtractionError(f"not extracted: {info.filename} unpacks to more than the {info.file_size} bytes"
                                  f" its directory declares (a zip bomb?)")
    return archive


def _real_size(data: bytes, info: zipfile.ZipInfo) -> int:
    """How many bytes a member really unpacks to, counted up to one past its declared size."""
    name_length, extra_length = struct.unpack("<HH", data[info.header_offset + 26:info.header_offset + 30])
    start = info.header_offset + 30 + name_length + extra_length
    compressed = memoryview(data)[start:start + info.compress_size]
    if info.compress_type == zipfile.ZIP_STORED:
        return len(compressed)
    if info.compress_type != zipfile.ZIP_DEFLATED:
        raise ExtractionError(f"not extracted: {info.filename} uses compression method {info.compress_type}")
    inflater, size, limit = zlib.decompressobj(-zlib.MAX_WBITS), 0, info.file_size + 1
    for at in range(0, len(compressed), _ZIP_PIECE):
        pending = bytes(compressed[at:at + _ZIP_PIECE])
        while pending and size < limit:
            size += len(inflater.decompress(pending, _ZIP_PIECE))
            pending = inflater.unconsumed_tail
        if size >= limit or inflater.eof:
            break
    return size


def _text(data: bytes) -> str:
    return decode_html(data)


_READERS = {
    "pdf": _pdf, "docx": _docx, "xlsx": _xlsx, "xls": _xls, "doc": _word_binary, "wps": _word_binary,
    "ofd": _ofd, "zip": _zip, "text": _text,
}
