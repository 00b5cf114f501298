"""Writing export records (archive.store.export_record) as JSON Lines, CSV or Parquet, streaming."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator
from itertools import islice
from typing import IO, BinaryIO

from .store import EXPORT_FIELDS

FORMATS = ("jsonl", "csv", "parquet")
_INTEGER_FIELDS = {"version", "versions", "document_id", "doc_number_year", "doc_number_serial"}


def write_jsonl(records: Iterable[dict], stream: IO[str]) -> int:
    count = 0
    for count, record in enumerate(records, 1):
        stream.write(json.dumps(record, ensure_ascii=False) + "\n")
    return count


def write_csv(records: Iterable[dict], stream: IO[str], bom: bool = False) -> int:
    """CSV with a header; ``attachments`` as a JSON list in one cell. ``bom`` lets Excel see UTF-8."""
    if bom:
        stream.write("\ufeff")
    writer = csv.DictWriter(stream, fieldnames=EXPORT_FIELDS)
    writer.writeheader()
    count = 0
    for count, record in enumerate(records, 1):
        writer.writerow({key: json.dumps(value, ensure_ascii=False) if isinstance(value, (list, dict)) else value
                         for key, value in record.items()})
    return count


def parquet_schema():
    import pyarrow as pa

    attachment = pa.struct([("url", pa.string()), ("name", pa.string()), ("sha256", pa.string()),
                            ("size", pa.int64()), ("text", pa.string()), ("error", pa.string())])
    return pa.schema([(name, pa.list_(attachment) if name == "attachments"
                       else pa.int64() if name in _INTEGER_FIELDS else pa.string()) for name in EXPORT_FIELDS])


def write_parquet(records: Iterable[dict], sink: BinaryIO, row_group: int = 2000) -> int:
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


def _chunks(records: Iterator[dict], size: int) -> Iterator[list[dict]]:
    while chunk := list(islice(records, size)):
        yield chunk
