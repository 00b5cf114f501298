"""Alerts end to end: a fixture site gains a notice, a local webhook receiver and a local SMTP server hear of it."""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
import threading
from collections.abc import Iterator
from email import message_from_bytes
from email.header import decode_header, make_header
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import feedparser
import pytest
from aiosmtpd.controller import Controller

from archive import open_archive
from archive.alerts import AlertError, Alerts, AlertSettings, masked
from tests.conftest import FixtureSite, crawl, free_port, run_zwgk

HOST = "jtw.sh.gov.cn"
LIST_1 = "https://jtw.sh.gov.cn/zxzfxx/index.html"
SIMPLIFIED, TRADITIONAL = "公共数据管理办法", "公共數據管理辦法"


class Webhook:
    """A JSON webhook receiver on 127.0.0.1 that can be stopped and started again on its port."""

    def __init__(self) -> None:
        self.port = free_port()
        self.received: list[tuple[str, dict]] = []
        self.authorizations: list[str | None] = []  # each request's Authorization header
        self.server: ThreadingHTTPServer | None = None

    def start(self) -> Webhook:
        received, authorizations = self.received, self.authorizations

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                authorizations.append(self.headers.get("Authorization"))
                received.append((self.path, json.loads(body)))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def url(self, path: str = "hook") -> str:
        return f"json://127.0.0.1:{self.port}/{path}"

    def titles(self, path: str = "/hook") -> list[str]:
        return [message["title"] for at, message in self.received if at == path]


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    hook = Webhook().start()
    yield hook
    if hook.server:
        hook.stop()


@pytest.fixture
def mailbox() -> Iterator[tuple[int, list]]:
    messages: list = []

    class Handler:
        async def handle_DATA(self, server, session, envelope):
            messages.append(message_from_bytes(envelope.content))
            return "250 OK"

    port = free_port()
    controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    yield port, messages
    controller.stop()


def hide_newest(site: FixtureSite) -> str:
    """Take the newest notice off list page 1; returns its list row, to put back later."""
    url = site.manifest(HOST)[0]["url"]
    page = site.path(LIST_1).read_text(encoding="utf-8")
    row = next(line for line in page.splitlines() if url.split(HOST)[1] in line and line.startswith("<li>"))
    site.replace_text(LIST_1, row + "\n", "")
    return row


def publish_in_traditional(site: FixtureSite, row: str) -> str:
    """The hidden notice appears on the list, its title and text in traditional characters."""
    url = site.manifest(HOST)[0]["url"]
    detail = site.path(url).read_text(encoding="utf-8")
    site.replace_text(url, detail, detail.replace(SIMPLIFIED, TRADITIONAL))
    site.replace_text(LIST_1, '<ul class="uli14 nowrapli list-date pageList">\n',
                      '<ul class="uli14 nowrapli list-date pageList">\n' + row.replace(SIMPLIFIED, TRADITIONAL) + "\n")
    return url


def add_rule(db_url: str, name: str, *args: str) -> None:
    result = run_zwgk("alerts", "add", name, *args, "--db", db_url)
    assert result.returncode == 0, result.stderr


