"""The `zwgk` command: a thin layer over the archive, the extractor and the crawler."""

from __future__ import annotations

import functools
import json
import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import click

from crawler import __version__

DB_HELP = "Archive database URL (SQLAlchemy), else $ZWGK_DB, else sqlite:///zwgk.sqlite3."
SOURCES_HELP = "Sources registry file (TOML), else $ZWGK_SOURCES, else the bundled one."


def db_option(command):
    return click.option("--db", "db_url", metavar="URL", help=DB_HELP)(command)


@contextmanager
def archive_errors() -> Iterator[None]:
    """The one place where the archive's errors become exits: one line, and the error's exit code
    (2 for a bad URL, 1 for the rest; a database that stops answering mid-command is the rest)."""
    from sqlalchemy.exc import OperationalError

    from archive import ArchiveError
    from archive.db import first_line

    try:
        yield
    except ArchiveError as error:
        failure = click.ClickException(str(error))
        failure.exit_code = error.exit_code
        raise failure from error
    except OperationalError as error:
        raise click.ClickException(f"cannot open the archive: {first_line(error)}") from error


def open_archive_or_fail(db_url: str | None, read_only: bool = False):
    """The archive at ``db_url``; ``read_only`` for commands that only read (they never create one)."""
    from archive import open_archive

    with archive_errors():
        return open_archive(db_url, read_only=read_only)


def _setting_overrides(settings: tuple[str, ...]) -> dict[str, str]:
    overrides = {}
    for item in settings:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise click.UsageError(f"-s takes NAME=VALUE, got {item!r}")
        overrides[name] = value
    return overrides


def check_redis(url: str) -> None:
    """Fail in one line when the shared Redis does not answer."""
    from redis.exceptions import RedisError

    from crawler.distributed import connect

    try:
        connect(url).close()
    except (RedisError, ValueError) as error:
        raise click.ClickException(f"cannot reach the shared Redis at {url}: {error}") from error


def load_registry(sources_file: str | None):
    from spiders.registry import RegistryError, load_sources

    try:
        return load_sources(sources_file)
    except RegistryError as error:
        raise click.UsageError(str(error)) from error


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="zwgk")
def cli() -> None:
    """zwgk harvests the notices Chinese transport bureaus publish into a versioned archive.

    \b
    Typical use:
      zwgk crawl --all              harvest every source into ./zwgk.sqlite3
      zwgk export --format csv -o notices.csv
      zwgk show https://jtw.sh.gov.cn/zxzfxx/20240516/….html
      zwgk extract saved-page.html --url https://…   (no archive needed)
    """


@cli.command()
@click.argument("sources", nargs=-1, metavar="[SOURCE]...")
@click.option("--all", "all_sources", is_flag=True, help="Crawl every source in the registry.")
@click.option("--full", is_flag=True, help="Walk every list page instead of stopping at known notices.")
@click.option("--revisit", is_flag=True, help="Re-check every known notice (conditional requests; 304 = unchanged).")
@click.option("-s", "--set", "settings", multiple=True, metavar="NAME=VALUE",
              help="Set a Scrapy setting for this run, as `scrapy crawl -s` does (repeatable).")
@click.option("--sources", "sources_file", metavar="FILE", help=SOURCES_HELP)
@click.option("-v", "--verbose", is_flag=True, help="Show Scrapy's log (INFO) while crawling.")
@click.option("--distributed", is_flag=True,
              help="Share each source's crawl with every other worker crawling it through the same Redis: "
                   "join the crawl under way (or start it) and work until it is finished.")
@click.option("--redis", "redis_url", envvar="ZWGK_REDIS", metavar="URL",
              help="The Redis the workers share, e.g. redis://10.0.0.5:6379/0 (default: $ZWGK_REDIS).")
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

    registry = load_registry(sources_file)
    if all_sources and sources:
        raise click.UsageError("name sources or give --all, not both")
    if not all_sources and not sources:
        raise click.UsageError(f"name at least one source, or --all (sources: {', '.join(registry)})")
    unknown = [key for key in sources if key not in registry]
    if unknown:
        raise click.UsageError(f"unknown source {', '.join(unknown)} (sources: {', '.join(registry)})")
    overrides = _setting_overrides(settings)
    db_url = db_url or overrides.get("ZWGK_DB")
    chosen = [registry[key] for key in (registry if all_sources else dict.fromkeys(sources))]
    from spiders.loader import PLATFORMS

    for source in chosen:
        if source.platform not in PLATFORMS:
            raise click.UsageError(f"source {source.key} names platform {source.platform!r}; "
                                   f"known platforms: {', '.join(sorted(PLATFORMS))}")
    if distributed and not redis_url:
        raise click.UsageError("--distributed needs the shared Redis: --redis URL or ZWGK_REDIS")
    try:
        run_settings = crawl_settings(db_url, sources_file, overrides, "INFO" if verbose else "WARNING",
                                      redis_url if distributed else None)
    except ValueError as error:
        raise click.UsageError(str(error)) from error
    open_archive_or_fail(db_url).close()
    if distributed:
        check_redis(redis_url)
    click.echo(f"crawling {', '.join(source.key for source in chosen)} …", err=True)
    summaries = run_crawls(chosen, run_settings, full=full, revisit=revisit)
    click.echo(f"{'source':<12} {'status':<11} {'pages':>6} {'new':>5} {'changed':>7} {'unchanged':>9} {'errors':>6}")
    for summary in summaries:
        click.echo(f"{summary.source:<12} {summary.status:<11} {summary.pages:>6} {summary.new:>5} "
                   f"{summary.changed:>7} {summary.unchanged:>9} {summary.errors:>6}")
        if summary.message and (not summary.ok or summary.errors):
            click.echo(f"  {summary.source}: {summary.message}", err=True)
        if summary.problem:
            click.echo(f"  {summary.source}: looks broken: {summary.problem}", err=True)
    if not all(summary.ok for summary in summaries):
        sys.exit(1)


