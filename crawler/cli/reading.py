"""Commands that read the archive and never change it: search, export, show, history, diff, runs,
sources, serve."""

from __future__ import annotations

import os
import sys
from urllib.parse import urlsplit

import click

from .common import (
    archive_errors,
    config_option,
    db_option,
    echo,
    echo_json,
    filter_options,
    find_or_fail,
    json_option,
    load_registry,
    open_archive_or_fail,
    parse_search,
    sources_option,
    terminal_safe,
    usage_errors,
)


@click.command(context_settings={"ignore_unknown_options": True})  # lets `-收费` through as a NOT term
@click.argument("query", nargs=-1, required=True)
@filter_options
@click.option("--sort", type=click.Choice(("relevance", "date", "oldest")), default="relevance", show_default=True,
              help="Order of the hits: best match first, newest first, or oldest first.")
@click.option("--all-versions", is_flag=True, help="Search every version, not only each notice's latest.")
@click.option("-n", "--limit", type=click.IntRange(1, 10_000), default=20, show_default=True,
              help="How many hits to print.")
@click.option("--offset", type=click.IntRange(0), default=0, help="Skip this many hits (paging).")
@json_option(help="Print hits, total and facets as JSON.")
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
        echo_json({"total": result.total, "hits": [hit.__dict__ for hit in result.hits], "facets": result.facets})
        return
    colour = sys.stdout.isatty()
    for hit in result.hits:
        version = f" v{hit.version}/{hit.versions}" if all_versions or hit.versions > 1 else ""
        title = terminal_safe(hit.title or "(no title)")
        click.echo(click.style(title, bold=True) if colour else title)
        echo(f"  {hit.published_at or '—'}  {hit.source}  {hit.doc_number or ''}  {hit.issuer or ''}{version}")
        echo(f"  {hit.url}  (id {hit.document_id})")
        click.echo(f"  {_highlight(hit, colour)}")
        echo("")
    shown = f"{offset + 1}–{offset + len(result.hits)} of " if result.hits else ""
    echo(f"{shown}{result.total} {'versions' if all_versions else 'notices'}", err=True)
    for name, counts in result.facets.items():
        if counts:
            echo(f"  {name}: " + ", ".join(f"{value} ({n})" for value, n in counts[:8]), err=True)


def _highlight(hit, colour: bool) -> str:
    """Mark each match: bold on a terminal, 【…】 elsewhere."""
    pieces = [(terminal_safe(text), marked) for text, marked in hit.snippet_pieces()]
    return "".join((click.style(text, bold=True, fg="red") if colour else f"【{text}】") if marked else text
                   for text, marked in pieces).replace("\n", " ")


@click.command()
@click.option("--format", "fmt", type=click.Choice(("jsonl", "csv", "parquet")), default="jsonl", show_default=True,
              help="jsonl: one JSON object a line; csv: attachments as a JSON list in one column; "
                   "parquet: typed columns, attachments as a list of structs (needs -o).")
@click.option("--all-versions", is_flag=True, help="One record per version instead of per document.")
@click.option("-q", "--query", default="", help="Only notices matching this search (see `zwgk search --help`).")
@filter_options
@click.option("--bom", is_flag=True, help="CSV: start with a byte-order mark, so Excel reads the Chinese text.")
@click.option("--raw-cells", is_flag=True,
              help="CSV: keep cells starting with = + - @ as they are (by default a ' before them stops "
                   "spreadsheets running them as formulas).")
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True), help="File to write (default: stdout).")
@db_option
def export(fmt: str, all_versions: bool, query: str, filters: dict[str, str | None], bom: bool, raw_cells: bool,
           output: str | None, db_url: str | None) -> None:
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
    from archive.output.export import write_export, written_whole

    if fmt == "parquet" and not output:
        raise click.UsageError("--format parquet writes a file: give -o FILE")
    if bom and fmt != "csv":
        raise click.UsageError("--bom is for --format csv")
    if raw_cells and fmt != "csv":
        raise click.UsageError("--raw-cells is for --format csv")
    search = parse_search(query, filters) if query or any(filters.values()) else None
    archive = open_archive_or_fail(db_url, read_only=True)
    records = archive.iter_records(all_versions=all_versions, search=search)
    try:
        with archive_errors():
            if output is None:
                count = write_export(records, fmt, sys.stdout, bom, raw_cells)
            else:
                with written_whole(output, binary=fmt == "parquet") as stream:
                    count = write_export(records, fmt, stream, bom, raw_cells)
    except BrokenPipeError:  # `zwgk export | head`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return
    except OSError as error:
        raise click.ClickException(f"cannot write {output}: {error.strerror or error}") from error
    if output:
        echo(f"wrote {count} records to {output}", err=True)


