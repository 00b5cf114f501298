"""Writing export records (archive.records) as JSON Lines, CSV or Parquet, streaming."""

from __future__ import annotations

import csv
import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from itertools import islice
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyarrow as pa

from ..records import EXPORT_FIELDS, ExportRecord

FORMATS = ("jsonl", "csv", "parquet")
_INTEGER_FIELDS = {"version", "versions", "document_id", "doc_number_year", "doc_number_serial"}


# What makes a spreadsheet read a cell as a formula (OWASP "CSV injection").
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def write_export(records: Iterable[ExportRecord], fmt: str, stream: IO[Any], bom: bool = False,
                 raw_cells: bool = False) -> int:
    """Write ``records`` in ``fmt`` (one of FORMATS; parquet wants a binary stream); how many were written.

    CSV cells that a spreadsheet would run as formulas are neutralised unless ``raw_cells``."""
    if fmt == "parquet":
        return write_parquet(records, stream)
    if fmt == "csv":
        return write_lines(csv_lines(records, bom, raw_cells), stream, header=True)
    return write_lines(jsonl_lines(records), stream)


@contextmanager
def written_whole(path: str | Path, binary: bool = False) -> Iterator[IO[Any]]:
    """A file that appears only once written whole: a temporary file renamed into place on success,
    removed on failure, so an export that fails half-way leaves the previous file as it was.

    (click.open_file(atomic=True) renames its temporary file into place even after an error.)
    """
    target = Path(path)
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    try:
        with (os.fdopen(handle, "wb") if binary else os.fdopen(handle, "w", encoding="utf-8", newline="")) as stream:
            yield stream
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)  # mkstemp's 0600 is not what the user's umask asks for
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def jsonl_lines(records: Iterable[ExportRecord]) -> Iterator[str]:
    for record in records:
        yield json.dumps(record, ensure_ascii=False) + "\n"


def csv_lines(records: Iterable[ExportRecord], bom: bool = False, raw_cells: bool = False) -> Iterator[str]:
    """CSV with a header; ``attachments`` as a JSON list in one cell. ``bom`` lets Excel see UTF-8.

    A text cell starting with ``= + - @``, a tab or a CR gets a leading ``'`` so a spreadsheet shows it
    as text instead of running it (``raw_cells`` keeps every cell as it is)."""
    line = _Line()
    writer = csv.DictWriter(line, fieldnames=EXPORT_FIELDS)
    writer.writeheader()
    yield ("\ufeff" if bom else "") + line.take()
    for record in records:
        cells = {key: json.dumps(value, ensure_ascii=False) if isinstance(value, (list, dict)) else value
                 for key, value in record.items()}
        writer.writerow(cells if raw_cells else {key: neutralised(value) for key, value in cells.items()})
        yield line.take()


def neutralised(cell: object) -> object:
    """``cell``, with a ``'`` before it when it is text a spreadsheet would read as a formula."""
    return "'" + cell if isinstance(cell, str) and cell.startswith(_FORMULA_STARTS) else cell


class _Line:
    """Where the csv writer puts one row at a time."""

    def __init__(self) -> None:
        self.text = ""

    def write(self, text: str) -> None:
        self.text += text

    def take(self) -> str:
        text, self.text = self.text, ""
        return text


def write_lines(lines: Iterable[str], stream: IO[str], header: bool = False) -> int:
    """Write export lines; returns the number of records (lines, less the ``header`` line)."""
    count = 0
    for line in lines:
        stream.write(line)
        count += 1
    return count - 1 if header else count


def parquet_schema() -> pa.Schema:
    import pyarrow as pa

    attachment = pa.struct([("url", pa.string()), ("name", pa.string()), ("sha256", pa.string()),
                            ("size", pa.int64()), ("text", pa.string()), ("error", pa.string())])
    return pa.schema([(name, pa.list_(attachment) if name == "attachments"
                       else pa.int64() if name in _INTEGER_FIELDS else pa.string()) for name in EXPORT_FIELDS])


def write_parquet(records: Iterable[ExportRecord], sink: IO[bytes], row_group: int = 2000) -> int:
    """Parquet, written a row group at a time, so memory stays flat however many records there are."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = parquet_schema()
    count = 0
    with pq.ParquetWriter(sink, schema, compression="zstd") as writer:
        for chunk in _chunks(iter(records), row_group):
            writer.write_table(pa.Table.from_pylist(chunk, schema=schema))
            count += len(chunk)
    return count


def _chunks(records: Iterator[ExportRecord], size: int) -> Iterator[list[ExportRecord]]:
    while chunk := list(islice(records, size)):
        yield chunk