@pytest.mark.slow
def test_a_gained_notice_reaches_the_webhook_and_the_mailbox_once(site: FixtureSite, db_url: str,
                                                                  webhook: Webhook, mailbox) -> None:
    smtp_port, mails = mailbox
    row = hide_newest(site)
    assert crawl(site, db_url, "shanghai").returncode == 0
    mail = f"mailto://127.0.0.1:{smtp_port}?from=zwgk@example.org&to=reader@example.org&secure=no"
    add_rule(db_url, "data", "--query", SIMPLIFIED, "--notify", webhook.url(), "--notify", mail)
    add_rule(db_url, "ports", "--query", "港口航道", "--notify", webhook.url("ports"))
    add_rule(db_url, "sh-plans", "--query", "工作要点", "--source", "shanghai", "--notify", webhook.url("plans"))
    nothing = run_zwgk("alerts", "run", "--db", db_url)
    assert nothing.returncode == 0 and "planned 0, sent 0" in nothing.stdout  # rules fire for what comes after them

    url = publish_in_traditional(site, row)
    gained = crawl(site, db_url, "shanghai")
    assert gained.returncode == 0 and gained.stdout.split("\n")[1].split()[3] == "1"  # one new notice
    sent = run_zwgk("alerts", "run", "--db", db_url)
    assert sent.returncode == 0 and "sent 2" in sent.stdout, sent.stdout + sent.stderr

    [(path, message)] = webhook.received
    assert path == "/hook" and TRADITIONAL in message["title"]
    for expected in ("发布日期：2024-12-20", "文号：沪交规〔2024〕12号", f"原文：{url}", "发布机构：上海市交通委员会"):
        assert expected in message["message"], message["message"]
    [email] = mails
    assert TRADITIONAL in str(make_header(decode_header(email["Subject"])))
    assert email["To"] == "reader@example.org"

    again = run_zwgk("alerts", "run", "--db", db_url)
    assert "planned 0, sent 0" in again.stdout and len(webhook.received) == 1 and len(mails) == 1
    log = json.loads(run_zwgk("alerts", "log", "--json", "--db", db_url).stdout)
    assert {(entry["rule"], entry["status"]) for entry in log} == {("data", "sent")} and len(log) == 2


@pytest.mark.slow
def test_a_receiver_that_is_down_loses_nothing_and_gets_nothing_twice(site: FixtureSite, shanghai_archive: str,
                                                                      webhook: Webhook) -> None:
    add_rule(shanghai_archive, "changes", "--query", "source:shanghai", "--changes", "--notify", webhook.url())
    edited = site.manifest(HOST)[2]["url"]
    page = site.path(edited).read_text(encoding="utf-8")
    site.replace_text(edited, page, page.replace("</p>", "</p><p>本批复自印发之日起执行。</p>", 1))
    crawl(site, shanghai_archive, "shanghai", "--revisit")
    webhook.stop()
    down = run_zwgk("alerts", "run", "--db", shanghai_archive)
    assert down.returncode == 1 and "failed 1" in down.stdout
    log = json.loads(run_zwgk("alerts", "log", "--json", "--db", shanghai_archive).stdout)
    assert [(entry["status"], entry["attempts"]) for entry in log] == [("failed", 1)] and log[0]["error"]
    waiting = run_zwgk("alerts", "run", "--db", shanghai_archive)  # still backing off: not tried again yet
    assert "sent 0, failed 0" in waiting.stdout

    webhook.start()
    archive = open_archive(shanghai_archive)
    report = Alerts(archive).run(now=dt.datetime.now(dt.timezone.utc) + dt.timedelta(minutes=6))
    assert (report.sent, report.failed) == (1, 0)
    [(_, message)] = webhook.received
    assert message["title"].startswith("[zwgk] 文件更新：")
    assert "+ 本批复自印发之日起执行。" in message["message"] and "第1版 → 第2版" in message["message"]
    assert Alerts(archive).run(now=dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=1)).sent == 0
    assert len(webhook.received) == 1


@pytest.mark.slow
def test_one_channel_down_does_not_hold_back_another(site: FixtureSite, shanghai_archive: str,
                                                     webhook: Webhook) -> None:
    dead = f"json://127.0.0.1:{free_port()}/nobody"
    add_rule(shanghai_archive, "both", "--query", "批复", "--backfill", "--digest", "--notify", dead,
             "--notify", webhook.url())
    result = run_zwgk("alerts", "run", "--db", shanghai_archive)
    assert result.returncode == 1 and "failed" in result.stdout
    [(_, digest)] = webhook.received  # one digest message for every matching notice
    matching = json.loads(run_zwgk("search", "批复", "--json", "--db", shanghai_archive).stdout)["total"]
    assert digest["title"] == f"[zwgk] both：{matching} 条" and matching > 1
    assert digest["message"].count("原文：") == matching