@cli.command()
@click.option("--redis", "redis_url", envvar="ZWGK_REDIS", metavar="URL", required=True,
              help="The Redis the workers share, e.g. redis://10.0.0.5:6379/0 (default: $ZWGK_REDIS).")
@click.option("--poll", "poll_seconds", type=click.FloatRange(0.5, 3600), default=5.0, show_default=True,
              help="Seconds between looks for newly started crawls.")
@click.option("-s", "--set", "settings", multiple=True, metavar="NAME=VALUE",
              help="Set a Scrapy setting for every crawl this worker joins (repeatable).")
@click.option("--sources", "sources_file", metavar="FILE", help=SOURCES_HELP)
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

    registry = load_registry(sources_file)
    try:
        run_settings = crawl_settings(db_url, sources_file, _setting_overrides(settings),
                                      "INFO" if verbose else "WARNING", redis_url)
    except ValueError as error:
        raise click.UsageError(str(error)) from error
    open_archive_or_fail(run_settings.get("ZWGK_DB")).close()
    check_redis(redis_url)
    click.echo(f"waiting for shared crawls at {redis_url} (Ctrl-C stops) …", err=True)
    joined = work_on_shared_crawls(registry, run_settings, poll_seconds, report=lambda line: click.echo(line, err=True))
    click.echo(f"worker stopped after taking part in {joined} crawls", err=True)


FILTERS = (("source", "Only these sources (comma-separated keys)."),
           ("doc_type", "Only this 文种, e.g. 通知, 办法, 批复."),
           ("issuer", "Only notices whose issuer (发布机构) contains this."),
           ("docno", "Only this 文号 prefix, e.g. 沪交办."),
           ("year", "Only notices published in this year."),
           ("from", "Published on or after this date (YYYY[-MM[-DD]])."),
           ("to", "Published on or before this date (YYYY[-MM[-DD]])."))


def filter_options(command):
    """Add the search filters as options (they can also be written in a query as name:value);
    the command receives them as one ``filters`` dict."""
    @functools.wraps(command)
    def run(**kwargs):
        return command(filters={name: kwargs.pop(f"filter_{name}") for name, _ in FILTERS}, **kwargs)

    for name, help_text in reversed(FILTERS):
        run = click.option("--" + name.replace("_", "-"), f"filter_{name}",
                           metavar="DATE" if name in ("from", "to") else "TEXT", help=help_text)(run)
    return run


def parse_search(query: str, filters: dict[str, str | None]):
    from archive.search import QueryError, parse_query

    try:
        return parse_query(query, **filters)
    except QueryError as error:
        raise click.UsageError(str(error)) from error


@cli.command(context_settings={"ignore_unknown_options": True})  # lets `-收费` through as a NOT term
@click.argument("query", nargs=-1, required=True)
@filter_options
@click.option("--sort", type=click.Choice(("relevance", "date", "oldest")), default="relevance", show_default=True,
              help="Order of the hits: best match first, newest first, or oldest first.")
@click.option("--all-versions", is_flag=True, help="Search every version, not only each notice's latest.")
@click.option("-n", "--limit", type=click.IntRange(1, 10_000), default=20, show_default=True,
              help="How many hits to print.")
@click.option("--offset", type=click.IntRange(0), default=0, help="Skip this many hits (paging).")
@click.option("--json", "as_json", is_flag=True, help="Print hits, total and facets as JSON.")
@db_option
def search(query: tuple[str, ...], filters: dict[str, str | None], sort: str, all_versions: bool, limit: int,
           offset: int, as_json: bool, db_url: str | None) -> None:
    """Search the archive in Chinese (simplified and traditional find each other).

    \b
    Any string of one or more characters finds exactly the notices holding it:
      zwgk search 公路                       a 2-character word
      zwgk search 公路 规划                  both (AND)
      zwgk search '港口 OR 航道' -收费        either, without 收费
      zwgk search '"工作要点"' --docno 沪交办 --year 2024
      zwgk search 通知 source:shanghai doc_type:通知 from:2024-01 to:2024-06
    Filters can be written in the query (source:, doc_type:, issuer:, docno:,
    year:, from:, to:) or given as options; they are the same language alert
    rules use. Title, 文号, body and attachment texts are searched.
    """
    parsed = parse_search(" ".join(query), filters)
    archive = open_archive_or_fail(db_url, read_only=True)
    with archive_errors():
        result = archive.search(parsed, all_versions=all_versions, sort=sort, limit=limit, offset=offset)
    if as_json:
        click.echo(json.dumps({"total": result.total, "hits": [hit.__dict__ for hit in result.hits],
                               "facets": result.facets}, ensure_ascii=False, indent=2, default=list))
        return
    colour = sys.stdout.isatty()
    for hit in result.hits:
        version = f" v{hit.version}/{hit.versions}" if all_versions or hit.versions > 1 else ""
        click.echo(click.style(f"{hit.title or '(no title)'}", bold=True) if colour else hit.title or "(no title)")
        click.echo(f"  {hit.published_at or '—'}  {hit.source}  {hit.doc_number or ''}  {hit.issuer or ''}{version}")
        click.echo(f"  {hit.url}  (id {hit.document_id})")
        click.echo(f"  {_highlight(hit, colour)}")
        click.echo("")
    shown = f"{offset + 1}–{offset + len(result.hits)} of " if result.hits else ""
    click.echo(f"{shown}{result.total} {'versions' if all_versions else 'notices'}", err=True)
    for name, counts in result.facets.items():
        if counts:
            click.echo(f"  {name}: " + ", ".join(f"{value} ({n})" for value, n in counts[:8]), err=True)