@click.command()
@click.argument("document")
@click.option("--version", "version_number", type=int, help="Show this version instead of the latest.")
@json_option(help="Print the record as JSON.")
@db_option
def show(document: str, version_number: int | None, as_json: bool, db_url: str | None) -> None:
    """Show a notice (by URL or document id): its fields, its text and its versions."""
    from archive.records import china_time, document_record, shorten

    found = find_or_fail(open_archive_or_fail(db_url, read_only=True), document)
    with archive_errors():
        record = document_record(found, version_number)
    if as_json:
        echo_json(record)
        return
    for name in ("title", "source", "url", "doc_number", "index_number", "issuer", "written_date",
                 "published_at", "disclosure", "doc_type", "first_seen", "last_changed"):
        echo(f"{name:>13}: {shorten(record[name]) if record[name] is not None else '—'}")
    echo(f"{'version':>13}: {record['version']} of {found.version_count}")
    echo("")
    echo(record["body"])
    # Many notices are a short page around an attached file: its text is the notice text.
    for number, attachment in enumerate(record["attachments"], 1):
        echo(f"\n── 附件 {number}: {attachment['name']} <{attachment['url']}>")
        echo(attachment["text"] if attachment["text"] else f"({attachment['error'] or 'no text'})")
    echo("")
    echo("versions:")
    for version in found.versions:
        seen = china_time(version.seen_at)
        echo(f"  {version.number:>3}  {seen}  {version.content_hash[:12]}  {shorten(version.title) or ''}")


@click.command()
@click.argument("document")
@json_option(help="Print the versions and events as JSON.")
@db_option
def history(document: str, as_json: bool, db_url: str | None) -> None:
    """Every version of a notice (by URL or document id): when it was seen, and what changed.

    Each line names the fields that differ from the version before and how many
    lines of text were added and removed; `zwgk diff` shows the changes
    themselves. Events (gone, restored) are listed with their time.
    """
    from archive.output.history import notice_history
    from archive.records import shorten

    archive = open_archive_or_fail(db_url, read_only=True)
    found = find_or_fail(archive, document)
    with archive_errors():
        history = notice_history(found, archive.events(found.id))
    if as_json:
        echo_json(history)
        return
    echo(f"{found.url}  (id {found.id}, {found.status}, {found.version_count} versions)")
    for row in history["versions"]:
        if row["lines_added"] is None:
            what = "first seen"
        else:
            fields = ", ".join(row["changed_fields"])
            what = f"+{row['lines_added']} −{row['lines_removed']} lines" + (f"; {fields}" if fields else "")
        title = shorten(row["title"]) or ""
        echo(f"  v{row['version']:<3} {row['seen_at']}  {row['content_hash'][:12]}  {what}  {title}")
    for event in history["events"]:
        if event["kind"] in ("gone", "restored"):
            echo(f"  {event['kind']:<7} {event['at']}")


@click.command()
@click.argument("document")
@click.argument("versions", nargs=-1, type=int)
@click.option("-U", "--context", type=click.IntRange(0, 1000), default=2, show_default=True,
              help="Unchanged lines shown around each change.")
@json_option(help="Print the changed fields and lines as JSON.")
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

    found = find_or_fail(open_archive_or_fail(db_url, read_only=True), document)
    if len(versions) not in (0, 2):
        raise click.UsageError("give two version numbers, or none for the last two")
    given: tuple[int | None, ...] = versions or (None, None)  # None, None: the last two
    with archive_errors():
        change = diff_versions(found, given[0], given[1], context=context)
    old, new = change.old_number, change.new_number
    if as_json:
        echo_json({"old": old, "new": new, "fields": [{"name": n, "old": a, "new": b} for n, a, b in change.fields],
                   "lines": [{"op": line.op, "text": line.text} for line in change.lines]})
        return
    colour = sys.stdout.isatty()
    echo(f"{found.url}: version {old} → {new}")
    if change.unchanged:
        echo("no difference")
    for name, before, after in change.fields:
        echo(f"{name}: {before if before is not None else '—'} → {after if after is not None else '—'}")
    for line in change.lines:
        click.echo(_diff_line(line, colour))


def _diff_line(line, colour: bool) -> str:
    if not line.parts:
        text = f"{line.op} {terminal_safe(line.text)}"
        return click.style(text, fg={"-": "red", "+": "green"}.get(line.op)) if colour and line.op != " " else text
    pieces = []
    for op, part in line.parts:
        text = terminal_safe(part)
        if op == "=":
            pieces.append(text)
        elif colour:
            pieces.append(click.style(text, fg="red" if op == "-" else "green", bold=True, reverse=True))
        else:
            pieces.append(f"[-{text}-]" if op == "-" else f"{{+{text}+}}")
    return f"{line.op} " + "".join(pieces)


