"""Several processes archiving the same notices at once never duplicate a document, a version or an event."""

from __future__ import annotations

import subprocess
import sys

import pytest
from sqlalchemy import func, select

from archive import open_archive
from archive.models import Document, Event, Version
from tests.conftest import ROOT

# End to end (four writer processes per round, on both backends): left out by `pytest -m "not slow"`.
pytestmark = pytest.mark.slow

WRITER = """
import random, sys
from archive import open_archive
archive = open_archive(sys.argv[1])
round_ = sys.argv[2]
urls = [f"https://jtw.sh.gov.cn/zxzfxx/2024/{n}.html" for n in range(40)]
random.Random(int(sys.argv[3])).shuffle(urls)
for url in urls:
    body = f"{url} 第{round_}稿"
    archive.save_notice("shanghai", url, {"title": "关于公路养护的通知", "body": body, "body_original": body},
                        content_hash=f"{url}-{round_}")
"""


def write_at_once(db_url: str, round_: str, processes: int = 4) -> None:
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, db_url, round_, str(seed)], cwd=ROOT,
                                stderr=subprocess.PIPE, text=True) for seed in range(processes)]
    for writer in writers:
        _, errors = writer.communicate(timeout=120)
        assert writer.returncode == 0, errors


def counts(db_url: str) -> tuple[int, int, dict[str, int]]:
    archive = open_archive(db_url)
    with archive.session() as session:
        documents = session.scalar(select(func.count()).select_from(Document))
        versions = session.scalar(select(func.count()).select_from(Version))
        events = dict(session.execute(select(Event.kind, func.count()).group_by(Event.kind)).all())
    archive.close()
    return documents, versions, events


def test_four_processes_archiving_the_same_notices_make_each_once(db_url: str) -> None:
    archive = open_archive(db_url)
    archive.ensure_source("shanghai", "上海市交通委员会", "jtw.sh.gov.cn", "shanghai_ivs")
    archive.close()
    write_at_once(db_url, "1")
    assert counts(db_url) == (40, 40, {"new": 40})
    write_at_once(db_url, "2")  # every notice edited, seen by all four at once
    assert counts(db_url) == (40, 80, {"new": 40, "changed": 40})
    write_at_once(db_url, "2")  # nothing new
    assert counts(db_url) == (40, 80, {"new": 40, "changed": 40})
