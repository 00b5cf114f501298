"""Alert channels: Apprise URLs, the secrets they name as ``${NAME}``, and how they are shown and sent.

Channel URLs may hold ``${NAME}`` placeholders, filled when sending from the
environment or the ``[secrets]`` table of zwgk.toml, so tokens need not be stored
in the archive; whatever is stored is shown masked.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

from ..config import ConfigError, load_table
from ..errors import AlertError

PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")

# (url, title, body) -> None when sent, else why not
Notifier = Callable[[str, str, str], "str | None"]


@dataclass(frozen=True)
class AlertSettings:
    """The [alerts] and [secrets] tables of zwgk.toml."""

    base_url: str | None = None  # where `zwgk serve` is reachable, for archive links in messages
    secrets: dict[str, str] = field(default_factory=dict)


def load_alert_settings(path: str | Path | None = None) -> AlertSettings:
    alerts, file = load_table("alerts", path, frozenset({"base_url"}))
    secrets, _ = load_table("secrets", path)
    strings = {name: value for name, value in secrets.items() if isinstance(value, str)}
    if len(strings) != len(secrets):
        raise ConfigError(f"{file}: [secrets] values must be strings")
    base_url = alerts.get("base_url")
    if base_url is not None and not isinstance(base_url, str):
        raise ConfigError(f"{file}: [alerts] base_url must be a string")
    return AlertSettings(base_url, strings)


def expand(url: str, secrets: dict[str, str]) -> str:
    """Fill ``${NAME}`` from [secrets], else the environment."""
    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        found = secrets.get(name, os.environ.get(name))
        if found is None:
            raise AlertError(f"a channel needs ${{{name}}}: set {name} in the environment or in [secrets]")
        return found

    return PLACEHOLDER.sub(value, url)


def masked(url: str) -> str:
    """A channel URL fit to show: ${NAME}s as written, passwords, tokens and argument values hidden."""
    import apprise

    if not PLACEHOLDER.search(url):
        try:
            plugin = apprise.Apprise.instantiate(url)
        except Exception:
            plugin = None
        if not plugin:
            return url.split("://", 1)[0] + "://…"
        url = plugin.url(privacy=True)  # type: ignore[no-untyped-call]  # apprise leaves url() unannotated
    parts = urlsplit(url)
    host = parts.netloc.rsplit("@", 1)[-1]  # as written: ${NAME}s keep their case
    if parts.username:
        host = f"{_hide(parts.username)}:{_hide(parts.password)}@{host}" if parts.password else \
            f"{_hide(parts.username)}@{host}"
    path = "/".join(_hide(segment) if len(segment) >= 12 else segment for segment in parts.path.split("/"))
    query = "&".join(f"{key}={_hide(value)}" if key[:1] in "+-:" or _SECRET_KEYS.search(key) or len(value) >= 12
                     else f"{key}={value}" for key, value in parse_qsl(parts.query, keep_blank_values=True))
    return f"{parts.scheme}://{host}{path}" + (f"?{query}" if query else "")


_SECRET_KEYS = re.compile(r"token|key|secret|pass|pwd|auth|sign", re.IGNORECASE)


def _hide(value: str | None) -> str:
    """A value shown only as ${NAME} or Apprise's own mask, else as ***."""
    if not value:
        return ""
    if PLACEHOLDER.fullmatch(value) or re.fullmatch(r"[^*]?\.\.\.[^*]?|\*+", value):
        return value
    return "***"


def apprise_notify(url: str, title: str, body: str) -> str | None:
    """Send one message through Apprise; None when it was sent, else why not (with no secret in it)."""
    import apprise

    notifier = apprise.Apprise()
    if not notifier.add(url):
        return "not a channel URL Apprise understands"
    with apprise.LogCapture(level=logging.WARNING) as captured:  # type: ignore[no-untyped-call]  # unannotated in apprise
        sent = notifier.notify(title=title, body=body)
    if sent:
        return None
    reason = " ".join(line.strip() for line in captured.getvalue().splitlines() if line.strip())[-500:]
    return (reason or "the channel refused the message").replace(url, masked(url))
