"""`zwgk alerts`: saved searches, where to send what they find, and what was sent."""

from __future__ import annotations

import sys

import click

from .common import (
    archive_errors,
    config_option,
    db_option,
    echo,
    echo_json,
    filter_options,
    json_option,
    open_archive_or_fail,
    parse_search,
    usage_errors,
)


@click.group()
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

    with usage_errors(ConfigError):
        settings = load_alert_settings(config_file)
    return Alerts(open_archive_or_fail(db_url), settings)


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
    with archive_errors():
        rule, warnings = manager.add(name, written, channels, changes=changes, digest=digest, backfill=backfill,
                                     kind="source_health" if source_health else "notices")
    for warning in warnings:
        click.echo(f"warning: {warning}", err=True)
    what = "broken sources" if source_health else f"{written!r}" + (" (new and changed)" if changes else "")
    click.echo(f"added {rule.name}: {what} → {len(channels)} channel(s)"
               + (", as a digest" if digest else "") + (", with what already matches" if backfill else ""))


@alerts.command("list")
@json_option(help="Print the rules as JSON.")
@db_option
def alerts_list(as_json: bool, db_url: str | None) -> None:
    """List the alert rules, with their channels masked."""
    from archive.alerts import masked

    manager = _alerts(db_url)
    with archive_errors():
        rows = [{"name": r.name, "kind": r.kind, "query": r.query, "changes": r.changes, "digest": r.digest,
                 "channels": [masked(c) for c in r.channels]} for r in manager.rules()]
    if as_json:
        echo_json(rows)
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
    with archive_errors():
        _alerts(db_url).remove(name)
    click.echo(f"removed {name}")


@alerts.command("test")
@click.argument("name")
@config_option
@db_option
def alerts_test(name: str, config_file: str | None, db_url: str | None) -> None:
    """Send a test message to each channel of NAME and say how each went."""
    with archive_errors():
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
    with archive_errors():
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
    with archive_errors():
        sys.stdout.buffer.write(_alerts(db_url).feed(name, site))


@alerts.command("log")
@click.argument("name", required=False)
@click.option("-n", "--limit", type=click.IntRange(1, 100_000), default=50, show_default=True,
              help="How many deliveries to list, newest first.")
@json_option(help="Print the deliveries as JSON.")
@db_option
def alerts_log(name: str | None, limit: int, as_json: bool, db_url: str | None) -> None:
    """What was sent, when, and what failed (newest first)."""
    from archive.records import china_time, shorten

    with archive_errors():
        rows = _alerts(db_url).log(name, limit)
    for row in rows:
        row["sent_at"], row["next_attempt_at"] = china_time(row["sent_at"]), china_time(row["next_attempt_at"])
    if as_json:
        echo_json(rows)
        return
    for row in rows:
        when = (f"sent {row['sent_at']}" if row["status"] == "sent"
                else f"{row['status']}, next try {row['next_attempt_at']}")
        title = shorten(row["title"]) or ""
        echo(f"{row['id']:>6} {row['rule']:<14} {row['event']:<8} {when}  {row['channel']}  {title}")
        if row["error"]:
            click.echo(f"{'':>6} {row['error']}")


COMMANDS = (alerts,)
