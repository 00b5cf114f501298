"""How long saving a large notice holds SQLite's writer lock, against the whole save.

Saves notices with a 1 MB body and a 4 MB attachment (2 MB of extracted text) into a
fresh SQLite archive and prints, for each, the save's wall time and its longest
transaction (from SQLAlchemy's begin and commit events): the time every other writer
(lease renewals, other crawls) waits.

    python bench/save_lock_time.py [--notices 3]
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import event  # noqa: E402

from archive import open_archive  # noqa: E402
from archive.store import AttachmentFile, RawResponse  # noqa: E402

CHARACTERS = "公路交通运输管理通知办法规定关于印发的工作要点港口航道收费标准"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notices", type=int, default=3)
    notices = parser.parse_args().notices
    rng = random.Random(1)
    body = "".join(rng.choice(CHARACTERS) for _ in range(1_000_000))
    page = f"<html><body>{body}</body></html>".encode()
    attachment = AttachmentFile("https://jtw.sh.gov.cn/a.pdf", "a.pdf", body=rng.randbytes(2_000_000) + page,
                                text="".join(rng.choice(CHARACTERS) for _ in range(2_000_000)))
    with tempfile.TemporaryDirectory() as directory:
        archive = open_archive(f"sqlite:///{os.path.join(directory, 'archive.sqlite3')}")
        archive.ensure_source("shanghai", "上海市交通委员会", "jtw.sh.gov.cn", "shanghai_ivs")
        spans: list[float] = []
        began: dict[int, float] = {}
        event.listen(archive.engine, "begin", lambda connection: began.__setitem__(id(connection), time.perf_counter()))
        event.listen(archive.engine, "commit",
                     lambda connection: spans.append(time.perf_counter() - began.pop(id(connection))))
        for number in range(notices):
            spans.clear()
            start = time.perf_counter()
            archive.save_notice("shanghai", f"https://jtw.sh.gov.cn/zxzfxx/2024/{number}.html",
                                {"title": "关于公路养护的通知", "body": body, "body_original": body},
                                f"hash-{number}", raw=RawResponse(page, "text/html"), attachments=[attachment])
            print(f"notice {number}: save {time.perf_counter() - start:.2f} s, "
                  f"writer lock held at most {max(spans):.2f} s")
        archive.close()


if __name__ == "__main__":
    main()