def _highlight(hit, colour: bool) -> str:
    """Mark each match: bold on a terminal, 【…】 elsewhere."""
    return "".join((click.style(text, bold=True, fg="red") if colour else f"【{text}】") if marked else text
                   for text, marked in hit.snippet_pieces()).replace("\n", " ")


@cli.command()
@click.option("--format", "fmt", type=click.Choice(("jsonl", "csv", "parquet")), default="jsonl", show_default=True,
              help="jsonl: one JSON object a line; csv: attachments as a JSON list in one column; "
                   "parquet: typed columns, attachments as a list of structs (needs -o).")
@click.option("--all-versions", is_flag=True, help="One record per version instead of per document.")
@click.option("-q", "--query", default="", help="Only notices matching this search (see `zwgk search --help`).")
@filter_options
@click.option("--bom", is_flag=True, help="CSV: start with a byte-order mark, so Excel reads the Chinese text.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True), help="File to write (default: stdout).")
@db_option
def export(fmt: str, all_versions: bool, query: str, filters: dict[str, str | None], bom: bool, output: str | None,
           db_url: str | None) -> None:
    """Export the archive: each notice's latest version, or every version.

    Fields: source, url, title, doc_number, index_number, issuer, written_date,
    published_at, disclosure, doc_type, body, body_original, attachments,
    version, versions, first_seen, last_changed, content_hash, and more.
    Dates are ISO 8601 in China time; absent values are null (empty in CSV).
    Records are streamed, so memory stays flat for any size of archive.

    \b
      zwgk export --format csv --bom -o notices.csv
      zwgk export --format parquet --all-versions -o versions.parquet
      zwgk export -q '工作要点' --source shanghai --year 2024 -o plans.jsonl
    """
    from archive.output.export import csv_lines, jsonl_lines, write_lines, write_parquet

    if fmt == "parquet" and not output:
        raise click.UsageError("--format parquet writes a file: give -o FILE")
    if bom and fmt != "csv":
        raise click.UsageError("--bom is for --format csv")
    search = parse_search(query, filters) if query or any(filters.values()) else None
    archive = open_archive_or_fail(db_url, read_only=True)
    records = archive.iter_records(all_versions=all_versions, search=search)
    try:
        with archive_errors(), _output(output, binary=fmt == "parquet") as stream:
            if fmt == "parquet":
                count = write_parquet(records, stream)
            elif fmt == "csv":
                count = write_lines(csv_lines(records, bom), stream, header=True)
            else:
                count = write_lines(jsonl_lines(records), stream)
    except BrokenPipeError:  # `zwgk export | head`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return
    except OSError as error:
        raise click.ClickException(f"cannot write {output}: {error.strerror or error}") from error
    if output:
        click.echo(f"wrote {count} records to {output}", err=True)


@contextmanager
def _output(path: str | None, binary: bool = False) -> Iterator[IO]:
    """stdout, or a file written whole: a temporary file renamed into place, never a half-written one."""
    if path is None:
        yield sys.stdout
        return
    target = Path(path)
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    try:
        with (os.fdopen(handle, "wb") if binary else os.fdopen(handle, "w", encoding="utf-8", newline="")) as stream:
            yield stream
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)  # mkstemp's 0600 is not what the user's umask asks for
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


@cli.command()
@click.argument("document")
@click.option("--version", "version_number", type=int, help="Show this version instead of the latest.")
@click.option("--json", "as_json", is_flag=True, help="Print the record as JSON.")
@db_option
def show(document: str, version_number: int | None, as_json: bool, db_url: str | None) -> None:
    """Show a notice (by URL or document id): its fields, its text and its versions."""
    from archive.records import china_time, document_record

    found = _find_or_fail(open_archive_or_fail(db_url, read_only=True), document)
    with archive_errors():
        record = document_record(found, version_number)
    if as_json:
        click.echo(json.dumps(record, ensure_ascii=False, indent=2))
        return
    for name in ("title", "source", "url", "doc_number", "index_number", "issuer", "written_date",
                 "published_at", "disclosure", "doc_type", "first_seen", "last_changed"):
        click.echo(f"{name:>13}: {record[name] if record[name] is not None else '—'}")
    click.echo(f"{'version':>13}: {record['version']} of {found.version_count}")
    click.echo("")
    click.echo(record["body"])
    # Many notices are a short page around an attached file: its text is the notice text.
    for number, attachment in enumerate(record["attachments"], 1):
        click.echo(f"\n── 附件 {number}: {attachment['name']} <{attachment['url']}>")
        click.echo(attachment["text"] if attachment["text"] else f"({attachment['error'] or 'no text'})")
    click.echo("")
    click.echo("versions:")
    for version in found.versions:
        click.echo(f"  {version.number:>3}  {china_time(version.seen_at)}  {version.content_hash[:12]}"
                   f"  {version.title or ''}")


