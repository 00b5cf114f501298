"""`python -m crawler.cli` runs the `zwgk` command."""

from crawler.cli import cli

cli()
