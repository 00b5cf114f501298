"""The scheduler: the timetable, missed nights, restarts, one active scheduler per archive.

The clock is moved with time-machine (no real waiting for 02:30); the crawls the
jobs start are real `zwgk crawl` processes against the fixture sites.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import time_machine
from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import func, select, text

from archive import open_archive
from archive.models import CrawlRun, Source
from archive.search import parse_query
from scheduler import (
    ConfigError,
    Harvester,
    ScheduleConfig,
    crontab_trigger,
    default_timetable,
    load_schedule_config,
)
from spiders.registry import BUNDLED_SOURCES
from tests.conftest import FAST_CRAWL, ROOT, FixtureSite, StderrLines, run_zwgk, wait_for

SHANGHAI = dt.timezone(dt.timedelta(hours=8))
FAST_SETTINGS = [value for value in FAST_CRAWL if value != "-s"]


def at(day: int, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(2026, 11, day, hour, minute, tzinfo=SHANGHAI)


@pytest.fixture
def two_sources(tmp_path: Path) -> str:
    """A registry with the Shanghai and Yunnan entries of the bundled one."""
    sections = BUNDLED_SOURCES.read_text(encoding="utf-8").split("\n[")
    chosen = [section for section in sections if section.startswith(("shanghai]", "yunnan]"))]
    path = tmp_path / "sources.toml"
    path.write_text("".join("\n[" + section for section in chosen), encoding="utf-8")
    return str(path)


CONFIG = ScheduleConfig(jitter_minutes=0, sources={"shanghai": "30 2 * * *", "yunnan": "0 4 * * *"})
CONFIG_TOML = '[schedule]\njitter_minutes = 0\n[schedule.sources]\nshanghai = "30 2 * * *"\nyunnan = "0 4 * * *"\n'


@pytest.fixture
def config_file(tmp_path: Path) -> str:
    """CONFIG as a zwgk.toml, for scheduler processes."""
    path = tmp_path / "zwgk.toml"
    path.write_text(CONFIG_TOML, encoding="utf-8")
    assert load_schedule_config(path) == CONFIG
    return str(path)


def harvester(db_url: str, sources: str, config: ScheduleConfig = CONFIG) -> Harvester:
    return Harvester(db_url, sources, config, FAST_SETTINGS, scheduler_class=BackgroundScheduler)


def runs_by_source(db_url: str) -> dict[str, int]:
    archive = open_archive(db_url)
    with archive.session() as session:
        rows = session.execute(select(Source.key, func.count(CrawlRun.id)).join(CrawlRun).group_by(Source.key)).all()
    archive.close()
    return dict(rows)


def next_runs(h: Harvester) -> dict[str, dt.datetime]:
    return {job.id: job.next_run_time for job in h.scheduler.get_jobs()}


def stored_job_count(db_url: str) -> int:
    archive = open_archive(db_url)
    with archive.engine.connect() as connection:
        count = connection.scalar(text("SELECT count(*) FROM apscheduler_jobs"))
    archive.close()
    return count


@pytest.mark.slow
def test_the_timetable_fires_each_sources_job_at_its_time(site: FixtureSite, sqlite_url: str, two_sources: str,
                                                          monkeypatch) -> None:
    monkeypatch.setenv("ZWGK_HOST_MAP", site.host_map_json)
    with time_machine.travel(at(1, 0), tick=True):
        h = harvester(sqlite_url, two_sources)
        h.start()
        assert next_runs(h) == {"crawl:shanghai": at(1, 2, 30), "crawl:yunnan": at(1, 4)}
    try:
        with time_machine.travel(at(1, 2, 31), tick=True):
            h.scheduler.wakeup()
            wait_for(lambda: runs_by_source(sqlite_url).get("shanghai") == 1, what="the Shanghai crawl")
            wait_for(lambda: not h._children, what="the crawl process to end")
            assert runs_by_source(sqlite_url) == {"shanghai": 1}
            assert next_runs(h)["crawl:shanghai"] == at(2, 2, 30)
        with time_machine.travel(at(1, 4, 1), tick=True):
            h.scheduler.wakeup()
            wait_for(lambda: runs_by_source(sqlite_url).get("yunnan") == 1, what="the Yunnan crawl")
            wait_for(lambda: not h._children, what="the crawl process to end")
    finally:
        h.scheduler.shutdown(wait=True)
    assert runs_by_source(sqlite_url) == {"shanghai": 1, "yunnan": 1}
    statuses = {run.status for run, _ in open_archive(sqlite_url).runs()}
    assert statuses == {"completed"}


@pytest.mark.slow
def test_a_week_missed_runs_once_and_a_restart_keeps_one_job_per_source(site: FixtureSite, sqlite_url: str,
                                                                        two_sources: str, monkeypatch) -> None:
    monkeypatch.setenv("ZWGK_HOST_MAP", site.host_map_json)
    with time_machine.travel(at(1, 0), tick=True):
        first = harvester(sqlite_url, two_sources)
        first.start()
        first.scheduler.shutdown()  # the server goes down for a week
    assert stored_job_count(sqlite_url) == 2
    with time_machine.travel(at(8, 12), tick=True):
        back = harvester(sqlite_url, two_sources)
        back.start()
        try:
            wait_for(lambda: runs_by_source(sqlite_url) == {"shanghai": 1, "yunnan": 1}, what="the missed crawls")
            wait_for(lambda: not back._children, what="the crawl processes to end")
            time.sleep(1)
            assert runs_by_source(sqlite_url) == {"shanghai": 1, "yunnan": 1}, "seven nights ran more than once"
            assert next_runs(back) == {"crawl:shanghai": at(9, 2, 30), "crawl:yunnan": at(9, 4)}
        finally:
            back.scheduler.shutdown(wait=True)
        again = harvester(sqlite_url, two_sources)
        again.start()
        try:
            assert next_runs(again) == {"crawl:shanghai": at(9, 2, 30), "crawl:yunnan": at(9, 4)}
        finally:
            again.scheduler.shutdown(wait=True)
    assert stored_job_count(sqlite_url) == 2
    assert runs_by_source(sqlite_url) == {"shanghai": 1, "yunnan": 1}


@pytest.mark.slow
def test_a_changed_timetable_replaces_the_job_and_off_removes_it(sqlite_url: str, two_sources: str) -> None:
    with time_machine.travel(at(1, 0), tick=True):
        first = harvester(sqlite_url, two_sources)
        first.start()
        first.scheduler.shutdown()
        changed = harvester(sqlite_url, two_sources, ScheduleConfig(
            jitter_minutes=0, sources={"shanghai": "15 3 * * 1", "yunnan": "off"}))
        changed.start()
        try:
            assert next_runs(changed) == {"crawl:shanghai": at(2, 3, 15)}  # 2026-11-02 is a Monday
        finally:
            changed.scheduler.shutdown()
    assert stored_job_count(sqlite_url) == 1


def test_default_timetables_are_nightly_inside_the_window_and_stable() -> None:
    config = ScheduleConfig()
    keys = ["guangzhou", "shanghai", "yunnan", "xiangtan", "shanwei"]
    for key in keys:
        trigger = crontab_trigger(default_timetable(key, config), config.timezone, config.jitter_minutes * 60)
        fire = trigger.get_next_fire_time(None, at(1, 12))
        assert at(2, 1) <= fire <= at(2, 5), (key, fire)
        assert default_timetable(key, config) == default_timetable(key, ScheduleConfig())
    assert len({default_timetable(key, config) for key in keys}) == len(keys), "sources are not staggered"


@pytest.mark.parametrize(("weekdays", "expected"), [
    ("0", {6}), ("7", {6}), ("1-5", {0, 1, 2, 3, 4}), ("0-3", {6, 0, 1, 2}), ("*/2", {6, 1, 3, 5}),
    ("5-7", {4, 5, 6}), ("sat,sun", {5, 6}), ("mon-fri/2", {0, 2, 4}),
])
def test_crontab_weekdays_mean_what_cron_means(weekdays: str, expected: set[int]) -> None:
    trigger = crontab_trigger(f"0 3 * * {weekdays}", "Asia/Shanghai")
    fires, moment = set(), at(1, 12)
    for _ in range(14):
        moment = trigger.get_next_fire_time(None, moment + dt.timedelta(minutes=1))
        fires.add(moment.weekday())  # Python: Monday = 0
    assert fires == expected


def test_crontab_weekdays_follow_cron_and_bad_timetables_are_refused() -> None:
    sunday = crontab_trigger("0 3 * * 0", "Asia/Shanghai").get_next_fire_time(None, at(1, 12))
    assert sunday.weekday() == 6
    with pytest.raises(ConfigError, match="not both"):
        crontab_trigger("0 2 1 * 1", "Asia/Shanghai")
    with pytest.raises(ConfigError, match="backwards"):
        crontab_trigger("0 2 * * 5-1", "Asia/Shanghai")
    with pytest.raises(ConfigError, match="five fields"):
        crontab_trigger("0 3 * *", "Asia/Shanghai")
    with pytest.raises(ConfigError, match="99"):
        crontab_trigger("99 3 * * *", "Asia/Shanghai")


def test_the_config_file_is_checked(tmp_path: Path) -> None:
    path = tmp_path / "zwgk.toml"
    path.write_text('[schedule]\nwindow = "02:00-04:30"\ntime_limit_minutes = 60\n'
                    '[schedule.sources]\nshanghai = "0 6 * * *"\n', encoding="utf-8")
    config = load_schedule_config(path)
    assert (config.window, config.time_limit_minutes, config.sources) == (
        (dt.time(2), dt.time(4, 30)), 60, {"shanghai": "0 6 * * *"})
    path.write_text('[schedule]\nwindwo = "02:00-04:30"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="unknown keys windwo"):
        load_schedule_config(path)
    path.write_text('[schedule]\nwindow = "05:00-01:00"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="must end after"):
        load_schedule_config(path)
    path.write_text('[schedule]\ntimezone = "Mars/Olympus"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="unknown time zone"):
        load_schedule_config(path)


@pytest.mark.slow
def test_schedule_list_shows_each_job_and_its_next_run(sqlite_url: str, two_sources: str) -> None:
    before = run_zwgk("schedule", "list", "--db", sqlite_url, "--sources", two_sources, "--json")
    assert before.returncode == 0, before.stderr
    import json

    rows = {row["source"]: row for row in json.loads(before.stdout)}
    assert set(rows) == {"shanghai", "yunnan"} and {row["state"] for row in rows.values()} == {"not stored yet"}
    h = harvester(sqlite_url, two_sources)
    h.start()
    h.scheduler.shutdown()
    after = run_zwgk("schedule", "list", "--db", sqlite_url, "--sources", two_sources)
    assert after.returncode == 0
    line = next(line for line in after.stdout.splitlines() if line.startswith("shanghai"))
    assert "30 2 * * *" not in line  # the stored job is the registry's default, not CONFIG's
    assert "stored" in line


def scheduler_process(db_url: str, sources: str, config: str, site: FixtureSite, *settings: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "ZWGK_HOST_MAP": site.host_map_json}
    env.pop("ZWGK_DB", None)
    args = [arg for setting in (*FAST_SETTINGS, *settings) for arg in ("-s", setting)]
    command = [sys.executable, "scheduler.py", "--db", db_url, "--sources", sources, "--config", config, *args]
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def store_missed_jobs(db_url: str, sources: str) -> None:
    """Jobs stored last week and missed since: a scheduler started now runs each once at once."""
    with time_machine.travel(at(1, 0), tick=True):
        h = harvester(db_url, sources)
        h.start()
        h.scheduler.shutdown()


@pytest.mark.slow
def test_two_schedulers_on_one_archive_crawl_each_source_once(site: FixtureSite, sqlite_url: str,
                                                              two_sources: str, config_file: str) -> None:
    store_missed_jobs(sqlite_url, two_sources)
    first = scheduler_process(sqlite_url, two_sources, config_file, site)
    active = StderrLines(first)
    processes = [first]
    try:
        wait_for(lambda: runs_by_source(sqlite_url), what="the first scheduler's crawls")
        second = scheduler_process(sqlite_url, two_sources, config_file, site)
        processes.append(second)
        standby = StderrLines(second)
        wait_for(lambda: standby.saw("another scheduler is active"), what="the second scheduler to stand by")
        wait_for(lambda: runs_by_source(sqlite_url) == {"shanghai": 1, "yunnan": 1}, what="both crawls")
        wait_for(lambda: all(run.status != "running" for run, _ in open_archive(sqlite_url).runs()),
                 what="the crawls to finish")
    finally:
        for process in reversed(processes):
            process.send_signal(signal.SIGTERM)
        for process in processes:
            process.wait(timeout=60)
    # The standing-by scheduler saw the missed jobs too, and ran none of them.
    assert runs_by_source(sqlite_url) == {"shanghai": 1, "yunnan": 1}
    assert first.returncode == 0 and second.returncode == 0
    assert "scheduler stopped" in active.text()


@pytest.mark.slow
def test_sigterm_to_the_scheduler_stops_its_crawl_cleanly_and_nothing_is_lost(
        site: FixtureSite, sqlite_url: str, two_sources: str, config_file: str) -> None:
    store_missed_jobs(sqlite_url, two_sources)
    process = scheduler_process(sqlite_url, two_sources, config_file, site, "DOWNLOAD_DELAY=0.3",
                                "CONCURRENT_REQUESTS_PER_DOMAIN=1")
    archive = open_archive(sqlite_url)

    def archived() -> int:
        return len(archive.known_urls("shanghai"))

    try:
        wait_for(lambda: archived() >= 3, what="the first notices")
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=90)
    assert process.returncode == 0, stderr
    statuses = {key: run.status for run, key in archive.runs()}
    assert statuses["shanghai"] == "interrupted", stderr
    assert archived() < len(site.manifest("jtw.sh.gov.cn"))
    resumed = run_zwgk("crawl", "shanghai", "yunnan", *FAST_CRAWL, "--db", sqlite_url, "--sources", two_sources,
                       host_map=site.host_map_json)
    assert resumed.returncode == 0, resumed.stderr
    expected = {n["url"] for n in site.manifest("jtw.sh.gov.cn")}
    records = [line for line in run_zwgk("export", "--all-versions", "--db", sqlite_url).stdout.splitlines()
               if "jtw.sh.gov.cn" in line]
    assert len(records) == len(expected), "a notice was lost or archived twice"
    assert {kind for event in archive.events() for kind in [event.kind]} == {"new"}
    assert len(archive.events()) == len(archive.known_urls("shanghai")) + len(archive.known_urls("yunnan"))


@pytest.mark.slow
def test_alerts_follow_every_scheduled_crawl(site: FixtureSite, sqlite_url: str, two_sources: str,
                                             monkeypatch) -> None:
    from archive.alerts import Alerts
    from tests.test_alerts import Webhook

    monkeypatch.setenv("ZWGK_HOST_MAP", site.host_map_json)
    hook = Webhook().start()
    try:
        h = harvester(sqlite_url, two_sources)
        Alerts(h.archive).add("replies", "批复 source:shanghai", [hook.url()], digest=True)
        assert h.crawl("shanghai") == 0
        matching = h.archive.search(parse_query("批复 source:shanghai"), limit=1).total
        [(_, message)] = hook.received
        assert message["title"] == f"[zwgk] replies：{matching} 条" and matching > 1
    finally:
        hook.stop()