@pytest.mark.slow
def test_operators_hear_of_a_broken_source(sqlite_url: str, webhook: Webhook) -> None:
    add_rule(sqlite_url, "ops", "--source-health", "--notify", webhook.url("ops"))
    dead = json.dumps({HOST: "http://127.0.0.1:9/jtw.sh.gov.cn"})
    run_zwgk("crawl", "shanghai", "--db", sqlite_url, "-s", "RETRY_TIMES=0", host_map=dead)
    assert run_zwgk("alerts", "run", "--db", sqlite_url).returncode == 0
    [(path, message)] = webhook.received
    assert path == "/ops" and message["title"] == "[zwgk] 来源异常：上海市交通委员会（shanghai）"
    assert "every request failed" in message["message"]


@pytest.mark.slow
def test_secrets_come_from_the_environment_and_are_never_shown(site: FixtureSite, shanghai_archive: str,
                                                               webhook: Webhook, tmp_path) -> None:
    add_rule(shanghai_archive, "secret", "--query", "批复", "--backfill",
             "--notify", f"json://127.0.0.1:{webhook.port}/" + "${HOOK_TOKEN}")
    add_rule(shanghai_archive, "literal", "--query", "批复", "--notify",
             f"json://zwgk:S3cretPassw0rd@127.0.0.1:{webhook.port}/literal")
    missing = run_zwgk("alerts", "run", "--db", shanghai_archive)
    assert "HOOK_TOKEN" in missing.stderr and "failed" in missing.stdout  # kept until the secret is set
    config = tmp_path / "zwgk.toml"
    config.write_text('[secrets]\nHOOK_TOKEN = "t0ken-from-config"\n', encoding="utf-8")
    waiting = run_zwgk("alerts", "run", "--config", str(config), "--db", shanghai_archive)
    assert "sent 0, failed 0" in waiting.stdout  # the failed deliveries back off
    delivered = run_zwgk("alerts", "run", "--retry-now", "--config", str(config), "--db", shanghai_archive)
    assert delivered.returncode == 0 and "failed 0" in delivered.stdout
    assert webhook.received and {path for path, _ in webhook.received} == {"/t0ken-from-config"}
    listed = run_zwgk("alerts", "list", "--db", shanghai_archive).stdout
    log = run_zwgk("alerts", "log", "--db", shanghai_archive).stdout
    exported = run_zwgk("export", "--db", shanghai_archive).stdout
    for shown in (listed, log, exported):
        assert "S3cretPassw0rd" not in shown and "t0ken-from-config" not in shown
    assert "${HOOK_TOKEN}" in listed


@pytest.mark.slow
def test_the_feed_lists_matching_notices_newest_first(site: FixtureSite, shanghai_archive: str) -> None:
    add_rule(shanghai_archive, "notices", "--query", "通知", "--notify", "json://127.0.0.1:1/unused")
    result = run_zwgk("alerts", "feed", "notices", "--db", shanghai_archive)
    feed = feedparser.parse(result.stdout.encode())
    assert not feed.bozo and feed.entries
    assert all("通知" in entry.title for entry in feed.entries)
    published = [entry.published for entry in feed.entries]
    assert published == sorted(published, reverse=True)


def test_rules_are_checked_when_added(sqlite_url: str) -> None:
    archive = open_archive(sqlite_url)
    alerts = Alerts(archive)
    with pytest.raises(AlertError, match="not a channel URL"):
        alerts.add("bad", "公路", ["nonsense://x"])
    with pytest.raises(AlertError, match="at least one channel"):
        alerts.add("none", "公路", [])
    with pytest.raises(AlertError, match="query"):
        alerts.add("broken", "(公路", ["json://127.0.0.1:1/x"])
    alerts.add("ok", "公路", ["json://127.0.0.1:1/x"])
    with pytest.raises(AlertError, match="already a rule"):
        alerts.add("ok", "公路", ["json://127.0.0.1:1/x"])
    assert "S3cret" not in masked("json://user:S3cretPassw0rd@127.0.0.1:1/x")
    assert run_zwgk("alerts", "remove", "missing", "--db", sqlite_url).returncode == 1
    added = run_zwgk("alerts", "add", "x", "--query", "公路", "--notify", "nonsense://", "--db", sqlite_url)
    assert added.returncode == 1