def _find_or_fail(archive, document: str):
    with archive_errors():
        found = archive.find_document(document)
    if found is None:
        raise click.ClickException(f"no archived notice {document!r} (give its URL or document id)")
    return found


@cli.command()
@click.argument("document")
@click.option("--json", "as_json", is_flag=True, help="Print the versions and events as JSON.")
@db_option
def history(document: str, as_json: bool, db_url: str | None) -> None:
    """Every version of a notice (by URL or document id): when it was seen, and what changed.

    Each line names the fields that differ from the version before and how many
    lines of text were added and removed; `zwgk diff` shows the changes
    themselves. Events (gone, restored) are listed with their time.
    """
    from archive.output.history import notice_history

    archive = open_archive_or_fail(db_url, read_only=True)
    found = _find_or_fail(archive, document)
    with archive_errors():
        history = notice_history(found, archive.events(found.id))
    if as_json:
        click.echo(json.dumps(history, ensure_ascii=False, indent=2))
        return
    click.echo(f"{found.url}  (id {found.id}, {found.status}, {found.version_count} versions)")
    for row in history["versions"]:
        if row["lines_added"] is None:
            what = "first seen"
        else:
            fields = ", ".join(row["changed_fields"])
            what = f"+{row['lines_added']} −{row['lines_removed']} lines" + (f"; {fields}" if fields else "")
        click.echo(f"  v{row['version']:<3} {row['seen_at']}  {row['content_hash'][:12]}  {what}  {row['title'] or ''}")
    for event in history["events"]:
        if event["kind"] in ("gone", "restored"):
            click.echo(f"  {event['kind']:<7} {event['at']}")


@cli.command()
@click.argument("document")
@click.argument("versions", nargs=-1, type=int)
@click.option("-U", "--context", type=click.IntRange(0, 1000), default=2, show_default=True,
              help="Unchanged lines shown around each change.")
@click.option("--json", "as_json", is_flag=True, help="Print the changed fields and lines as JSON.")
@db_option
def diff(document: str, versions: tuple[int, ...], context: int, as_json: bool, db_url: str | None) -> None:
    """What changed in a notice between two versions (default: the last two).

    \b
      zwgk diff https://jtw.sh.gov.cn/…html         the latest change
      zwgk diff 12 1 3                              version 1 against version 3
    Changed fields first, then the text: '-' lines removed, '+' lines added, and
    within a changed line the characters removed [-…-] and added {+…+}.
    """
    from archive.output.diff import diff_versions

    found = _find_or_fail(open_archive_or_fail(db_url, read_only=True), document)
    if len(versions) not in (0, 2):
        raise click.UsageError("give two version numbers, or none for the last two")
    with archive_errors():
        change = diff_versions(found, *versions, context=context)
    old, new = change.old_number, change.new_number
    if as_json:
        click.echo(json.dumps({"old": old, "new": new,
                               "fields": [{"name": n, "old": a, "new": b} for n, a, b in change.fields],
                               "lines": [{"op": line.op, "text": line.text} for line in change.lines]},
                              ensure_ascii=False, indent=2))
        return
    colour = sys.stdout.isatty()
    click.echo(f"{found.url}: version {old} → {new}")
    if change.unchanged:
        click.echo("no difference")
    for name, before, after in change.fields:
        click.echo(f"{name}: {before if before is not None else '—'} → {after if after is not None else '—'}")
    for line in change.lines:
        click.echo(_diff_line(line, colour))


def _diff_line(line, colour: bool) -> str:
    if not line.parts:
        text = f"{line.op} {line.text}"
        return click.style(text, fg={"-": "red", "+": "green"}.get(line.op)) if colour and line.op != " " else text
    pieces = []
    for op, text in line.parts:
        if op == "=":
            pieces.append(text)
        elif colour:
            pieces.append(click.style(text, fg="red" if op == "-" else "green", bold=True, reverse=True))
        else:
            pieces.append(f"[-{text}-]" if op == "-" else f"{{+{text}+}}")
    return f"{line.op} " + "".join(pieces)


