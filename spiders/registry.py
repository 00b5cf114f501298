"""The sources registry: which bureaus to harvest, on which platform, from which columns."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

BUNDLED_SOURCES = Path(__file__).with_name("sources.toml")


class RegistryError(ValueError):
    """The sources file cannot be used; the message says where and why."""


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
    extra: dict[str, object] = field(default_factory=dict)


def sources_path(path: str | Path | None = None) -> Path:
    """``path``, else ``ZWGK_SOURCES``, else the registry shipped with zwgk."""
    return Path(path or os.environ.get("ZWGK_SOURCES") or BUNDLED_SOURCES)


def load_sources(path: str | Path | None = None) -> dict[str, SourceConfig]:
    """Read the registry, checking every entry."""
    file = sources_path(path)
    try:
        data = tomllib.loads(file.read_text(encoding="utf-8"))
    except OSError as error:
        raise RegistryError(f"cannot read sources file {file}: {error.strerror}") from error
    except tomllib.TOMLDecodeError as error:
        raise RegistryError(f"{file}: {error}") from error
    sources = {}
    for key, entry in data.items():
        if not isinstance(entry, dict):
            raise RegistryError(f"{file}: [{key}] must be a table")
        missing = [name for name in ("name", "host", "platform", "columns") if name not in entry]
        if missing:
            raise RegistryError(f"{file}: [{key}] lacks {', '.join(missing)}")
        known = {"name", "host", "platform", "columns", "level", "region", "body_selectors",
                 "title_selectors", "detail_pattern"}
        sources[key] = SourceConfig(
            key=key, name=entry["name"], host=entry["host"], platform=entry["platform"],
            columns=tuple(entry["columns"]), level=entry.get("level"), region=entry.get("region"),
            body_selectors=tuple(entry.get("body_selectors", ())),
            title_selectors=tuple(entry.get("title_selectors", ())),
            detail_pattern=entry.get("detail_pattern"),
            extra={name: value for name, value in entry.items() if name not in known},
        )
    return sources
