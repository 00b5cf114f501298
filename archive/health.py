"""Is a source broken? Each finished run is judged against the source's own history.

A site that changes its layout or starts answering with challenge pages rarely
fails loudly: the crawl "completes" and finds nothing. These signs are taken
as a broken source: every request failed; a list page yields no notice links
although the source used to yield notices; the share of notices read without a
title or a date jumps; or the site answers with challenge pages. The first
broken run after a healthy one raises a ``source_broken`` event, the first
healthy run after that a ``source_recovered`` one.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from .models import CrawlError, CrawlRun, Document, Event, Source, utcnow
from .records import china_time
from .store import Archive

JUDGED = ("completed", "failed")  # an interrupted or still running run says nothing of the site
FETCH_FAILURES = ("http-", "dns", "refused", "timeout", "download")
# The share of notices without a title or a date is a jump when it rises by this much...
INCOMPLETE_JUMP = 0.3
# ...over the runs before, in a run that read at least this many notices.
INCOMPLETE_MIN_READ = 3
HISTORY_RUNS = 10
# A run re-fetches pages that failed before; one or two of those failing again is not a broken site.
MIN_FAILED_REQUESTS = 3
MIN_CHALLENGES = 2


@dataclass(frozen=True)
class RunFacts:
    """What a judgement needs to know of one run."""

    status: str
    read: int  # notice pages fetched and extracted
    not_modified: int
    incomplete: int
    empty_lists: int
    challenges: int
    failed_requests: int
    message: str | None = None


def find_problem(run: RunFacts, history: list[RunFacts], known_notices: int) -> str | None:
    """Why ``run`` says the source is broken, or None. ``history``: earlier judged runs, newest first."""
    if run.status == "failed":
        return f"every request failed: {run.message or 'no list page could be fetched'}"
    if run.read == 0 and run.not_modified == 0 and run.failed_requests >= MIN_FAILED_REQUESTS \
            and not run.empty_lists:
        return f"every notice request failed ({run.failed_requests} errors)"
    if run.empty_lists and known_notices:
        return (f"{run.empty_lists} list page(s) held no notice links, though the source has yielded "
                f"{known_notices} notices (has the layout changed? check the registry's columns and platform)")
    if run.challenges >= MIN_CHALLENGES and run.challenges >= run.read:
        return (f"the site answered {run.challenges} of {run.challenges + run.read} notice pages with a "
                "challenge or error page instead of the notice")
    before = [facts for facts in history if facts.read]
    if run.read >= INCOMPLETE_MIN_READ and before:
        share = run.incomplete / run.read
        usual = sum(facts.incomplete for facts in before) / sum(facts.read for facts in before)
        if share - usual >= INCOMPLETE_JUMP:
            return (f"{run.incomplete} of {run.read} notices were read without a title or a date "
                    f"({share:.0%}, usually {usual:.0%}): has the page layout changed?")
    return None


def judge_run(archive: Archive, run_id: int) -> str | None:
    """Judge a finished run, record its problem, raise the events of a change of health."""
    with archive.transaction() as session:
        run = session.get_one(CrawlRun, run_id)
        if run.status not in JUDGED:
            return None
        earlier = session.scalars(
            select(CrawlRun).where(CrawlRun.source_id == run.source_id, CrawlRun.id < run_id,
                                   CrawlRun.status.in_(JUDGED))
            .order_by(CrawlRun.id.desc()).limit(HISTORY_RUNS)).all()
        known = session.execute(select(func.count(Document.id)).where(Document.source_id == run.source_id)).scalar_one()
        problem = find_problem(_facts(session, run), [_facts(session, r) for r in earlier if not r.problem], known)
        run.problem = problem
        was_broken = bool(earlier[0].problem) if earlier else False
        if problem and not was_broken:
            _source_event(session, run, "source_broken", problem)
        elif not problem and was_broken:
            _source_event(session, run, "source_recovered", "the source answers normally again")
        return problem


def _facts(session: Session, run: CrawlRun) -> RunFacts:
    kinds = dict(session.execute(select(CrawlError.kind, func.count()).where(CrawlError.run_id == run.id)
                                 .group_by(CrawlError.kind)).all())
    return RunFacts(
        status=run.status, read=max(0, run.new + run.changed + run.unchanged - run.not_modified),
        not_modified=run.not_modified, incomplete=run.incomplete, empty_lists=kinds.get("empty-list", 0),
        challenges=kinds.get("no-notice", 0),
        failed_requests=sum(count for kind, count in kinds.items() if kind.startswith(FETCH_FAILURES)),
        message=run.message,
    )


def _source_event(session: Session, run: CrawlRun, kind: str, message: str) -> None:
    session.add(Event(source_id=run.source_id, run_id=run.id, kind=kind, at=utcnow(), message=message))


@dataclass(frozen=True)
class SourceHealth:
    key: str
    last_run: CrawlRun | None
    last_success: dt.datetime | None
    failure_streak: int
    problem: str | None

    def record(self) -> dict[str, object]:
        """As `zwgk sources --health` prints it, times in China time."""
        return {"source": self.key, "last_run": china_time(self.last_run.started_at) if self.last_run else None,
                "last_status": self.last_run.status if self.last_run else None,
                "last_success": china_time(self.last_success), "failure_streak": self.failure_streak,
                "problem": self.problem}


def source_health(archive: Archive, keys: list[str]) -> list[SourceHealth]:
    """Per source: its last run, its last healthy completed run, and how many judged runs since failed."""
    report = []
    with archive.session() as session:
        for key in keys:
            runs = session.scalars(select(CrawlRun).join(Source).where(Source.key == key)
                                   .order_by(CrawlRun.id.desc()).limit(200)).all()
            judged = [run for run in runs if run.status in JUDGED]
            streak = next((n for n, run in enumerate(judged) if not _failed(run)), len(judged))
            success = next((run.finished_at for run in judged if not _failed(run)), None)
            report.append(SourceHealth(key, runs[0] if runs else None, success, streak,
                                       judged[0].problem if judged else None))
    return report


def _failed(run: CrawlRun) -> bool:
    return run.status == "failed" or bool(run.problem)
