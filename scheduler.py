"""zwgk's scheduler: every source crawled on its timetable, each crawl in its own process.

APScheduler 3's BlockingScheduler keeps one cron job per source (id ``crawl:KEY``)
in the archive database (its SQLAlchemyJobStore), so a restart keeps the timetable
and a night missed while the server was down runs once when it is back
(``coalesce``, no misfire limit). Each job runs `zwgk crawl KEY` in a new process
with a time limit: Twisted's reactor cannot restart, and a crawl that crashes or
hangs must not take the scheduler with it. Only one scheduler is active per
archive (a lease in the database); another one started against the same archive
stands by and takes over if the active one dies. SIGTERM or Ctrl-C stops the
scheduler after its running crawls have finished the notices in hand.

After each crawl the alerts run (archive.alerts). `run_scheduler` is `zwgk schedule run` (and
`python scheduler.py`, which runs that command); `zwgk schedule list` shows each job and its next run.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
import signal
import subprocess
import sys
import threading
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.events import EVENT_SCHEDULER_STARTED
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.cron import CronTrigger

from archive import Archive, open_archive
from archive.alerts import Alerts, AlertSettings, load_alert_settings
from archive.config import ConfigError, load_table
from archive.leases import Lease, LeaseTaken
from crawler.overrides import as_arguments, parse_overrides
from spiders.registry import SourceConfig, load_sources

logger = logging.getLogger("zwgk.scheduler")
JOB_PREFIX = "crawl:"
_WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


@dataclass(frozen=True)
class ScheduleConfig:
    """The ``[schedule]`` table of zwgk.toml, with the defaults for a nightly harvest."""

    timezone: str = "Asia/Shanghai"
    # Sources without a timetable of their own start in this window, each at its own minute.
    window: tuple[dt.time, dt.time] = (dt.time(1, 0), dt.time(5, 0))
    jitter_minutes: int = 10
    time_limit_minutes: int = 180
    max_parallel: int = 2
    lease_seconds: float = 60.0
    # key -> crontab ("30 2 * * *") or "off"; overrides the registry's `schedule`.
    sources: dict[str, str] = field(default_factory=dict)


def load_schedule_config(path: str | Path | None = None) -> ScheduleConfig:
    """The [schedule] table of the config file (archive.config), checked."""
    known = frozenset({"timezone", "window", "jitter_minutes", "time_limit_minutes", "max_parallel",
                       "lease_seconds", "sources"})
    table, file = load_table("schedule", path, known)
    # TOML values: the whole numbers and the window are checked here, the time zone once it is used.
    values: dict[str, Any] = {key: table[key] for key in known & set(table) if key not in ("window", "sources")}
    for key in ("jitter_minutes", "time_limit_minutes", "max_parallel"):
        if key in values and (not isinstance(values[key], int) or values[key] < (0 if key == "jitter_minutes" else 1)):
            bound = "" if key == "jitter_minutes" else " above 0"
            raise ConfigError(f"{file}: [schedule] {key} must be a whole number{bound}")
    if "window" in table:
        values["window"] = _window(file, table["window"])
    sources = table.get("sources", {})
    if not isinstance(sources, dict) or not all(isinstance(v, str) for v in sources.values()):
        raise ConfigError(f'{file}: [schedule.sources] maps source keys to crontab strings or "off"')
    config = ScheduleConfig(**values, sources=dict(sources))
    _zone(config.timezone)
    return config


def _window(file: str, text: object) -> tuple[dt.time, dt.time]:
    match = re.fullmatch(r"\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*", str(text))
    if not match:
        raise ConfigError(f'{file}: [schedule] window must look like "01:00-05:00", not {text!r}')
    h1, m1, h2, m2 = map(int, match.groups())
    try:
        start, end = dt.time(h1, m1), dt.time(h2, m2)
    except ValueError as error:
        raise ConfigError(f"{file}: [schedule] window {text!r}: {error}") from error
    if end <= start:
        raise ConfigError(f"{file}: [schedule] window {text!r} must end after it starts (within one day)")
    return start, end


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise ConfigError(f"unknown time zone {name!r} (try Asia/Shanghai)") from error


def crontab_trigger(expr: str, timezone: str, jitter_seconds: int = 0) -> CronTrigger:
    """A trigger for a standard crontab line ("minute hour day month weekday", 0 or 7 = Sunday)."""
    fields = expr.split()
    if len(fields) != 5:
        raise ConfigError(f"timetable {expr!r} must have five fields: minute hour day month weekday")
    if fields[2] != "*" and fields[4] != "*":
        raise ConfigError(f"timetable {expr!r}: give a day of the month or a weekday, not both "
                          "(cron would run on either; write two sources' timetables instead)")
    try:
        return CronTrigger(minute=fields[0], hour=fields[1], day=fields[2], month=fields[3],
                           day_of_week=_weekdays(fields[4]), timezone=_zone(timezone), jitter=jitter_seconds or None)
    except ValueError as error:
        raise ConfigError(f"timetable {expr!r}: {error}") from error


def _weekdays(field: str) -> str:
    """A crontab weekday field (0-7 or names, ranges, steps; 0 and 7 are Sunday) as APScheduler's day names.

    APScheduler 3 counts from Monday = 0, so numbers cannot be passed through.
    """
    if field == "*":
        return field
    days: set[int] = set()
    for part in field.lower().split(","):
        span, _, step = part.partition("/")
        if span == "*":
            first, last = 0, 6
        else:
            first_text, _, last_text = span.partition("-")
            first = _weekday(first_text, field)
            last = _weekday(last_text, field) if last_text else (6 if step else first)
        if (step and not step.isdigit()) or step == "0":
            raise ConfigError(f"weekday step {step!r} in {field!r} is not a whole number above 0")
        if first > last:
            raise ConfigError(f"weekday range {span!r} in {field!r} runs backwards")
        days.update(day % 7 for day in range(first, last + 1, int(step or 1)))
    return ",".join(_WEEKDAYS[day] for day in sorted(days))


def _weekday(text: str, field: str) -> int:
    if text in _WEEKDAYS:
        return _WEEKDAYS.index(text)
    if text.isdigit() and int(text) <= 7:
        return int(text)  # 7 is Sunday too; taken modulo 7 once the range is expanded
    raise ConfigError(f"weekday {text!r} in {field!r} is not 0-7 or sun-sat")


def default_timetable(key: str, config: ScheduleConfig) -> str:
    """A nightly crontab line inside the window, at a minute of the source's own (stable across restarts)."""
    start, end = config.window
    span = (end.hour * 60 + end.minute) - (start.hour * 60 + start.minute) - config.jitter_minutes
    minute = start.hour * 60 + start.minute + zlib.crc32(key.encode()) % max(span, 1)
    return f"{minute % 60} {minute // 60} * * *"