def test_an_event_committed_late_with_a_smaller_id_is_still_planned_once(db_url: str) -> None:
    from archive.models import Event, utcnow

    archive = open_archive(db_url)
    archive.ensure_source("shanghai", "上海市交通委员会", HOST, "shanghai_ivs")
    first = archive.save_notice("shanghai", "https://jtw.sh.gov.cn/a.html",
                                {"title": "公路", "body": "公路", "body_original": "公路"}, "a")
    alerts = Alerts(archive, notify=lambda url, title, body: None)
    alerts.add("roads", "公路", ["json://127.0.0.1:1/x"], backfill=True)
    assert alerts.plan() == 1
    newest = max(event.id for event in archive.events())
    version_id = archive.find_document(str(first.document_id)).versions[0].id
    with archive.transaction() as session:  # ids are handed out before commit: a slow writer commits the smaller
        session.add(Event(id=newest + 5, document_id=first.document_id, version_id=version_id, kind="new", at=utcnow()))
    assert alerts.plan() == 1
    with archive.transaction() as session:
        session.add(Event(id=newest + 3, document_id=first.document_id, version_id=version_id, kind="new", at=utcnow()))
    assert alerts.plan() == 1  # below the watermark, yet planned
    assert alerts.plan() == 0  # and only once
    archive.close()


@pytest.mark.parametrize("url", [
    "json://h.example/p?+Authorization=Bearer%20SECRETTOKEN1",
    "json://u:SECRETTOKEN1@h.example/p?-token=SECRETTOKEN1",
    "mailto://user:SECRETTOKEN1@smtp.example.org?to=${MAIL_TO}",
    "dingtalk://SECRETTOKEN1abcdef/",
    "tgram://123456789:SECRETTOKEN1abcdef/${CHAT_ID}",  # a literal token beside a ${NAME}
    "json://zwgk:SECRETTOKEN1@127.0.0.1:1/${HOOK_PATH}",
    "dingtalk://SECRETTOKEN1abcdef/?secret=${DINGTALK_SIGN}",
    "json://127.0.0.1:1/hook?-token=SECRETTOKEN1&x=${OTHER}",
])
def test_masking_hides_tokens_in_every_place_a_url_holds_them(url: str) -> None:
    shown = masked(url)
    assert "SECRETTOKEN1" not in shown and "123456789" not in shown
    assert all(name in shown for name in re.findall(r"\$\{\w+\}", url)), "the ${NAME}s a channel needs are shown"


def test_a_url_without_secrets_is_shown_as_written() -> None:
    assert masked("json://127.0.0.1:9000/hook") == "json://127.0.0.1:9000/hook"
    assert masked("json://127.0.0.1:9000/${HOOK_TOKEN}") == "json://127.0.0.1:9000/… (${HOOK_TOKEN})"


def test_a_literal_token_draws_a_warning_to_use_a_name(sqlite_url: str) -> None:
    open_archive(sqlite_url).close()
    literal = run_zwgk("alerts", "add", "literal", "-q", "公路", "--notify",
                       "json://zwgk:S3cretPassw0rd@127.0.0.1:1/hook", "--db", sqlite_url)
    assert literal.returncode == 0 and "warning:" in literal.stderr and "${NAME}" in literal.stderr
    assert "S3cretPassw0rd" not in literal.stderr + literal.stdout
    named = run_zwgk("alerts", "add", "named", "-q", "公路", "--notify", "json://zwgk:${HOOK_PASS}@127.0.0.1:1/hook",
                     "--db", sqlite_url, extra_env={"HOOK_PASS": "S3cretPassw0rd"})
    assert named.returncode == 0 and "warning" not in named.stderr


