"""Alert channels: Apprise URLs, the secrets they name as ``${NAME}``, and how they are shown and sent.

Channel URLs may hold ``${NAME}`` placeholders, filled when sending from the
environment or the ``[secrets]`` table of zwgk.toml, so tokens need not be stored
in the archive; a URL holding any secret is shown masked whole.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

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
    """Fill ``${NAME}`` from [secrets], else the environment, percent-encoded: a value is one part of the URL
    (a token, a password, a path segment), so an ``@`` or ``/`` in it cannot change where the URL points."""
    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        found = secrets.get(name, os.environ.get(name))
        if found is None:
            raise AlertError(f"a channel needs ${{{name}}}: set {name} in the environment or in [secrets]")
        return quote(found, safe="")

    return PLACEHOLDER.sub(value, url)


def masked(url: str) -> str:
    """A channel URL fit to show: as written when it holds no secret, else masked whole: only its scheme, its
    host when that is a plain host name or address, and the ${NAME}s it needs."""
    names = list(dict.fromkeys(PLACEHOLDER.findall(url)))
    scheme = url.split("://", 1)[0] if "://" in url else "?"
    if not names and _understood(url) and not holds_literal_secret(url):
        return url
    host = _plain_host(url)
    needed = f" ({', '.join(f'${{{name}}}' for name in names)})" if names else ""
    return f"{scheme}://{host + '/' if host else ''}…{needed}"


def holds_literal_secret(url: str) -> bool:
    """Whether ``url``, its ${NAME}s aside, holds a password, token or key as written: what Apprise's privacy
    form hides, a password, a secret-looking argument or a token-length path segment."""
    literal = PLACEHOLDER.sub("", url)
    plugin = _understood(literal)
    if plugin and plugin.url(privacy=True) != plugin.url(privacy=False):
        return True
    parts = urlsplit(literal)
    return bool(parts.password) or any(len(segment) >= 12 for segment in parts.path.split("/")) or any(
        value and (key[:1] in "+-:" or _SECRET_KEYS.search(key) or len(value) >= 12)
        for key, value in parse_qsl(parts.query, keep_blank_values=True))


_SECRET_KEYS = re.compile(r"token|key|secret|pass|pwd|auth|sign", re.IGNORECASE)
_HOST_NAME = re.compile(r"(?:[a-z0-9-]{1,63}\.)+[a-z]{2,63}|localhost", re.IGNORECASE)


def _understood(url: str) -> Any:
    """Apprise's plugin for ``url``, or None when Apprise cannot read it."""
    import apprise

    try:
        return apprise.Apprise.instantiate(url) or None
    except Exception:
        return None


def _plain_host(url: str) -> str | None:
    """The host (and port) of ``url`` when it is a host name or an IP address, never a token in host position."""
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError:
        return None
    if not host or PLACEHOLDER.search(parts.netloc.rsplit("@", 1)[-1]):
        return None
    try:
        ipaddress.ip_address(host)
    except ValueError:
        if not _HOST_NAME.fullmatch(host):
            return None
    return f"{host}:{port}" if port else host


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