@cli.command()
@click.argument("file", type=click.File("rb"))
@click.option("--url", required=True, help="The page's URL (links and URL dates are read against it).")
@click.option("--source", "source_key", help="Use this source's body and title selectors.")
@click.option("--sources", "sources_file", metavar="FILE", help=SOURCES_HELP)
def extract(file: IO[bytes], url: str, source_key: str | None, sources_file: str | None) -> None:
    """Extract a saved page (FILE, or - for stdin) and print its fields as JSON.

    Nothing is fetched or archived: this shows what zwgk reads from a page.
    """
    from crawler.harvest import HarvestError, Page, Selectors, harvest_now, not_fetched

    source = None
    if source_key:
        registry = load_registry(sources_file)
        if source_key not in registry:
            raise click.UsageError(f"unknown source {source_key} (sources: {', '.join(registry)})")
        source = registry[source_key]
    try:
        record = harvest_now(Page(url, file.read()), Selectors.of(source), not_fetched)
    except HarvestError as error:
        raise click.ClickException(f"{url}: {error}") from error
    click.echo(json.dumps({"source": source_key, **record.fields, "content_hash": record.version_hash},
                          ensure_ascii=False, indent=2))


@cli.command()
@click.option("--sources", "sources_file", metavar="FILE", help=SOURCES_HELP)
@click.option("--json", "as_json", is_flag=True, help="Print the registry (with --health: the health) as JSON.")
@click.option("--health", is_flag=True, help="Show each source's last run, last success and failure streak.")
@db_option
def sources(sources_file: str | None, as_json: bool, health: bool, db_url: str | None) -> None:
    """List the sources zwgk knows: key, bureau, platform and columns.

    With --health, say how each source's crawls have gone: the last run and its
    status, the last healthy completed run, how many runs in a row failed or
    looked broken, and why (see `zwgk runs` for every run).
    """
    registry = load_registry(sources_file)
    if health:
        _print_health(list(registry), as_json, db_url)
        return
    if as_json:
        click.echo(json.dumps(
            {key: {"name": s.name, "host": s.host, "platform": s.platform, "level": s.level,
                   "region": s.region, "columns": list(s.columns)} for key, s in registry.items()},
            ensure_ascii=False, indent=2))
        return
    for source in registry.values():
        click.echo(f"{source.key:<12} {source.name}  [{source.platform}]  {source.host}")
        for column in source.columns:
            click.echo(f"{'':<12} {column}")


def _print_health(keys: list[str], as_json: bool, db_url: str | None) -> None:
    from archive.health import source_health
    from archive.records import china_time

    archive = open_archive_or_fail(db_url, read_only=True)
    with archive_errors():
        report = source_health(archive, keys)
    rows = [{"source": h.key, "last_run": china_time(h.last_run.started_at) if h.last_run else None,
             "last_status": h.last_run.status if h.last_run else None, "last_success": china_time(h.last_success),
             "failure_streak": h.failure_streak, "problem": h.problem} for h in report]
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    click.echo(f"{'source':<12} {'last run':<19} {'status':<11} {'last success':<19} {'streak':>6}  problem")
    for row in rows:
        click.echo(f"{row['source']:<12} {row['last_run'] or 'never':<19} {row['last_status'] or '—':<11} "
                   f"{row['last_success'] or 'never':<19} {row['failure_streak']:>6}  {row['problem'] or ''}")


@cli.command()
@click.argument("source", required=False)
@click.option("-n", "--limit", type=click.IntRange(1, 100_000), default=20, show_default=True,
              help="How many runs to list, newest first.")
@click.option("--json", "as_json", is_flag=True, help="Print the runs as JSON.")
@db_option
def runs(source: str | None, limit: int, as_json: bool, db_url: str | None) -> None:
    """List crawl runs (of SOURCE, or of every source), newest first.

    Columns: when it started (China time), how long it took, list and notice
    pages fetched, new, changed and unchanged notices, 304 answers, errors, the
    run's status, and why the run says the source looks broken (if it does).
    """
    from archive.records import china_time

    archive = open_archive_or_fail(db_url, read_only=True)
    with archive_errors():
        rows = [{"id": run.id, "source": key, "started": china_time(run.started_at),
                 "seconds": round((run.finished_at - run.started_at).total_seconds()) if run.finished_at else None,
                 "pages": run.pages, "new": run.new, "changed": run.changed, "unchanged": run.unchanged,
                 "not_modified": run.not_modified, "errors": run.errors, "status": run.status,
                 "problem": run.problem, "message": run.message}
                for run, key in archive.runs(source, limit)]
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    if not rows:
        click.echo(f"no runs of {source} yet" if source else "no runs yet", err=True)
        return
    click.echo(f"{'run':>5} {'source':<12} {'started':<19} {'took':>6} {'pages':>6} {'new':>5} {'changed':>7} "
               f"{'unchanged':>9} {'304':>5} {'errors':>6} status")
    for row in rows:
        took = _duration(row["seconds"])
        status = row["status"] + (f" (broken: {row['problem']})" if row["problem"] else "")
        click.echo(f"{row['id']:>5} {row['source']:<12} {row['started']:<19} {took:>6} {row['pages']:>6} "
                   f"{row['new']:>5} {row['changed']:>7} {row['unchanged']:>9} {row['not_modified']:>5} "
                   f"{row['errors']:>6} {status}")


def _duration(seconds: int | None) -> str:
    if seconds is None:
        return "—"
    return f"{seconds}s" if seconds < 60 else f"{seconds // 60}m{seconds % 60:02d}s" if seconds < 3600 \
        else f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


