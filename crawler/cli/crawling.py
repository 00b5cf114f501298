"""Commands that fetch or read pages: crawl, worker, reextract, extract."""

from __future__ import annotations

import sys
from typing import IO

import click

from .common import (
    REDIS_HELP,
    check_redis,
    choose_sources,
    db_option,
    echo,
    echo_json,
    load_registry,
    open_archive_or_fail,
    settings_option,
    shared_redis,
    sources_option,
    usage_errors,
)


@click.command()
@click.argument("sources", nargs=-1, metavar="[SOURCE]...")
@click.option("--all", "all_sources", is_flag=True, help="Crawl every source in the registry.")
@click.option("--full", is_flag=True, help="Walk every list page instead of stopping at known notices.")
@click.option("--revisit", is_flag=True, help="Re-check every known notice (conditional requests; 304 = unchanged).")
@settings_option("Set a Scrapy setting for this run, as `scrapy crawl -s` does (repeatable).")
@sources_option
@click.option("-v", "--verbose", is_flag=True, help="Show Scrapy's log (INFO) while crawling.")
@click.option("--distributed", is_flag=True,
              help="Share each source's crawl with every other worker crawling it through the same Redis: "
                   "join the crawl under way (or start it) and work until it is finished.")
@click.option("--redis", "redis_url", envvar="ZWGK_REDIS", metavar="URL", help=REDIS_HELP)
@db_option
def crawl(sources: tuple[str, ...], all_sources: bool, full: bool, revisit: bool, settings: tuple[str, ...],
          sources_file: str | None, verbose: bool, distributed: bool, redis_url: str | None,
          db_url: str | None) -> None:
    """Crawl SOURCEs (registry keys, see `zwgk sources`) into the archive.

    By default each source's list pages are walked newest first, stopping at the
    first page whose notices are all archived already. Prints one line per
    source; exits 0 when every source completed, 1 when any failed.

    \b
    Examples:
      zwgk crawl shanghai
      zwgk crawl --all --full
      zwgk crawl shanghai -s DOWNLOAD_DELAY=3 -s CONCURRENT_REQUESTS_PER_DOMAIN=1
      zwgk crawl --all --distributed --redis redis://10.0.0.5/0   (on every worker machine)
    """
    from crawler.crawl import crawl_settings, run_crawls
    from crawler.overrides import parse_overrides
    from spiders.loader import spider_class

    chosen = choose_sources(load_registry(sources_file), sources, all_sources)
    with usage_errors(KeyError, ValueError):
        for source in chosen:
            spider_class(source.key, source.platform)  # a platform zwgk lacks is the registry's mistake
        overrides = parse_overrides(settings)
        db_url = db_url or overrides.get("ZWGK_DB")
        redis_url = shared_redis(distributed, redis_url)
        run_settings = crawl_settings(db_url, sources_file, overrides, "INFO" if verbose else "WARNING", redis_url)
    open_archive_or_fail(db_url).close()
    if redis_url:
        check_redis(redis_url)
    click.echo(f"crawling {', '.join(source.key for source in chosen)} …", err=True)
    summaries = run_crawls(chosen, run_settings, full=full, revisit=revisit)
    click.echo(f"{'source':<12} {'status':<11} {'pages':>6} {'new':>5} {'changed':>7} {'unchanged':>9} {'errors':>6}")
    for summary in summaries:
        click.echo(f"{summary.source:<12} {summary.status:<11} {summary.pages:>6} {summary.new:>5} "
                   f"{summary.changed:>7} {summary.unchanged:>9} {summary.errors:>6}")
        if summary.message and (not summary.ok or summary.errors):
            echo(f"  {summary.source}: {summary.message}", err=True)
        if summary.problem:
            echo(f"  {summary.source}: looks broken: {summary.problem}", err=True)
    if not all(summary.ok for summary in summaries):
        sys.exit(1)


@click.command()
@click.option("--redis", "redis_url", envvar="ZWGK_REDIS", metavar="URL", required=True, help=REDIS_HELP)
@click.option("--poll", "poll_seconds", type=click.FloatRange(0.5, 3600), default=5.0, show_default=True,
              help="Seconds between looks for newly started crawls.")