@click.command()
@sources_option
@json_option(help="Print the registry (with --health: the health) as JSON.")
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
        echo_json({key: {"name": s.name, "host": s.host, "platform": s.platform, "level": s.level,
                         "region": s.region, "columns": list(s.columns)} for key, s in registry.items()})
        return
    for source in registry.values():
        echo(f"{source.key:<12} {source.name}  [{source.platform}]  {source.host}")
        for column in source.columns:
            echo(f"{'':<12} {column}")


def _print_health(keys: list[str], as_json: bool, db_url: str | None) -> None:
    from archive.health import source_health

    archive = open_archive_or_fail(db_url, read_only=True)
    with archive_errors():
        rows = [health.record() for health in source_health(archive, keys)]
    if as_json:
        echo_json(rows)
        return
    echo(f"{'source':<12} {'last run':<19} {'status':<11} {'last success':<19} {'streak':>6}  problem")
    for row in rows:
        echo(f"{row['source']:<12} {row['last_run'] or 'never':<19} {row['last_status'] or '—':<11} "
                   f"{row['last_success'] or 'never':<19} {row['failure_streak']:>6}  {row['problem'] or ''}")


@click.command()
@click.argument("source", required=False)
@click.option("-n", "--limit", type=click.IntRange(1, 100_000), default=20, show_default=True,
              help="How many runs to list, newest first.")
@json_option(help="Print the runs as JSON.")
@db_option
def runs(source: str | None, limit: int, as_json: bool, db_url: str | None) -> None:
    """List crawl runs (of SOURCE, or of every source), newest first.

    Columns: when it started (China time), how long it took, list and notice
    pages fetched, new, changed and unchanged notices, 304 answers, errors, the
    run's status, and why the run says the source looks broken (if it does).
    """
    from archive.records import run_record

    archive = open_archive_or_fail(db_url, read_only=True)
    with archive_errors():
        rows = [run_record(run, key) for run, key in archive.runs(source, limit)]
    if as_json:
        echo_json(rows)
        return
    if not rows:
        echo(f"no runs of {source} yet" if source else "no runs yet", err=True)
        return
    echo(f"{'run':>5} {'source':<12} {'started':<19} {'took':>6} {'pages':>6} {'new':>5} {'changed':>7} "
               f"{'unchanged':>9} {'304':>5} {'errors':>6} status")
    for row in rows:
        took = _duration(row["seconds"])
        status = row["status"] + (f" (broken: {row['problem']})" if row["problem"] else "")
        echo(f"{row['id']:>5} {row['source']:<12} {row['started']:<19} {took:>6} {row['pages']:>6} "
                   f"{row['new']:>5} {row['changed']:>7} {row['unchanged']:>9} {row['not_modified']:>5} "
                   f"{row['errors']:>6} {status}")


def _duration(seconds: int | None) -> str:
    if seconds is None:
        return "—"
    return f"{seconds}s" if seconds < 60 else f"{seconds // 60}m{seconds % 60:02d}s" if seconds < 3600 \
        else f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (0.0.0.0: every interface).")
@click.option("--port", type=click.IntRange(1, 65535), default=8000, show_default=True, help="Port to listen on.")
@click.option("--base-url", metavar="URL",
              help="Where readers reach the server, for the links in feeds (default: [alerts] base_url of "
                   "zwgk.toml, else http://HOST:PORT/); never taken from a request's Host header.")
@config_option
@db_option
def serve(host: str, port: int, base_url: str | None, config_file: str | None, db_url: str | None) -> None:
    """Serve the archive's read-only web pages and JSON API.

    \b
    /                   search, with filters, facets and snippets
    /notices/ID         a notice: metadata, text, attachments, versions, diffs
    /search.csv|.jsonl  the notices a search matches; /feed.atom its Atom feed
    /api/…              the JSON API, described at /openapi.json (/api/docs)
    Nothing can be changed through it; put it behind a reverse proxy to share it
    (and give that proxy's address as --base-url).
    """
    import uvicorn

    from archive.alerts import load_alert_settings
    from archive.config import ConfigError
    from archive.web import create_app

    if base_url is None:
        with usage_errors(ConfigError):
            base_url = load_alert_settings(config_file).base_url or f"http://{_url_host(host)}:{port}/"
    if urlsplit(base_url).scheme not in ("http", "https") or not urlsplit(base_url).netloc:
        raise click.BadParameter(f"{base_url!r} is not an http(s) URL", param_hint="--base-url")
    app = create_app(open_archive_or_fail(db_url, read_only=True), base_url=base_url)
    echo(f"serving the archive at http://{host}:{port}/ (Ctrl-C stops)", err=True)
    uvicorn.run(app, host=host, port=port, log_level="warning")


def _url_host(host: str) -> str:
    """``host`` as a URL writes it: an IPv6 address in brackets."""
    return f"[{host}]" if ":" in host else host


COMMANDS = (search, export, show, history, diff, sources, runs, serve)