@cli.command()
@click.argument("sources", nargs=-1, metavar="[SOURCE]...")
@click.option("--sources", "sources_file", metavar="FILE", help=SOURCES_HELP)
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
    if unknown := [key for key in sources if key not in registry]:
        raise click.UsageError(f"unknown source {', '.join(unknown)} (sources: {', '.join(registry)})")
    archive = open_archive_or_fail(db_url)

    def progress(done: int) -> None:
        if done % 100 == 0:
            click.echo(f"… {done} notices", err=True)

    summary = reextract_archive(archive, registry, sources, progress)
    click.echo(f"re-extracted {summary.notices} notices with extractor {EXTRACTOR_VERSION}: "
               f"{summary.updated} updated, {summary.notices - summary.updated} unchanged")


@cli.command()
def doctor() -> None:
    """Show which attachment formats this machine can read, and with what.

    A format whose reader is missing is archived with the error "not extracted"
    and its reason; install the reader (for old Word and WPS files: antiword or
    catdoc, e.g. `apt-get install antiword`) and run `zwgk reextract`.
    """
    from crawler.extract.files import converters

    missing = 0
    for file_format, reader in converters().items():
        click.echo(f"{file_format:>8}: {reader or 'MISSING'}")
        missing += reader is None
    if missing:
        click.echo(f"{missing} format(s) cannot be read here; their attachments are kept with the reason.", err=True)


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (0.0.0.0: every interface).")
@click.option("--port", type=click.IntRange(1, 65535), default=8000, show_default=True, help="Port to listen on.")
@db_option
def serve(host: str, port: int, db_url: str | None) -> None:
    """Serve the archive's read-only web pages and JSON API.

    \b
    /                   search, with filters, facets and snippets
    /notices/ID         a notice: metadata, text, attachments, versions, diffs
    /search.csv|.jsonl  the notices a search matches; /feed.atom its Atom feed
    /api/…              the JSON API, described at /openapi.json (/api/docs)
    Nothing can be changed through it; put it behind a reverse proxy to share it.
    """
    import uvicorn

    from archive.web import create_app

    app = create_app(open_archive_or_fail(db_url, read_only=True))
    click.echo(f"serving the archive at http://{host}:{port}/ (Ctrl-C stops)", err=True)
    uvicorn.run(app, host=host, port=port, log_level="warning")


CONFIG_HELP = "Config file (TOML, see README), else $ZWGK_CONFIG, else ./zwgk.toml if present."


@cli.group()
def schedule() -> None:
    """Harvest every source on its timetable (nightly by default).

    \b
    Each source has one job: by default nightly at a minute of its own between
    01:00 and 05:00 China time; a source's `schedule` in the registry or the
    [schedule] table of zwgk.toml changes that. Jobs live in the archive
    database, so a restart keeps them, and a night missed while the scheduler
    was down is crawled once when it is back.
    """


def _harvester(db_url: str | None, sources_file: str | None, config_file: str | None, settings: tuple[str, ...] = (),
               redis_url: str | None = None):
    from archive.alerts import load_alert_settings
    from scheduler import ConfigError, Harvester, load_schedule_config

    load_registry(sources_file)  # a broken registry is reported as such
    for item in settings:
        if "=" not in item or item.startswith("="):
            raise click.UsageError(f"-s takes NAME=VALUE, got {item!r}")
    try:
        config = load_schedule_config(config_file)
        alert_settings = load_alert_settings(config_file)
        with archive_errors():
            return Harvester(db_url, sources_file, config, settings, alert_settings=alert_settings,
                             redis_url=redis_url)
    except ConfigError as error:
        raise click.UsageError(str(error)) from error


@schedule.command("run")
@click.option("--config", "config_file", metavar="FILE", help=CONFIG_HELP)
@click.option("--sources", "sources_file", metavar="FILE", help=SOURCES_HELP)
@click.option("-s", "--set", "settings", multiple=True, metavar="NAME=VALUE",
              help="A Scrapy setting for every scheduled crawl (repeatable).")
@click.option("--distributed", is_flag=True,
              help="Start each crawl as a shared crawl that `zwgk worker`s on other machines join.")
@click.option("--redis", "redis_url", envvar="ZWGK_REDIS", metavar="URL",
              help="The Redis the workers share (default: $ZWGK_REDIS).")
@db_option
def schedule_run(config_file: str | None, sources_file: str | None, settings: tuple[str, ...],
                 distributed: bool, redis_url: str | None, db_url: str | None) -> None:
    """Run the scheduler in the foreground until SIGTERM or Ctrl-C.

    Each crawl runs as `zwgk crawl SOURCE` in a process of its own, with the
    time limit of the config (3 hours by default); at most max_parallel (2) at
    once. Only one scheduler per archive is active: another one started
    against the same database stands by and takes over if the first dies.
    SIGTERM lets running crawls finish the notice in hand, then exits.
    With --distributed each crawl is shared with the `zwgk worker`s of the same Redis.
    """
    import logging

    if distributed:
        if not redis_url:
            raise click.UsageError("--distributed needs the shared Redis: --redis URL or ZWGK_REDIS")
        check_redis(redis_url)

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", stream=sys.stderr)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    harvester = _harvester(db_url, sources_file, config_file, settings, redis_url if distributed else None)
    harvester.serve(on_standby=lambda message: click.echo(message, err=True))
    click.echo("scheduler stopped", err=True)


