"""Scrapy settings given on a command line as ``-s NAME=VALUE``, as `scrapy crawl -s` takes them.

`zwgk crawl`, `zwgk worker` and the scheduler (which passes them on to each crawl) read them here.
"""

from __future__ import annotations

from collections.abc import Iterable


class SettingError(ValueError):
    """A ``-s`` item is not NAME=VALUE."""


def parse_overrides(items: Iterable[str]) -> dict[str, str]:
    """``NAME=VALUE`` items as a mapping; a later item wins over an earlier one of the same name."""
    overrides = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise SettingError(f"-s takes NAME=VALUE, got {item!r}")
        overrides[name] = value
    return overrides


def as_arguments(overrides: dict[str, str]) -> list[str]:
    """The command-line form again: ``-s NAME=VALUE`` for each setting."""
    return [part for name, value in overrides.items() for part in ("-s", f"{name}={value}")]
