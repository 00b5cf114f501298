"""Nightly harvesting: the revisit policy, gone and restored notices, crawl locks, run records, source health."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time

import pytest
from sqlalchemy import select, update

from archive import open_archive
from archive.health import RunFacts, find_problem
from archive.leases import Lease, LeaseTaken
from archive.models import Document, utcnow
from archive.models import Lease as LeaseRow
from archive.revisits import RevisitPolicy
from archive.urls import canonical_url
from tests.conftest import (
    FAST_CRAWL,
    ROOT,
    FixtureSite,
    Result,
    crawl,
    run_zwgk,
    summary_row,
    wait_for,
)

HOST = "jtw.sh.gov.cn"
LIST_1 = "https://jtw.sh.gov.cn/zxzfxx/index.html"
DAY = dt.timedelta(days=1)


def detail_requests(site: FixtureSite) -> list[str]:
    return [record.path for record in site.server.requests if "/zxzfxx/20" in record.path]


def fixture_path(url: str) -> str:
    return "/" + url.split("://", 1)[1]


def make_due(db_url: str, urls: list[str]) -> None:
    """Let time pass for these notices: their next check is now due."""
    archive = open_archive(db_url)
    with archive.transaction() as session:
        session.execute(update(Document).where(Document.url.in_(urls)).values(next_check_at=utcnow() - DAY))
    archive.close()


def documents(db_url: str) -> dict[str, Document]:
    archive = open_archive(db_url)
    with archive.session() as session:
        found = {document.url: document for document in session.scalars(select(Document))}
    archive.close()
    return found


# The policy

@pytest.mark.parametrize(("age_days", "interval_days"), [
    (0, 1), (29, 1), (30, 7), (89, 7), (90, 30), (364, 30), (365, 91), (3000, 91),
])
def test_young_notices_are_checked_often_and_old_ones_rarely(age_days: int, interval_days: int) -> None:
    first_seen = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    checked = first_seen + dt.timedelta(days=age_days)
    assert RevisitPolicy().next_check(first_seen, checked) == checked + dt.timedelta(days=interval_days)


def test_a_policy_whose_ages_shrink_is_refused() -> None:
    with pytest.raises(ValueError, match="must grow"):
        RevisitPolicy(daily_until=100, weekly_until=90)


@pytest.mark.slow
def test_a_new_notice_is_due_again_the_next_day(site: FixtureSite, sqlite_url: str) -> None:
    assert crawl(site, sqlite_url, "shanghai").returncode == 0
    for document in documents(sqlite_url).values():
        assert dt.timedelta(hours=23) < document.next_check_at - document.first_seen <= DAY


# Re-checks against the fixture

@pytest.mark.slow
def test_a_crawl_rechecks_the_due_notices_only(site: FixtureSite, shanghai_archive: str) -> None:
    notices = [n["url"] for n in site.manifest(HOST)]
    due, edited = notices[20:23], notices[21]
    make_due(shanghai_archive, due)
    site.replace_text(edited, "。", "。（已修订）")
    site.server.clear_log()
    result = crawl(site, shanghai_archive, "shanghai")
    assert result.returncode == 0, result.stderr
    assert sorted(detail_requests(site)) == sorted(fixture_path(url) for url in due)
    statuses = {record.path: record.status for record in site.server.requests}
    assert [statuses[fixture_path(url)] for url in due] == [304, 200, 304]
    row = summary_row(result, "shanghai")
    assert (row["new"], row["changed"], row["unchanged"]) == ("0", "1", "2")
    after = documents(shanghai_archive)
    assert [after[url].version_count for url in due] == [1, 2, 1]
    for url in due:
        assert after[url].next_check_at > utcnow() + dt.timedelta(hours=23)


@pytest.mark.slow
def test_a_removed_notice_is_gone_after_two_checks_and_restored_when_back(site: FixtureSite,
                                                                        shanghai_archive: str) -> None:
    removed = site.manifest(HOST)[5]["url"]
    site.server.set_status(fixture_path(removed), 404)
    first = crawl(site, shanghai_archive, "shanghai", "--revisit")
    assert first.returncode == 0 and summary_row(first, "shanghai")["errors"] == "0"
    archive = open_archive(shanghai_archive)
    document = archive.find_document(removed)
    assert (document.status, document.missing_checks) == ("active", 1)
    assert [e.kind for e in archive.events(document.id)] == ["new"]

    site.server.set_status(fixture_path(removed), 410)
    crawl(site, shanghai_archive, "shanghai", "--revisit")
    document = archive.find_document(removed)
    assert document.status == "gone"
    assert [e.kind for e in archive.events(document.id)] == ["new", "gone"]
    assert document.version_count == 1 and document.versions[0].body, "a gone notice keeps its versions"
    lines = run_zwgk("export", "--db", shanghai_archive).stdout.splitlines()
    exported = {json.loads(line)["url"]: json.loads(line) for line in lines}
    assert exported[removed]["status"] == "gone"

    crawl(site, shanghai_archive, "shanghai", "--revisit")  # still gone: no second event
    assert [e.kind for e in archive.events(document.id)] == ["new", "gone"]

    site.server.clear_status()
    back = crawl(site, shanghai_archive, "shanghai", "--revisit")
    assert back.returncode == 0
    document = archive.find_document(removed)
    assert (document.status, document.missing_checks, document.version_count) == ("active", 0, 1)
    assert [e.kind for e in archive.events(document.id)] == ["new", "gone", "restored"]


@pytest.mark.slow
def test_one_missing_answer_between_good_ones_is_not_gone(site: FixtureSite, shanghai_archive: str) -> None:
    flaky = site.manifest(HOST)[7]["url"]
    for status in (404, None, 404):
        if status:
            site.server.set_status(fixture_path(flaky), status)
        else:
            site.server.clear_status()
        crawl(site, shanghai_archive, "shanghai", "--revisit")
    assert open_archive(shanghai_archive).find_document(flaky).status == "active"


# Locks, signals, run records

def start_crawl(site: FixtureSite, db_url: str, *args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "ZWGK_HOST_MAP": site.host_map_json}
    env.pop("ZWGK_DB", None)
    return subprocess.Popen(
        [sys.executable, "-m", "crawler.cli", "crawl", *args, *FAST_CRAWL, "--db", db_url,
         "-s", "DOWNLOAD_DELAY=0.3", "-s", "CONCURRENT_REQUESTS_PER_DOMAIN=1"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.slow
def test_two_crawls_of_one_source_never_run_at_once(site: FixtureSite, sqlite_url: str) -> None:
    # The first crawl is kept busy on its first list page until the second has been refused.
    busy = site.server.hold(f"/{HOST}/zxzfxx/index.html")
    first = start_crawl(site, sqlite_url, "shanghai", "-s", "DOWNLOAD_TIMEOUT=180")
    archive = open_archive(sqlite_url)
    try:
        wait_for(busy.arrived.is_set, "the first crawl to reach its list page")
        second = crawl(site, sqlite_url, "shanghai")
    finally:
        busy.release()
    _, err = first.communicate(timeout=120)
    assert second.returncode == 1
    assert "shanghai: not crawled: another crawl of shanghai is running" in second.stderr
    assert summary_row(second, "shanghai")["status"] == "locked"
    assert first.returncode == 0, err
    assert [run.status for run, _ in archive.runs("shanghai")] == ["completed"]
    with archive.session() as session:
        assert session.scalars(select(LeaseRow)).all() == [], "the lock outlived the crawl"


@pytest.mark.slow
def test_the_lock_of_a_dead_crawl_lapses_and_its_run_is_closed(site: FixtureSite, sqlite_url: str) -> None:
    archive = open_archive(sqlite_url)
    dead = Lease(archive, "crawl:shanghai", ttl=0.5, holder="gone-host pid 1")
    dead.acquire()
    dead._stop.set()  # the holder is killed: nobody renews its lease
    with pytest.raises(LeaseTaken, match="gone-host pid 1"):
        Lease(archive, "crawl:shanghai").acquire()
    archive.ensure_source("shanghai", "上海市交通委员会", HOST, "shanghai_ivs")
    orphan = archive.start_run("shanghai")  # its process died mid-crawl
    time.sleep(0.6)
    result = crawl(site, sqlite_url, "shanghai")
    assert result.returncode == 0, result.stderr
    runs = {run.id: run for run, _ in archive.runs("shanghai")}
    assert runs[orphan].status == "interrupted" and "ended without finishing" in runs[orphan].message


@pytest.mark.slow
def test_sigterm_mid_crawl_stops_cleanly_and_the_next_run_loses_nothing(site: FixtureSite, sqlite_url: str) -> None:
    process = start_crawl(site, sqlite_url, "shanghai")
    archive = open_archive(sqlite_url)
    wait_for(lambda: len(archive.known_urls("shanghai")) >= 4)
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 1 and summary_row(Result(1, out, err), "shanghai")["status"] == "interrupted"
    stopped = len(archive.known_urls("shanghai"))
    assert stopped < len(site.manifest(HOST))
    resumed = crawl(site, sqlite_url, "shanghai")
    assert resumed.returncode == 0, resumed.stderr
    assert archive.known_urls("shanghai") == {canonical_url(n["url"]) for n in site.manifest(HOST)}
    records = run_zwgk("export", "--all-versions", "--db", sqlite_url).stdout.splitlines()
    assert len(records) == len(site.manifest(HOST))
    assert sorted(e.kind for e in archive.events()) == ["new"] * len(site.manifest(HOST))


@pytest.mark.slow
def test_zwgk_runs_lists_each_run_with_its_counts(site: FixtureSite, sqlite_url: str) -> None:
    crawl(site, sqlite_url, "shanghai")
    crawl(site, sqlite_url, "shanghai", "--revisit")
    listed = run_zwgk("runs", "shanghai", "--db", sqlite_url, "--json")
    assert listed.returncode == 0
    second, first = json.loads(listed.stdout)
    assert (first["status"], first["new"], first["pages"]) == ("completed", 28, 31)
    assert (second["not_modified"], second["unchanged"], second["new"]) == (28, 28, 0)
    assert first["seconds"] is not None and first["started"] <= second["started"]
    table = run_zwgk("runs", "--db", sqlite_url).stdout.splitlines()
    assert table[0].split()[:4] == ["run", "source", "started", "took"] and len(table) == 3
    assert run_zwgk("runs", "--limit", "0", "--db", sqlite_url).returncode == 2


# Health

def test_health_signals() -> None:
    healthy = RunFacts("completed", read=10, not_modified=0, incomplete=0, empty_lists=0, challenges=0,
                       failed_requests=0)
    history = [healthy] * 3
    assert find_problem(healthy, history, known_notices=28) is None
    assert "every request failed" in find_problem(
        RunFacts("failed", 0, 0, 0, 0, 0, 1, "refused: connection refused by x"), history, 28)
    assert "every notice request failed" in find_problem(
        RunFacts("completed", read=0, not_modified=0, incomplete=0, empty_lists=0, challenges=0, failed_requests=5),
        history, 28)
    assert "held no notice links" in find_problem(
        RunFacts("completed", 0, 0, 0, empty_lists=1, challenges=0, failed_requests=0), history, 28)
    assert find_problem(RunFacts("completed", 0, 0, 0, 1, 0, 0), [], known_notices=0) is None  # nothing known yet
    assert "challenge" in find_problem(RunFacts("completed", 2, 0, 0, 0, challenges=5, failed_requests=0), history, 28)
    # A quiet night that re-fetched one old dead link, or met one odd page, is not a broken site.
    assert find_problem(RunFacts("completed", 0, 0, 0, 0, challenges=0, failed_requests=1), history, 28) is None
    assert find_problem(RunFacts("completed", 0, 0, 0, 0, challenges=1, failed_requests=0), history, 28) is None
    jump = RunFacts("completed", read=10, not_modified=0, incomplete=6, empty_lists=0, challenges=0, failed_requests=0)
    assert "without a title or a date" in find_problem(jump, history, 28)
    usual = RunFacts("completed", read=10, not_modified=0, incomplete=5, empty_lists=0, challenges=0, failed_requests=0)
    assert find_problem(jump, [usual] * 3, 28) is None  # this source always lacks dates: no jump


def source_events(db_url: str) -> list[tuple[str, str]]:
    return [(e.kind, e.message) for e in open_archive(db_url).events() if e.source_id is not None]


@pytest.mark.slow
def test_a_list_page_that_changes_shape_makes_the_source_broken(site: FixtureSite, sqlite_url: str) -> None:
    crawl(site, sqlite_url, "shanghai")
    site.replace_text(LIST_1, '<ul class="uli14 nowrapli list-date pageList">', '<ul class="news-items">')
    broken = crawl(site, sqlite_url, "shanghai")
    assert "shanghai: looks broken:" in broken.stderr and "held no notice links" in broken.stderr
    assert [kind for kind, _ in source_events(sqlite_url)] == ["source_broken"]
    crawl(site, sqlite_url, "shanghai")  # still broken: said once, the streak grows
    assert [kind for kind, _ in source_events(sqlite_url)] == ["source_broken"]
    health = json.loads(run_zwgk("sources", "--health", "--json", "--db", sqlite_url).stdout)
    shanghai = next(row for row in health if row["source"] == "shanghai")
    assert shanghai["failure_streak"] == 2 and "held no notice links" in shanghai["problem"]
    assert shanghai["last_success"] is not None and shanghai["last_status"] == "completed"
    runs = json.loads(run_zwgk("runs", "shanghai", "--json", "--db", sqlite_url).stdout)
    assert [bool(run["problem"]) for run in runs] == [True, True, False]

    site.replace_text(LIST_1, '<ul class="news-items">', '<ul class="uli14 nowrapli list-date pageList">')
    crawl(site, sqlite_url, "shanghai")
    assert [kind for kind, _ in source_events(sqlite_url)] == ["source_broken", "source_recovered"]
    table = run_zwgk("sources", "--health", "--db", sqlite_url).stdout
    assert next(line for line in table.splitlines() if line.startswith("shanghai")).split()[4] == "0"
    never = next(line for line in table.splitlines() if line.startswith("yunnan"))
    assert "never" in never


@pytest.mark.slow
def test_a_dead_site_makes_the_source_broken(sqlite_url: str) -> None:
    host_map = json.dumps({HOST: "http://127.0.0.1:9/jtw.sh.gov.cn"})  # nothing listens on port 9
    result = run_zwgk("crawl", "shanghai", "--db", sqlite_url, "-s", "RETRY_TIMES=0", host_map=host_map)
    assert result.returncode == 1
    [(kind, message)] = source_events(sqlite_url)
    assert kind == "source_broken" and "every request failed" in message and "refused" in message


@pytest.mark.slow
def test_challenge_pages_make_the_source_broken(site: FixtureSite, sqlite_url: str) -> None:
    crawl(site, sqlite_url, "shanghai")
    due = [n["url"] for n in site.manifest(HOST)[:3]]
    for url in due:
        site.path(url).write_text("<html><body><script>var c='verify';</script></body></html>", encoding="utf-8")
    make_due(sqlite_url, due)
    crawl(site, sqlite_url, "shanghai")
    [(kind, message)] = source_events(sqlite_url)
    assert kind == "source_broken" and "challenge" in message