@schedule.command("list")
@click.option("--config", "config_file", metavar="FILE", help=CONFIG_HELP)
@click.option("--sources", "sources_file", metavar="FILE", help=SOURCES_HELP)
@click.option("--json", "as_json", is_flag=True, help="Print the jobs as JSON.")
@db_option
def schedule_list(config_file: str | None, sources_file: str | None, as_json: bool, db_url: str | None) -> None:
    """Show each source's job: its timetable and its next run (China time, or the config's zone)."""
    harvester = _harvester(db_url, sources_file, config_file)
    with archive_errors():
        jobs = harvester.planned_jobs()
    rows = [{"source": job.key, "timetable": job.timetable,
             "next_run": job.next_run.strftime("%Y-%m-%dT%H:%M:%S%z") if job.next_run else None, "state": job.state}
            for job in jobs]
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    click.echo(f"{'source':<12} {'timetable':<16} {'next run':<25} state")
    for row in rows:
        click.echo(f"{row['source']:<12} {row['timetable'] or '—':<16} {row['next_run'] or '—':<25} {row['state']}")


@cli.group()
def alerts() -> None:
    """Saved searches that notify you of new (and changed) notices.

    \b
      zwgk alerts add plans --query '政务公开工作要点' --notify 'mailto://…'
      zwgk alerts add hujiao --query 'docno:沪交办' --notify 'dingtalk://${DINGTALK_TOKEN}/' --digest
      zwgk alerts add gz --query 'source:guangzhou' --changes --notify 'json://127.0.0.1:9000/hook'
      zwgk alerts add ops --source-health --notify 'mailto://…'   (broken sources, for operators)
    Channels are Apprise URLs (email, DingTalk, WeCom, Feishu, Lark, Slack,
    Telegram, JSON webhooks …). Write tokens as ${NAME}: they are read from the
    environment or from [secrets] in zwgk.toml when sending, and never stored
    or shown. Alerts are sent by `zwgk alerts run` and after every scheduled crawl.
    """


def _alerts(db_url: str | None, config_file: str | None = None):
    from archive.alerts import Alerts, load_alert_settings
    from archive.config import ConfigError

    try:
        settings = load_alert_settings(config_file)
    except ConfigError as error:
        raise click.UsageError(str(error)) from error
    return Alerts(open_archive_or_fail(db_url), settings)


@contextmanager
def alert_errors() -> Iterator[None]:
    from archive.alerts import AlertError

    with archive_errors():
        try:
            yield
        except AlertError as error:
            raise click.ClickException(str(error)) from error


config_option = click.option("--config", "config_file", metavar="FILE",
                             help="Config file (TOML), else $ZWGK_CONFIG, else ./zwgk.toml if present.")


@alerts.command("add")
@click.argument("name")
@click.option("-q", "--query", default="", help="What to watch for, in the search language (see `zwgk search --help`).")
@filter_options
@click.option("--notify", "channels", multiple=True, metavar="URL", help="An Apprise channel URL (repeatable).")
@click.option("--changes", is_flag=True, help="Also notify when a matching notice changes.")
@click.option("--digest", is_flag=True, help="One message per run and channel instead of one per notice.")
@click.option("--backfill", is_flag=True, help="Also send what the archive already holds that matches.")
@click.option("--source-health", is_flag=True, help="Watch for broken (and recovered) sources instead of notices.")
@config_option
@db_option
def alerts_add(name: str, query: str, filters: dict[str, str | None], channels: tuple[str, ...], changes: bool,
               digest: bool, backfill: bool, source_health: bool, config_file: str | None, db_url: str | None) -> None:
    """Add the alert rule NAME: a saved search and where to send what it finds."""
    written = " ".join([query, *(f"{name}:{value}" for name, value in filters.items() if value)]).strip()
    if source_health and (written or changes):
        raise click.UsageError("--source-health watches sources: it takes no query, filters or --changes")
    parse_search(written, {})
    manager = _alerts(db_url, config_file)
    with alert_errors():
        rule, warnings = manager.add(name, written, channels, changes=changes, digest=digest, backfill=backfill,
                                     kind="source_health" if source_health else "notices")
    for warning in warnings:
        click.echo(f"warning: {warning}", err=True)
    what = "broken sources" if source_health else f"{written!r}" + (" (new and changed)" if changes else "")
    click.echo(f"added {rule.name}: {what} → {len(channels)} channel(s)"
               + (", as a digest" if digest else "") + (", with what already matches" if backfill else ""))


@alerts.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print the rules as JSON.")
@db_option
def alerts_list(as_json: bool, db_url: str | None) -> None:
    """List the alert rules, with their channels masked."""
    from archive.alerts import masked

    manager = _alerts(db_url)
    with alert_errors():
        rows = [{"name": r.name, "kind": r.kind, "query": r.query, "changes": r.changes, "digest": r.digest,
                 "channels": [masked(c) for c in r.channels]} for r in manager.rules()]
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    if not rows:
        click.echo("no alert rules yet (zwgk alerts add --help)", err=True)
    for row in rows:
        flags = ", ".join(flag for flag, on in (("changes", row["changes"]), ("digest", row["digest"])) if on)
        what = "source health" if row["kind"] == "source_health" else row["query"]
        click.echo(f"{row['name']:<16} {what}" + (f"  [{flags}]" if flags else ""))
        for channel in row["channels"]:
            click.echo(f"{'':<16} → {channel}")