@settings_option("Set a Scrapy setting for every crawl this worker joins (repeatable).")
@sources_option
@click.option("-v", "--verbose", is_flag=True, help="Show Scrapy's log (INFO) while crawling.")
@db_option
def worker(redis_url: str, poll_seconds: float, settings: tuple[str, ...], sources_file: str | None,
           verbose: bool, db_url: str | None) -> None:
    """Work on the shared crawls that others start, until SIGTERM or Ctrl-C.

    A crawl is started by `zwgk crawl --distributed SOURCE` or by a scheduler
    run with `zwgk schedule run --distributed`; every worker of the same Redis
    and archive joins it, and they split its requests. A worker that dies loses
    nothing: what it held goes back to the queue after ZWGK_WORKER_TIMEOUT
    (30 s). SIGTERM lets the requests in hand finish, then exits 0.

    \b
    Example (on each crawl machine):
      ZWGK_DB=postgresql+psycopg://zwgk@db/zwgk zwgk worker --redis redis://10.0.0.5/0
    """
    from crawler.crawl import crawl_settings, work_on_shared_crawls
    from crawler.overrides import parse_overrides

    registry = load_registry(sources_file)
    with usage_errors(ValueError):
        run_settings = crawl_settings(db_url, sources_file, parse_overrides(settings),
                                      "INFO" if verbose else "WARNING", redis_url)
    open_archive_or_fail(run_settings.get("ZWGK_DB")).close()
    check_redis(redis_url)
    click.echo(f"waiting for shared crawls at {redis_url} (Ctrl-C stops) …", err=True)
    joined = work_on_shared_crawls(registry, run_settings, poll_seconds, report=lambda line: echo(line, err=True))
    click.echo(f"worker stopped after taking part in {joined} crawls", err=True)


@click.command()
@click.argument("sources", nargs=-1, metavar="[SOURCE]...")
@sources_option
@db_option
def reextract(sources: tuple[str, ...], sources_file: str | None, db_url: str | None) -> None:
    """Read archived notices again from their stored bytes (all sources, or SOURCEs).

    For after an upgrade of zwgk's extraction or a newly installed converter:
    fields and attachment texts of each notice's latest version are updated in
    place and the extractor version recorded. Nothing is fetched, and an extractor
    change alone is not reported as a change of the notice.
    """
    from crawler.extract import EXTRACTOR_VERSION
    from crawler.reextract import reextract as reextract_archive

    registry = load_registry(sources_file)
    choose_sources(registry, sources, none_is_every=True)
    archive = open_archive_or_fail(db_url)

    def progress(done: int) -> None:
        if done % 100 == 0:
            click.echo(f"… {done} notices", err=True)

    summary = reextract_archive(archive, registry, sources, progress)
    click.echo(f"re-extracted {summary.notices} notices with extractor {EXTRACTOR_VERSION}: "
               f"{summary.updated} updated, {summary.notices - summary.updated} unchanged")


@click.command()
@click.argument("file", type=click.File("rb"))
@click.option("--url", required=True, help="The page's URL (links and URL dates are read against it).")
@click.option("--source", "source_key", help="Use this source's body and title selectors.")
@sources_option
def extract(file: IO[bytes], url: str, source_key: str | None, sources_file: str | None) -> None:
    """Extract a saved page (FILE, or - for stdin) and print its fields as JSON.

    Nothing is fetched or archived: this shows what zwgk reads from a page.
    """
    from crawler.harvest import HarvestError, Page, Selectors, harvest_now, not_fetched

    source = choose_sources(load_registry(sources_file), (source_key,))[0] if source_key else None
    try:
        record = harvest_now(Page(url, file.read()), Selectors.of(source), not_fetched)
    except HarvestError as error:
        raise click.ClickException(f"{url}: {error}") from error
    echo_json({"source": source_key, **record.fields, "content_hash": record.version_hash})


COMMANDS = (crawl, worker, reextract, extract)
