"""zwgk's config file (zwgk.toml): the scheduler's timetable, alert settings and secrets.

Found at ``--config FILE``, else ``ZWGK_CONFIG``, else ./zwgk.toml when it exists;
without one, every default applies.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

CONFIG_FILE = "zwgk.toml"


class ConfigError(ValueError):
    """The configuration cannot be used; the message says where and why."""


def config_path(path: str | Path | None = None) -> Path | None:
    """``path``, else ``ZWGK_CONFIG``, else ./zwgk.toml when it exists."""
    chosen = path or os.environ.get("ZWGK_CONFIG")
    if chosen:
        return Path(chosen)
    return Path(CONFIG_FILE) if Path(CONFIG_FILE).exists() else None


def read_toml(file: Path, error: type[ValueError], what: str) -> dict[str, object]:
    """A TOML file's data; an unreadable or malformed file raises ``error`` saying which and why."""
    try:
        return tomllib.loads(file.read_text(encoding="utf-8"))
    except OSError as problem:
        raise error(f"cannot read {what} {file}: {problem.strerror}") from problem
    except tomllib.TOMLDecodeError as problem:
        raise error(f"{file}: {problem}") from problem


def load_table(
    name: str, path: str | Path | None = None, known: frozenset[str] | None = None
) -> tuple[dict[str, object], str]:
    """The ``[name]`` table of the config file ({} without a file) and where it came from, for messages."""
    file = config_path(path)
    if file is None:
        return {}, "defaults"
    table = read_toml(file, ConfigError, "config file").get(name, {})
    if not isinstance(table, dict):
        raise ConfigError(f"{file}: [{name}] must be a table")
    if known is not None and (unknown := sorted(set(table) - known)):
        raise ConfigError(f"{file}: [{name}] has unknown keys {', '.join(unknown)} (known: {', '.join(sorted(known))})")
    return table, str(file)
