"""Alerts: saved searches that tell their channels, once, what new (or changed) notices match.

A run has two steps. Planning matches the events archived since each rule last
looked (never earlier than the rule itself, unless it was added with backfill)
and records one pending delivery per (rule, event, channel) under a unique
constraint, so nothing is planned twice. Delivering sends what is due through
Apprise, one channel at a time: a channel that fails keeps its deliveries for a
later run (with backoff) and never holds back another channel; a sent delivery
is marked sent at once (only a crash between the send and the mark repeats one). Only one alert run works at a time
(a lease in the database). Channels, their secrets and Apprise: ``channels``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, quote, urlsplit

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..errors import AlertError
from ..leases import Lease, LeaseTaken
from ..models import AlertDelivery, AlertRule, Document, Event, Source, Version, utcnow
from ..output.diff import diff_records
from ..output.feeds import atom_feed
from ..records import export_record, shorten
from ..search import QueryError, Searcher, parse_query
from ..store import Archive
from .channels import PLACEHOLDER, AlertSettings, Notifier, apprise_notify, expand, holds_literal_secret, masked

logger = logging.getLogger(__name__)
NOTICE_KINDS = ("new",)
CHANGE_KINDS = ("new", "changed")
HEALTH_KINDS = ("source_broken", "source_recovered")
# Planning looks back this far over events it has seen: one committed late (its id handed out
# before a faster transaction's) is still planned; the unique constraint keeps it to once.
LOOK_BACK = dt.timedelta(minutes=15)
BACKOFF_FIRST = dt.timedelta(minutes=5)
BACKOFF_MAX = dt.timedelta(hours=6)
SUMMARY_LINES = 5
DIGEST_SIZE = 50  # notices in one digest message; more make several
# A message is bounded before Apprise formats it: e-mail header folding is quadratic in the
# subject's length (a 16k-character title took 7 s, a 1 MB one never finished), and Apprise
# writes the subject as one quoted-printable line (9 bytes a Chinese character) that SMTP's
# 998-byte line limit refuses past about 105 characters.
MAX_MESSAGE_TITLE = 100
MAX_MESSAGE_LINE = 500  # one line of a message: a notice's title, a changed field
MAX_MESSAGE_TEXT = 20_000
_INSERT_CHUNK = 1000


@dataclass
class RunReport:
    planned: int = 0
    sent: int = 0
    failed: int = 0
    skipped: str | None = None  # why nothing was done (another run is working)
    errors: list[str] = field(default_factory=list)


class Alerts:
    """The alert rules of one archive, and their deliveries."""

    def __init__(self, archive: Archive, settings: AlertSettings | None = None,
                 notify: Notifier = apprise_notify) -> None:
        self.archive = archive
        self.settings = settings or AlertSettings()
        self.notify = notify

    # Rules

    def add(self, name: str, query: str, channels: Sequence[str], changes: bool = False, digest: bool = False,
            backfill: bool = False, kind: str = "notices") -> tuple[AlertRule, list[str]]:
        """Save a rule; returns it with warnings (a channel whose secret is not set yet)."""
        if not name.strip() or len(name) > 100:
            raise AlertError("a rule needs a name of 1 to 100 characters")
        if not channels:
            raise AlertError("a rule needs at least one channel (--notify URL)")
        if kind == "notices":
            try:
                parse_query(query)
            except QueryError as error:
                raise AlertError(f"the query: {error}") from error
            if not query.strip():
                raise AlertError("a rule needs a query (words, or filters such as source:shanghai)")
        warnings = [warning for channel in channels for warning in self.check_channel(channel)]
        with self.archive.transaction() as session:
            start = 0 if backfill else (session.scalar(select(func.max(Event.id))) or 0)
            rule = AlertRule(name=name, kind=kind, query=query, changes=changes, digest=digest,
                             channels=list(channels), start_event_id=start, last_event_id=start)
            session.add(rule)
            try:
                session.flush()
            except IntegrityError as error:
                raise AlertError(f"there is already a rule named {name!r}") from error
            return rule, warnings

    def check_channel(self, channel: str) -> list[str]:
        """Refuse a URL Apprise cannot read; warnings when one of its ${NAME}s is not set yet, or when it holds
        a token as written (stored in the archive as it is)."""
        import apprise

        warnings = []
        if holds_literal_secret(channel):
            warnings.append(f"{masked(channel)} holds a password or token as written, stored in the archive: "
                            "write it as ${NAME} and set NAME in the environment or in [secrets]")
        try:
            url = expand(channel, self.settings.secrets)
        except AlertError as missing:
            return [*warnings, f"{missing} before this rule can send"]
        if not apprise.Apprise.instantiate(url):
            raise AlertError(f"{masked(channel)} is not a channel URL Apprise understands "
                             "(see https://github.com/caronc/apprise/wiki)")
        return warnings

    def rules(self) -> list[AlertRule]:
        with self.archive.session() as session:
            return list(session.scalars(select(AlertRule).order_by(AlertRule.name)))

    def rule(self, name: str) -> AlertRule:
        with self.archive.session() as session:
            rule = session.scalar(select(AlertRule).where(AlertRule.name == name))
        if rule is None:
            raise AlertError(f"no alert rule named {name!r} (see `zwgk alerts list`)")
        return rule

    def remove(self, name: str) -> None:
        rule = self.rule(name)
        with self.archive.transaction() as session:
            session.execute(AlertDelivery.__table__.delete().where(AlertDelivery.rule_id == rule.id))
            session.execute(AlertRule.__table__.delete().where(AlertRule.id == rule.id))

    # Running

    def run(self, now: dt.datetime | None = None, retry_now: bool = False) -> RunReport:
        """Plan what the latest events call for, then deliver what is due (``retry_now``: failed ones too)."""
        try:
            with Lease(self.archive, "alerts", ttl=300):
                report = RunReport(planned=self.plan())
                self.deliver(report, now or utcnow(), retry_now)
                return report
        except LeaseTaken as error:
            return RunReport(skipped=f"another alert run is working ({error.holder})")

    def plan(self) -> int:
        """Record a pending delivery for every (rule, matching event, channel) not yet planned."""
        planned = 0
        now = utcnow()
        with self.archive.transaction() as session:
            newest = session.scalar(select(func.max(Event.id))) or 0
            searcher = Searcher(session)
            for rule in session.scalars(select(AlertRule)):
                events = self._matching_events(session, searcher, rule, newest)
                rule.planned_at = now
                rows = [{"rule_id": rule.id, "event_id": event_id, "channel": channel}
                        for event_id in events for channel in range(len(rule.channels))]
                insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
                for start in range(0, len(rows), _INSERT_CHUNK):  # databases bound the parameters of a statement
                    inserted = session.scalars(insert(AlertDelivery).values(rows[start:start + _INSERT_CHUNK])
                                               .on_conflict_do_nothing().returning(AlertDelivery.id))
                    planned += len(inserted.all())
                rule.last_event_id = max(rule.last_event_id, newest)
        return planned

    @staticmethod
    def _matching_events(session: Session, searcher: Searcher, rule: AlertRule, newest: int) -> list[int]:
        unseen = Event.id > rule.last_event_id
        if rule.planned_at is not None:
            unseen |= Event.at >= rule.planned_at - LOOK_BACK
        since = (Event.id > rule.start_event_id) & unseen & (Event.id <= newest)
        if rule.kind == "source_health":
            return list(session.scalars(select(Event.id).where(since, Event.kind.in_(HEALTH_KINDS))))
        kinds = CHANGE_KINDS if rule.changes else NOTICE_KINDS
        query = parse_query(rule.query)
        matched = searcher.select_versions(Event.id).join(Event, Event.version_id == Version.id).where(
            since, Event.kind.in_(kinds), *searcher.where(query, all_versions=True))
        return list(session.scalars(matched.order_by(Event.id)))

    def deliver(self, report: RunReport, now: dt.datetime, retry_now: bool = False) -> None:
        """Send every due delivery, channel by channel; failures wait for a later run."""
        due_now = AlertDelivery.next_attempt_at <= now
        with self.archive.session() as session:
            due = session.execute(
                select(AlertDelivery.id, AlertDelivery.rule_id, AlertDelivery.channel, AlertDelivery.event_id)
                .where(AlertDelivery.status != "sent",
                       due_now | (AlertDelivery.status == "failed") if retry_now else due_now)
                .order_by(AlertDelivery.rule_id, AlertDelivery.channel, AlertDelivery.event_id)).all()
            rules = {rule.id: rule for rule in session.scalars(select(AlertRule))}
        groups: dict[tuple[int, int], list[tuple[int, int]]] = {}
        for delivery_id, rule_id, channel, event_id in due:
            groups.setdefault((rule_id, channel), []).append((delivery_id, event_id))
        for (rule_id, channel), deliveries in groups.items():
            rule = rules.get(rule_id)
            if rule is None:  # removed while this run was reading
                continue
            size = DIGEST_SIZE if rule.digest else 1
            batches = [deliveries[start:start + size] for start in range(0, len(deliveries), size)]
            for batch in batches:
                title, body = self.message(rule, [event_id for _, event_id in batch])
                try:
                    error = self.notify(expand(rule.channels[channel], self.settings.secrets), title, body)
                except AlertError as missing:
                    error = str(missing)
                except Exception as unexpected:
                    error = f"{unexpected.__class__.__name__}: {unexpected}"
                if error:
                    error = self.scrub(error, rule.channels[channel])
                self._record([delivery_id for delivery_id, _ in batch], error, now)
                if error:
                    report.failed += len(batch)
                    report.errors.append(f"{rule.name} → {masked(rule.channels[channel])}: {error}")
                else:
                    report.sent += len(batch)

    def scrub(self, text: str, channel: str) -> str:
        """Take every secret of a channel out of a text (an error may quote it in any form)."""
        secrets = [self.settings.secrets.get(name, os.environ.get(name)) for name in PLACEHOLDER.findall(channel)]
        with contextlib.suppress(AlertError):
            secrets.append(expand(channel, self.settings.secrets))
        parts = urlsplit(channel)
        secrets += [parts.password, *(value for _, value in parse_qsl(parts.query)), *parts.path.split("/")]
        for secret in sorted({s for s in secrets if s and len(s) >= 6}, key=len, reverse=True):
            text = text.replace(secret, "***").replace(quote(secret, safe=""), "***")
        return text

    def _record(self, delivery_ids: list[int], error: str | None, now: dt.datetime) -> None:
        with self.archive.transaction() as session:
            for delivery in session.scalars(select(AlertDelivery).where(AlertDelivery.id.in_(delivery_ids))):
                delivery.attempts += 1
                if error is None:
                    delivery.status, delivery.sent_at, delivery.last_error = "sent", now, None
                else:
                    delivery.status, delivery.last_error = "failed", error
                    delivery.next_attempt_at = now + min(BACKOFF_FIRST * 2 ** min(delivery.attempts - 1, 10),
                                                         BACKOFF_MAX)

    # Messages

    def message(self, rule: AlertRule, event_ids: Sequence[int]) -> tuple[str, str]:
        """The title and text of one message: one event, or a digest of several."""
        entries = [self._describe(event_id) for event_id in event_ids]
        if len(entries) == 1:
            title, text = entries[0]
        else:
            title = f"[zwgk] {rule.name}：{len(entries)} 条"
            text = "\n\n".join(f"{number}. {entry_title}\n{entry_text}"
                                 for number, (entry_title, entry_text) in enumerate(entries, 1))
        return shorten(title, MAX_MESSAGE_TITLE), shorten(text, MAX_MESSAGE_TEXT)

    def _describe(self, event_id: int) -> tuple[str, str]:
        with self.archive.session() as session:
            event = session.get_one(Event, event_id)
            if event.document_id is None:
                source = session.get_one(Source, event.source_id)
                label = "来源异常" if event.kind == "source_broken" else "来源恢复"
                return f"[zwgk] {label}：{source.name}（{source.key}）", event.message or ""
            document = session.get_one(Document, event.document_id)
            version = session.get_one(Version, event.version_id)
            record = export_record(document.source.key, document, version)
            source_name = document.source.name
            previous = None
            if event.kind == "changed" and version.number > 1:
                older = session.execute(select(Version).where(Version.document_id == document.id,
                                                              Version.number == version.number - 1)).scalar_one()
                previous = export_record(document.source.key, document, older)
        label = {"new": "新文件", "changed": "文件更新"}.get(event.kind, event.kind)
        lines = [record["title"] or record["url"],
                 f"发布机构：{record['issuer'] or '—'}（{source_name}）",
                 f"发布日期：{record['published_at'] or '—'}",
                 f"文号：{record['doc_number'] or '—'}",
                 f"原文：{record['url']}"]
        if self.settings.base_url:
            lines.append(f"档案：{self.settings.base_url.rstrip('/')}/notices/{document.id}?version={version.number}")
        if previous is not None:
            change = diff_records(previous, record)
            lines.append(f"修改（第{previous['version']}版 → 第{record['version']}版）：")
            lines += [f"  {name}：{old or '—'} → {new or '—'}" for name, old, new in change.fields]
            lines += _summary("+", change.added) + _summary("-", change.removed)
        lines = [shorten(line, MAX_MESSAGE_LINE) for line in lines]
        return shorten(f"[zwgk] {label}：{record['title'] or record['url']}", MAX_MESSAGE_TITLE), "\n".join(lines)

    # Looking back

    def log(self, name: str | None = None, limit: int = 50) -> list[dict[str, object]]:
        with self.archive.session() as session:
            query = (select(AlertDelivery, AlertRule, Event.kind, Version.title)
                     .join(AlertRule, AlertDelivery.rule_id == AlertRule.id)
                     .join(Event, AlertDelivery.event_id == Event.id)
                     .outerjoin(Version, Event.version_id == Version.id)
                     .order_by(AlertDelivery.id.desc()).limit(limit))
            if name:
                query = query.where(AlertRule.name == name)
            return [{"id": delivery.id, "rule": rule.name, "event": kind, "title": title,
                     "channel": masked(rule.channels[delivery.channel]), "status": delivery.status,
                     "attempts": delivery.attempts, "sent_at": delivery.sent_at,
                     "next_attempt_at": None if delivery.status == "sent" else delivery.next_attempt_at,
                     "error": delivery.last_error}
                    for delivery, rule, kind, title in session.execute(query)]

    def test(self, name: str) -> list[tuple[str, str | None]]:
        """Send a test message to each of a rule's channels: (masked channel, None or why it failed)."""
        rule = self.rule(name)
        results = []
        for channel in rule.channels:
            try:
                error = self.notify(expand(channel, self.settings.secrets), f"[zwgk] 测试：{rule.name}",
                                    f"规则 {rule.name} 的通知渠道可用。\n检索：{rule.query or '（来源异常）'}")
            except AlertError as missing:
                error = str(missing)
            results.append((masked(channel), error))
        return results

    def feed(self, name: str, site_url: str, limit: int = 50) -> bytes:
        """An Atom feed of the notices a rule matches, newest first."""
        rule = self.rule(name)
        if rule.kind != "notices":
            raise AlertError(f"{name} watches source health: it has no feed of notices")
        hits = self.archive.search(parse_query(rule.query), sort="date", limit=limit, facets=False).hits
        return atom_feed(f"zwgk: {rule.name}", f"{site_url.rstrip('/')}/alerts/{rule.name}.atom", site_url, hits)


def _summary(sign: str, lines: Iterable[str]) -> list[str]:
    kept = [line.strip() for line in lines if line.strip()]
    shown = [f"  {sign} {line[:100]}{'…' if len(line) > 100 else ''}" for line in kept[:SUMMARY_LINES]]
    if len(kept) > SUMMARY_LINES:
        shown.append(f"  {sign} …（另 {len(kept) - SUMMARY_LINES} 行）")
    return shown
