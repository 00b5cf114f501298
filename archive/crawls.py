"""The archive's record of crawling: sources, runs, their errors, and what a crawl plans from
(the notices known, the re-checks due, whether the lists were walked to their end)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError

from .base import ArchiveBase
from .busy import retry_while_busy
from .models import CrawlError, CrawlRun, Document, Event, Source, utcnow
from .urls import canonical_url


@dataclass(frozen=True)
class Revisit:
    """A known notice to re-check, with what a conditional request needs."""

    url: str
    etag: str | None
    last_modified: str | None
    listed_title: str | None = None
    listed_date: str | None = None


class CrawlRecords(ArchiveBase):
    """Sources, runs and crawl errors; the queries a crawl is planned from."""

    def ensure_source(self, key: str, name: str, host: str, platform: str,
                      level: str | None = None, region: str | None = None) -> int:
        """Create or update the source row for ``key`` and return its id."""
        values = {"name": name, "host": host, "platform": platform, "level": level, "region": region}
        try:
            return self._write_source(key, values)
        except IntegrityError:  # another process created it between our read and our insert
            return self._write_source(key, values)

    @retry_while_busy
    def _write_source(self, key: str, values: Mapping[str, str | None]) -> int:
        with self._sessions.begin() as session:
            source = session.scalar(select(Source).where(Source.key == key))
            if source is None:
                source = Source(key=key)
                session.add(source)
            for name, value in values.items():
                setattr(source, name, value)
            session.flush()
            return source.id

    @retry_while_busy
    def start_run(self, source_key: str) -> int:
        with self._sessions.begin() as session:
            run = CrawlRun(source_id=self._source_id(session, source_key))
            session.add(run)
            session.flush()
            return run.id

    @retry_while_busy
    def finish_run(self, run_id: int, status: str, counts: Mapping[str, int], message: str | None = None,
                   walked_to_end: bool = False) -> None:
        with self._sessions.begin() as session:
            run = session.get_one(CrawlRun, run_id)
            run.status, run.message, run.finished_at = status, message, utcnow()
            run.walked_to_end = walked_to_end
            for name in ("pages", "new", "changed", "unchanged", "not_modified", "errors", "incomplete"):
                setattr(run, name, int(counts.get(name, 0)))

    def run_status(self, run_id: int) -> str | None:
        """A run's status ("running", "completed", …), None for no such run."""
        with self.session() as session:
            return session.scalar(select(CrawlRun.status).where(CrawlRun.id == run_id))

    @retry_while_busy
    def close_abandoned_runs(self, source_key: str) -> int:
        """Mark runs left "running" by a crawl process that died as interrupted.

        Call it holding the source's crawl lease: then no live process owns them.
        """
        with self._sessions.begin() as session:
            runs = session.scalars(select(CrawlRun).join(Source)
                                   .where(Source.key == source_key, CrawlRun.status == "running")).all()
            for run in runs:
                run.status, run.finished_at = "interrupted", utcnow()
                run.message = "the crawl process ended without finishing (killed?)"
            return len(runs)

    @retry_while_busy
    def record_error(self, run_id: int, url: str, kind: str, message: str, role: str = "detail") -> None:
        with self._sessions.begin() as session:
            session.add(CrawlError(run_id=run_id, url=url, role=role, kind=kind, message=message[:2000]))

    def runs(self, source_key: str | None = None, limit: int = 50) -> list[tuple[CrawlRun, str]]:
        """The latest runs (of one source, or of all), newest first, with their source's key."""
        with self.session() as session:
            query = select(CrawlRun, Source.key).join(Source).order_by(CrawlRun.id.desc()).limit(limit)
            if source_key:
                query = query.where(Source.key == source_key)
            return [(run, key) for run, key in session.execute(query)]

    # What a crawl is planned from

    def known_urls(self, source_key: str) -> set[str]:
        """The canonical URLs of the notices archived for a source."""
        with self.session() as session:
            query = select(Document.canonical_url).join(Source).where(Source.key == source_key)
            return set(session.scalars(query))

    def revisits(self, source_key: str, due_by: dt.datetime | None = None) -> list[Revisit]:
        """The known notices of a source to re-check, newest first, with validators and list context:
        those the revisit policy says are due by ``due_by``, or every one when it is None."""
        with self.session() as session:
            query = (select(Document.url, Document.etag, Document.last_modified, Document.listed_title,
                            Document.listed_date)
                     .join(Source).where(Source.key == source_key).order_by(Document.first_seen.desc()))
            if due_by is not None:
                query = query.where(or_(Document.next_check_at.is_(None), Document.next_check_at <= due_by))
            return [Revisit(*row) for row in session.execute(query)]

    def list_walk_completed(self, source_key: str) -> bool:
        """Whether the lists were walked to their end and no later run may have left a gap.

        Stopping at the first page of known notices is safe only then: a run that
        archived new notices from the top of a list and died before reaching known
        ones (an interrupted first crawl, a killed night run) leaves older new notices
        below them, so the next run walks every page.
        """
        with self.session() as session:
            walked = session.scalar(
                select(CrawlRun.id).join(Source)
                .where(Source.key == source_key, CrawlRun.status == "completed", CrawlRun.walked_to_end.is_(True))
                .order_by(CrawlRun.id.desc()).limit(1))
            if walked is None:
                return False
            later_unwalked = (select(CrawlRun.id).join(Source)
                              .where(Source.key == source_key, CrawlRun.id > walked, CrawlRun.walked_to_end.is_(False)))
            gap = select(Event.id).where(Event.kind == "new", Event.run_id.in_(later_unwalked)).limit(1)
            return session.scalar(gap) is None

    def pending_failures(self, source_key: str, days: int = 30) -> list[str]:
        """Detail pages that failed in recent runs and are still not archived: to be tried again."""
        since = utcnow() - dt.timedelta(days=days)
        with self.session() as session:
            archived = select(Document.canonical_url)
            query = (select(CrawlError.url).join(CrawlRun, CrawlError.run_id == CrawlRun.id).join(Source)
                     .where(Source.key == source_key, CrawlError.role == "detail", CrawlError.at >= since)
                     .distinct())
            known = set(session.scalars(archived.join(Source).where(Source.key == source_key)))
            return sorted(url for url in session.scalars(query) if canonical_url(url) not in known)