def source_timetable(source: SourceConfig, config: ScheduleConfig) -> str | None:
    """The source's crontab line: the config file's, else the registry's, else the default; None when off."""
    expr = config.sources.get(source.key) or source.schedule or default_timetable(source.key, config)
    return None if expr.strip().lower() == "off" else expr


@dataclass(frozen=True)
class PlannedJob:
    key: str
    timetable: str | None
    next_run: dt.datetime | None
    state: str  # "stored", "stored (changes at next start)", "not stored yet", "off", "stale"

    def record(self) -> dict[str, str | None]:
        """As `zwgk schedule list` prints it: the next run with its UTC offset."""
        return {"source": self.key, "timetable": self.timetable,
                "next_run": self.next_run.strftime("%Y-%m-%dT%H:%M:%S%z") if self.next_run else None,
                "state": self.state}


class Harvester:
    """The scheduler of one archive: its jobs, its crawls and its clean stop."""

    def __init__(self, db_url: str | None = None, sources_file: str | None = None,
                 config: ScheduleConfig | None = None, crawl_settings: Sequence[str] = (),
                 scheduler_class: type[BaseScheduler] = BlockingScheduler,
                 alert_settings: AlertSettings | None = None, redis_url: str | None = None) -> None:
        self.crawl_settings = parse_overrides(crawl_settings)
        self.config = config or ScheduleConfig()
        # In a cluster each job starts a crawl that the workers (`zwgk worker`) share through this Redis.
        self.redis_url = redis_url
        self.sources_file = sources_file
        self.registry = load_sources(sources_file)
        for key in self.config.sources:
            if key not in self.registry:
                raise ConfigError(f"[schedule.sources] names unknown source {key!r}"
                                  f" (sources: {', '.join(self.registry)})")
        self.archive: Archive = open_archive(db_url)
        self.alerts = Alerts(self.archive, alert_settings)
        self.db_url = self.archive.engine.url.render_as_string(hide_password=False)
        self.triggers = {key: self._trigger(source) for key, source in self.registry.items()}
        self.scheduler = self._build(scheduler_class)
        self.stopping = threading.Event()
        self._children: dict[subprocess.Popen, bool] = {}  # running crawls: sent SIGTERM yet?
        self._children_lock = threading.Lock()

    def _trigger(self, source: SourceConfig) -> CronTrigger | None:
        expr = source_timetable(source, self.config)
        if expr is None:
            return None
        try:
            return crontab_trigger(expr, self.config.timezone, self.config.jitter_minutes * 60)
        except ConfigError as error:
            raise ConfigError(f"source {source.key}: {error}") from error

    def _build(self, scheduler_class: type[BaseScheduler]) -> BaseScheduler:
        return scheduler_class(
            jobstores={"default": SQLAlchemyJobStore(engine=self.archive.engine)},
            executors={"default": ThreadPoolExecutor(self.config.max_parallel)},
            job_defaults={"coalesce": True, "misfire_grace_time": None, "max_instances": 1},
            timezone=_zone(self.config.timezone),
        )

    # The timetable

    def sync_jobs(self, _event: object = None) -> None:
        """Make the stored jobs match the timetable: one job per source, with a fixed id.

        A job whose trigger is unchanged is left alone, so a run missed while the
        scheduler was down keeps its due time and runs once now.
        """
        stored = {job.id: job for job in self.scheduler.get_jobs()}
        for key, trigger in self.triggers.items():
            job_id = JOB_PREFIX + key
            job = stored.pop(job_id, None)
            if trigger is None:
                if job is not None:
                    job.remove()
                continue
            if job is None or _trigger_key(job.trigger) != _trigger_key(trigger):
                self.scheduler.add_job(crawl_job, trigger, args=[key], id=job_id, name=f"crawl {key}",
                                       replace_existing=True)
        for job in stored.values():
            if job.id.startswith(JOB_PREFIX):
                logger.info("removing the job of %s: the source is no longer in the registry", job.id[len(JOB_PREFIX):])
                job.remove()

    def planned_jobs(self, now: dt.datetime | None = None) -> list[PlannedJob]:
        """Each source's job as stored, or as the next start will store it."""
        now = now or dt.datetime.now(_zone(self.config.timezone))
        probe = self._build(BackgroundScheduler)  # a BlockingScheduler would block in start()
        probe.start(paused=True)
        try:
            stored = {job.id: job for job in probe.get_jobs()}
        finally:
            probe.shutdown(wait=False)
        planned = []
        for key, source in self.registry.items():
            trigger, job = self.triggers[key], stored.pop(JOB_PREFIX + key, None)
            expr = source_timetable(source, self.config)
            if trigger is None:
                planned.append(PlannedJob(key, None, None, "off"))
            elif job is not None and _trigger_key(job.trigger) == _trigger_key(trigger):
                planned.append(PlannedJob(key, expr, job.next_run_time, "stored"))
            else:
                planned.append(PlannedJob(key, expr, trigger.get_next_fire_time(None, now),
                                          "not stored yet" if job is None else "stored (changes at next start)"))
        planned += [PlannedJob(job.id[len(JOB_PREFIX):], None, job.next_run_time, "stale")
                    for job in stored.values() if job.id.startswith(JOB_PREFIX)]
        return planned

    # Running

    def start(self) -> None:
        """Start scheduling (blocks with a BlockingScheduler)."""
        global _active
        _active = self
        self.scheduler.add_listener(self.sync_jobs, EVENT_SCHEDULER_STARTED)
        self.scheduler.start()

    def serve(self, on_standby: Callable[[str], None] = lambda message: None) -> None:
        """Be this archive's scheduler until SIGTERM or Ctrl-C: stand by while another one is active."""
        lease = Lease(self.archive, "scheduler", self.config.lease_seconds, on_lost=self.stop)
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._on_signal)
        told = False
        while not self.stopping.is_set():
            try:
                lease.acquire()
            except LeaseTaken as error:
                if not told:
                    on_standby(f"another scheduler is active ({error.holder}); standing by to take over")
                    told = True
                self.stopping.wait(self.config.lease_seconds / 2)
                continue
            try:
                logger.info("scheduling %d sources", sum(t is not None for t in self.triggers.values()))
                self.start()
                self._wait_for_crawls()
            finally:
                lease.release()
            return

    def _on_signal(self, signum: int, _frame: object) -> None:
        """Only note the signal here: stopping takes locks a signal may have interrupted."""
        if not self.stopping.is_set():
            threading.Thread(target=self.stop, args=(signal.Signals(signum).name,), name="stop").start()

    def stop(self, reason: str = "lease lost") -> None:
        """Stop firing jobs and ask every running crawl, once, to stop cleanly."""
        with self._children_lock:
            if self.stopping.is_set():
                return
            logger.warning("%s: stopping after the running crawls finish the notices in hand", reason)
            self.stopping.set()
            for child in self._children:
                self._ask_to_stop(child)
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)

    def _ask_to_stop(self, child: subprocess.Popen) -> None:
        """SIGTERM once: a second one makes Scrapy stop uncleanly. Call with _children_lock held."""
        if not self._children[child] and child.poll() is None:
            child.send_signal(signal.SIGTERM)
            self._children[child] = True

    def _wait_for_crawls(self) -> None:
        with self._children_lock:
            children = list(self._children)
        for child in children:
            _finish(child, grace=120)

    def crawl(self, key: str) -> int | None:
        """Run `zwgk crawl KEY` in a new process within the time limit; its exit code (None if killed)."""
        limit = self.config.time_limit_minutes * 60
        command = [sys.executable, "-m", "crawler.cli", "crawl", key, "-s", f"CLOSESPIDER_TIMEOUT={limit}"]
        if self.sources_file:
            command += ["--sources", str(self.sources_file)]
        command += as_arguments(self.crawl_settings)
        if self.redis_url:
            command.append("--distributed")
        started = dt.datetime.now()
        with self._children_lock:  # decided and registered together: stop() sees every child
            if self.stopping.is_set():
                return None
            # A session of its own: a terminal's Ctrl-C or a second signal reaches the crawl only through us.
            # The database URL goes by the environment, not the command line that `ps` shows.
            env = {**os.environ, "ZWGK_DB": self.db_url, **({"ZWGK_REDIS": self.redis_url} if self.redis_url else {})}
            child = subprocess.Popen(command, start_new_session=True, env=env)
            self._children[child] = False
        try:
            code: int | None
            try:
                code = child.wait(timeout=limit + 120)
            except subprocess.TimeoutExpired:
                logger.error("%s: still crawling after %d minutes; stopping it", key, limit // 60 + 2)
                with self._children_lock:
                    self._ask_to_stop(child)
                code = _finish(child, grace=60)
        finally:
            with self._children_lock:
                self._children.pop(child, None)
        took = (dt.datetime.now() - started).total_seconds()
        logger.info("%s: crawl ended with exit code %s after %.0f s", key, code, took)
        if not self.stopping.is_set():
            self.send_alerts()
        return code

    def send_alerts(self) -> None:
        """Alerts follow every crawl: what it archived is matched and sent; failures wait for the next run."""
        try:
            report = self.alerts.run()
        except Exception:  # a broken alert must never stop the harvest
            logger.exception("alerts failed")
            return
        if report.skipped:
            logger.info("alerts: %s", report.skipped)
            return
        logger.info("alerts: planned %d, sent %d, failed %d", report.planned, report.sent, report.failed)
        for error in report.errors:
            logger.warning("alert not sent: %s", error)


def _finish(child: subprocess.Popen, grace: float) -> int | None:
    """Wait ``grace`` seconds for a crawl asked to stop, then kill it."""
    try:
        return child.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()
        return None


def _trigger_key(trigger: object) -> str:
    return f"{trigger!r} {getattr(trigger, 'timezone', '')}"


_active: Harvester | None = None


def crawl_job(source_key: str) -> None:
    """The stored jobs' target (referenced by name, so it must stay here): crawl one source."""
    if _active is None:
        raise RuntimeError("crawl_job runs only inside a started Harvester")
    _active.crawl(source_key)


def harvester_from_config(db_url: str | None = None, sources_file: str | None = None,
                          config_file: str | None = None, crawl_settings: Sequence[str] = (),
                          redis_url: str | None = None) -> Harvester:
    """The scheduler of the archive at ``db_url``, with the [schedule] and alert settings of the config file."""
    config = load_schedule_config(config_file)
    return Harvester(db_url, sources_file, config, crawl_settings, alert_settings=load_alert_settings(config_file),
                     redis_url=redis_url)


def run_scheduler(db_url: str | None = None, sources_file: str | None = None, config_file: str | None = None,
                  crawl_settings: Sequence[str] = (), redis_url: str | None = None,
                  on_standby: Callable[[str], None] = lambda message: None) -> None:
    """Schedule the archive's crawls until SIGTERM or Ctrl-C, logging to stderr (`zwgk schedule run`).

    ``redis_url`` makes each crawl a shared one that the workers of that Redis join.
    """
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", stream=sys.stderr)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    harvester_from_config(db_url, sources_file, config_file, crawl_settings, redis_url).serve(on_standby)


def main(argv: list[str] | None = None) -> None:
    """`python scheduler.py [options]` is `zwgk schedule run [options]`: the same options, messages and exits.

    The command is run in place of this process (same process id, so signals reach it), as each crawl is.
    """
    arguments = sys.argv[1:] if argv is None else argv
    os.execv(sys.executable, [sys.executable, "-m", "crawler.cli", "schedule", "run", *arguments])


if __name__ == "__main__":
    main()
