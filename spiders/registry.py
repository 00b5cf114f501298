"""The sources registry: which bureaus to harvest, on which platform, from which columns."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cssselect import GenericTranslator, SelectorError

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

BUNDLED_SOURCES = Path(__file__).with_name("sources.toml")


class RegistryError(ValueError):
    """The sources file cannot be used, or names given are not in it; the message says where and why."""


@dataclass(frozen=True)
class SourceConfig:
    """One bureau: who it is, where its notices are, and how its pages are laid out."""

    key: str
    name: str
    host: str
    platform: str
    columns: tuple[str, ...]
    level: str | None = None
    region: str | None = None
    body_selectors: tuple[str, ...] = ()
    title_selectors: tuple[str, ...] = ()
    detail_pattern: str | None = None
    # When the scheduler crawls it: a crontab line ("30 2 * * *") or "off"; None: a nightly default.
    schedule: str | None = None
    # Other hosts its attachments may be fetched from (a government file server); pages never are.
    file_hosts: tuple[str, ...] = ()


REQUIRED = ("name", "host", "platform", "columns")
OPTIONAL = ("level", "region", "body_selectors", "title_selectors", "detail_pattern", "schedule", "file_hosts")


def sources_path(path: str | Path | None = None) -> Path:
    """``path``, else ``ZWGK_SOURCES``, else the registry shipped with zwgk."""
    return Path(path or os.environ.get("ZWGK_SOURCES") or BUNDLED_SOURCES)


def load_sources(path: str | Path | None = None) -> dict[str, SourceConfig]:
    """Read the registry, checking every entry."""
    file = sources_path(path)
    try:
        data = tomllib.loads(file.read_text(encoding="utf-8"))
    except OSError as problem:
        raise RegistryError(f"cannot read sources file {file}: {problem.strerror}") from problem
    except tomllib.TOMLDecodeError as problem:
        raise RegistryError(f"{file}: {problem}") from problem
    return {key: _source(file, key, entry) for key, entry in data.items()}


def select_sources(registry: dict[str, SourceConfig], keys: Sequence[str] = (), every: bool = False,
                   none_is_every: bool = False) -> list[SourceConfig]:
    """The sources a user means: the named ``keys`` (each once, in their order), or all with ``every``.

    Naming none is every source with ``none_is_every``, else an error; so is naming sources and
    ``every`` at once, or a key the registry lacks (the message lists the known ones).
    """
    known = f"(sources: {', '.join(registry)})"
    if every and keys:
        raise RegistryError("name sources or give --all, not both")
    if unknown := [key for key in keys if key not in registry]:
        raise RegistryError(f"unknown source {', '.join(unknown)} {known}")
    if not keys and not (every or none_is_every):
        raise RegistryError(f"name at least one source, or --all {known}")
    return [registry[key] for key in dict.fromkeys(keys)] if keys else list(registry.values())


def _source(file: Path, key: str, entry: object) -> SourceConfig:
    """Check one entry: a misspelt key or a bad selector is reported, never silently ignored."""
    def fail(problem: str) -> RegistryError:
        return RegistryError(f"{file}: [{key}] {problem}")

    if not isinstance(entry, dict):
        raise fail("must be a table")
    if missing := [name for name in REQUIRED if name not in entry]:
        raise fail(f"lacks {', '.join(missing)}")
    if unknown := sorted(set(entry) - set(REQUIRED) - set(OPTIONAL)):
        raise fail(f"has unknown keys {', '.join(unknown)} (known: {', '.join(REQUIRED + OPTIONAL)})")
    for name in ("columns", "body_selectors", "title_selectors", "file_hosts"):
        value = entry.get(name, [])
        if not isinstance(value, list) or not all(isinstance(item, str) and item for item in value):
            raise fail(f"{name} must be a list of strings")
    if not entry["columns"]:
        raise fail("names no columns")
    for selector in (*entry.get("body_selectors", ()), *entry.get("title_selectors", ())):
        try:
            GenericTranslator().css_to_xpath(selector)
        except SelectorError as error:
            raise fail(f"has a bad CSS selector {selector!r}: {error}") from error
    if not isinstance(entry.get("schedule", ""), str):
        raise fail('schedule must be a crontab line such as "30 2 * * *", or "off"')
    if (pattern := entry.get("detail_pattern")) is not None:
        try:
            re.compile(pattern)
        except re.error as error:
            raise fail(f"has a bad detail_pattern {pattern!r}: {error}") from error
    return SourceConfig(
        key=key, name=entry["name"], host=entry["host"], platform=entry["platform"],
        columns=tuple(entry["columns"]), level=entry.get("level"), region=entry.get("region"),
        body_selectors=tuple(entry.get("body_selectors", ())),
        title_selectors=tuple(entry.get("title_selectors", ())), detail_pattern=pattern,
        schedule=entry.get("schedule"), file_hosts=tuple(entry.get("file_hosts", ())),
    )