@alerts.command("remove")
@click.argument("name")
@db_option
def alerts_remove(name: str, db_url: str | None) -> None:
    """Remove the alert rule NAME (and its pending deliveries)."""
    with alert_errors():
        _alerts(db_url).remove(name)
    click.echo(f"removed {name}")


@alerts.command("test")
@click.argument("name")
@config_option
@db_option
def alerts_test(name: str, config_file: str | None, db_url: str | None) -> None:
    """Send a test message to each channel of NAME and say how each went."""
    with alert_errors():
        results = _alerts(db_url, config_file).test(name)
    for channel, error in results:
        click.echo(f"{'ok    ' if error is None else 'FAILED'} {channel}" + (f": {error}" if error else ""))
    if any(error for _, error in results):
        sys.exit(1)


@alerts.command("run")
@click.option("--retry-now", is_flag=True, help="Send failed deliveries again now instead of after their backoff.")
@config_option
@db_option
def alerts_run(retry_now: bool, config_file: str | None, db_url: str | None) -> None:
    """Match new events to the rules and send what is due.

    A delivery that fails is kept and tried again by later runs, after 5 minutes,
    then 10, 20 … up to 6 hours (--retry-now: at once); nothing is sent twice.
    """
    with alert_errors():
        report = _alerts(db_url, config_file).run(retry_now=retry_now)
    if report.skipped:
        click.echo(f"not run: {report.skipped}", err=True)
        return
    click.echo(f"planned {report.planned}, sent {report.sent}, failed {report.failed} (kept for the next run)")
    for error in report.errors:
        click.echo(f"  {error}", err=True)
    if report.failed:
        sys.exit(1)


@alerts.command("feed")
@click.argument("name")
@click.option("--site", default="http://127.0.0.1:8000/", show_default=True,
              help="Where `zwgk serve` runs, for the entries' links.")
@db_option
def alerts_feed(name: str, site: str, db_url: str | None) -> None:
    """Print the Atom feed of NAME: the notices it matches, newest first."""
    with alert_errors():
        sys.stdout.buffer.write(_alerts(db_url).feed(name, site))


@alerts.command("log")
@click.argument("name", required=False)
@click.option("-n", "--limit", type=click.IntRange(1, 100_000), default=50, show_default=True,
              help="How many deliveries to list, newest first.")
@click.option("--json", "as_json", is_flag=True, help="Print the deliveries as JSON.")
@db_option
def alerts_log(name: str | None, limit: int, as_json: bool, db_url: str | None) -> None:
    """What was sent, when, and what failed (newest first)."""
    from archive.records import china_time

    with alert_errors():
        rows = _alerts(db_url).log(name, limit)
    for row in rows:
        row["sent_at"], row["next_attempt_at"] = china_time(row["sent_at"]), china_time(row["next_attempt_at"])
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    for row in rows:
        when = (f"sent {row['sent_at']}" if row["status"] == "sent"
                else f"{row['status']}, next try {row['next_attempt_at']}")
        click.echo(f"{row['id']:>6} {row['rule']:<14} {row['event']:<8} {when}  {row['channel']}  {row['title'] or ''}")
        if row["error"]:
            click.echo(f"{'':>6} {row['error']}")


@cli.group()
def db() -> None:
    """Manage the archive's database schema."""


@db.command()
@db_option
def upgrade(db_url: str | None) -> None:
    """Apply the archive's migrations (a new database is set up on first use anyway)."""
    from archive import resolve_db_url
    from archive.db import create_archive_engine, current_revision, head_revision
    from archive.db import upgrade as apply_migrations

    with archive_errors():
        engine = create_archive_engine(resolve_db_url(db_url))
        before = current_revision(engine)
        apply_migrations(engine)
    click.echo(f"schema at {head_revision(engine)} (was {before or 'empty'})")


@db.command("copy")
@click.option("--to", "target", required=True, metavar="URL", help="The empty archive to copy into.")
@db_option
def db_copy(target: str, db_url: str | None) -> None:
    """Copy the whole archive into another database, ids and all.

    \b
      zwgk db copy --db sqlite:///zwgk.sqlite3 --to postgresql+psycopg://zwgk@db/zwgk
    For moving an SQLite archive to PostgreSQL (or back). The target must be
    empty; its schema is created, the search index rebuilt, and each table's
    rows counted against the original. Stop crawls and the scheduler first.
    """
    from archive.copy import copy_archive, table_counts

    archive = open_archive_or_fail(db_url, read_only=True)
    shown: dict[str, int] = {}

    def progress(table: str, rows: int) -> None:
        if rows - shown.get(table, 0) >= 10_000:
            shown[table] = rows
            click.echo(f"… {table}: {rows} rows", err=True)

    with archive_errors():
        copied = copy_archive(archive.engine, target, progress=progress)
        expected = table_counts(archive.engine)
    for table, rows in copied.items():
        click.echo(f"{table:<18} {rows:>10}")
    if mismatched := [table for table, rows in expected.items() if copied.get(table) != rows]:
        raise click.ClickException(f"row counts differ for {', '.join(mismatched)}")
    click.echo(f"copied into {target.split('@')[-1]}", err=True)


if __name__ == "__main__":
    cli()
