"""Canonical document URLs: http/https, a ``www.`` prefix and trailing noise are the same document."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit

_TRACKING = ("utm_", "spm", "from", "share")


def canonical_url(url: str) -> str:
    """The key one notice is archived under, whatever link led to it.

    ``https://www.jtw.sh.gov.cn:443/a/b.html?#top`` and ``http://jtw.sh.gov.cn/a/b.html``
    are both ``//jtw.sh.gov.cn/a/b.html``.
    """
    parts = urlsplit(url.strip())
    host = (parts.hostname or "").lower().rstrip(".")
    if host.startswith("www."):
        host = host[4:]
    port = parts.port
    if port and port not in (80, 443):
        host = f"{host}:{port}"
    path = parts.path or "/"
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
             if not k.lower().startswith(_TRACKING)]
    return f"//{host}{path}" + (f"?{urlencode(query)}" if query else "")