def test_secrets_are_percent_encoded_where_they_are_filled_in(db_url: str, webhook: Webhook) -> None:
    """A secret holding ``@`` or ``/`` stays one part of the URL: the request goes where the URL says, never to
    the host the secret names (a canary receiver that must hear nothing)."""
    canary = Webhook().start()
    try:
        secrets = {"HOOK_USER": f"127.0.0.1:{canary.port}/", "HOOK_PASS": f"p@ss/w0rd@127.0.0.1:{canary.port}/"}
        archive = open_archive(db_url)
        archive.ensure_source("shanghai", "上海市交通委员会", HOST, "shanghai_ivs")
        archive.save_notice("shanghai", "https://jtw.sh.gov.cn/a.html",
                            {"title": "公路", "body": "公路", "body_original": "公路"}, "a")
        alerts = Alerts(archive, AlertSettings(secrets=secrets))
        alerts.add("user", "公路", [f"json://${{HOOK_USER}}:pw@127.0.0.1:{webhook.port}/user"], backfill=True)
        alerts.add("password", "公路", [f"json://zwgk:${{HOOK_PASS}}@127.0.0.1:{webhook.port}/password"],
                   backfill=True)
        report = alerts.run()
        archive.close()
    finally:
        canary.stop()
    assert (report.sent, report.failed) == (2, 0), report.errors
    assert canary.received == [] and sorted(path for path, _ in webhook.received) == ["/password", "/user"]
    credentials = {base64.b64decode(header.split()[1]).decode() for header in webhook.authorizations}
    assert credentials == {f"127.0.0.1:{canary.port}/:pw", f"zwgk:p@ss/w0rd@127.0.0.1:{canary.port}/"}


def test_an_error_holds_no_part_of_a_secret(db_url: str) -> None:
    from archive.models import AlertDelivery

    dead = free_port()  # nothing listens: the send fails
    archive = open_archive(db_url)
    archive.ensure_source("shanghai", "上海市交通委员会", HOST, "shanghai_ivs")
    archive.save_notice("shanghai", "https://jtw.sh.gov.cn/a.html",
                        {"title": "公路", "body": "公路", "body_original": "公路"}, "a")
    alerts = Alerts(archive, AlertSettings(secrets={"HOOK_USER": "s3cretprefix/rest@localhost"}))
    alerts.add("roads", "公路", [f"json://${{HOOK_USER}}@127.0.0.1:{dead}/hook"], backfill=True)
    report = alerts.run()
    with archive.session() as session:
        [delivery] = session.query(AlertDelivery).all()
    archive.close()
    assert report.failed == 1 and delivery.last_error
    for shown in (delivery.last_error, *report.errors):
        assert "s3cretprefix" not in shown and "localhost" not in shown and "rest" not in shown


def test_a_channel_that_stays_down_backs_off_without_end_and_errors_hold_no_secret(db_url: str, monkeypatch) -> None:
    from archive.models import AlertDelivery

    monkeypatch.setenv("HOOK_SECRET", "hunter2-very-secret")
    archive = open_archive(db_url)
    archive.ensure_source("shanghai", "上海市交通委员会", HOST, "shanghai_ivs")
    archive.save_notice("shanghai", "https://jtw.sh.gov.cn/a.html",
                        {"title": "公路", "body": "公路", "body_original": "公路"}, "a")
    alerts = Alerts(archive, notify=lambda url, title, body: f"refused by {url}")
    alerts.add("roads", "公路", ["json://127.0.0.1:1/${HOOK_SECRET}"], backfill=True)
    now = dt.datetime.now(dt.timezone.utc)
    for attempt in range(60):  # weeks of a dead channel
        report = alerts.run(now=now + dt.timedelta(days=attempt, minutes=1))
        assert report.failed == 1
    with archive.session() as session:
        [delivery] = session.query(AlertDelivery).all()
    assert delivery.attempts == 60 and "hunter2" not in delivery.last_error and "***" in delivery.last_error
    archive.close()
