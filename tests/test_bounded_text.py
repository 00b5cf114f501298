"""A notice with a 1 MB title and a 2 MB body: stored whole, bounded where it is indexed, shown and sent.

Such a notice made a 24-term query take 2 s, the web process grow past a gigabyte, and
an alert's e-mail never leave (header folding is quadratic in the subject's length).
"""

from __future__ import annotations

import json
import random
from email.header import decode_header, make_header

from archive import open_archive
from archive.alerts.manager import MAX_MESSAGE_TEXT, MAX_MESSAGE_TITLE
from archive.records import MAX_SHOWN_CHARS
from archive.search.query import parse_query
from archive.search.textindex import MAX_INDEXED_CHARS
from tests.conftest import run_zwgk
from tests.test_alerts import Webhook, add_rule, mailbox, webhook  # noqa: F401 (fixtures)

URL = "https://jtw.sh.gov.cn/zxzfxx/20240516/huge.html"
# Common characters in a seeded random order: a text with hundreds of thousands of distinct bigrams.
CHARACTERS = [chr(code) for code in range(0x4E00, 0x4E00 + 3000)]
TITLE_TERM, BODY_TERM, LATE_TERM = "关于公路养护", "港口航道规划", "末尾的词"


def huge_notice(seed: int = 14) -> tuple[str, str]:
    chance = random.Random(seed)
    title = TITLE_TERM + "".join(chance.choices(CHARACTERS, k=1024 * 1024 - len(TITLE_TERM)))
    body = BODY_TERM + "".join(chance.choices(CHARACTERS, k=2 * 1024 * 1024)) + LATE_TERM
    return title, body


def archive_huge_notice(db_url: str) -> tuple[str, str]:
    title, body = huge_notice()
    archive = open_archive(db_url)
    archive.ensure_source("shanghai", "上海市交通委员会", "jtw.sh.gov.cn", "shanghai_ivs")
    fields = {"title": title, "body": body, "body_original": body, "published_at": "2024-05-16",
              "issuer": "上海市交通委员会", "extractor_version": "1"}
    archive.save_notice("shanghai", URL, fields, "f" * 64)
    archive.close()
    return title, body


def test_a_huge_notice_is_stored_whole_and_searched_within_bounds(db_url: str) -> None:
    title, body = archive_huge_notice(db_url)
    [record] = map(json.loads, run_zwgk("export", "--db", db_url).stdout.splitlines())
    assert record["title"] == title and record["body"] == body  # faithful

    archive = open_archive(db_url)
    for term in (TITLE_TERM, BODY_TERM):
        [hit] = archive.search(parse_query(term)).hits
        assert hit.url == URL and len(hit.title) == MAX_SHOWN_CHARS and len(hit.snippet) < 200
    # The text past the indexed bound is kept, not searched.
    assert len(body) > MAX_INDEXED_CHARS and archive.search(parse_query(LATE_TERM)).total == 0
    terms = [body[at:at + 3] for at in range(10, 10 + 24 * 1000, 1000)]
    result = archive.search(parse_query(" ".join(terms)))  # its time: bench/search_latency.py, RELIABILITY.md
    archive.close()
    assert result.total == 1


def test_the_cli_and_the_web_show_a_bounded_title(sqlite_url: str) -> None:
    from fastapi.testclient import TestClient

    from archive.web.app import create_app

    title, _ = archive_huge_notice(sqlite_url)
    shown = run_zwgk("show", URL, "--db", sqlite_url).stdout
    assert title[:MAX_SHOWN_CHARS - 1] + "…" in shown and title[:MAX_SHOWN_CHARS] not in shown
    with TestClient(create_app(db_url=sqlite_url)) as client:
        found = client.get("/", params={"q": TITLE_TERM})
        notice = client.get("/notices/1")
    assert found.status_code == notice.status_code == 200
    assert title[:MAX_SHOWN_CHARS] not in found.text and title[:MAX_SHOWN_CHARS] not in notice.text
    assert title[:MAX_SHOWN_CHARS - 1] in notice.text and len(found.text) < 100_000


def test_an_alert_about_a_huge_notice_is_bounded_and_sent_quickly(sqlite_url: str, webhook: Webhook,  # noqa: F811
                                                                  mailbox) -> None:  # noqa: F811
    smtp_port, mails = mailbox
    mail = f"mailto://127.0.0.1:{smtp_port}?from=zwgk@example.org&to=reader@example.org&secure=no"
    add_rule(sqlite_url, "roads", "--query", TITLE_TERM, "--notify", webhook.url(), "--notify", mail)
    archive_huge_notice(sqlite_url)
    sent = run_zwgk("alerts", "run", "--db", sqlite_url)  # before the bounds, a 1 MB title never finished
    assert sent.returncode == 0 and "sent 2" in sent.stdout, sent.stdout + sent.stderr
    [(_, message)] = webhook.received
    assert TITLE_TERM in message["title"] and len(message["title"]) <= MAX_MESSAGE_TITLE
    assert len(message["message"]) <= MAX_MESSAGE_TEXT
    [email] = mails
    subject = str(make_header(decode_header(email["Subject"])))
    assert TITLE_TERM in subject and len(subject) <= MAX_MESSAGE_TITLE

