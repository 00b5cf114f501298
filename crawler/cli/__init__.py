"""The `zwgk` command: thin command modules over the archive, the extractor and the crawler.

Each command parses its options, calls the libraries and prints; crawler.cli.common holds what
they share, including the one place where the libraries' errors become exits.
"""

from __future__ import annotations

import click

from crawler import __version__
from crawler.cli import admin, alerts, crawling, reading


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


for _command in (*crawling.COMMANDS, *reading.COMMANDS, *alerts.COMMANDS, *admin.COMMANDS):
    cli.add_command(_command)
