"""Canonical document URLs: http/https, a ``www.`` prefix and trailing noise are the same document."""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urlsplit

_TRACKING_PREFIX = "utm_"
# Guangdong's NFCMS portal and its gkmlpt catalogue publish one post under two paths
# (/zwgg/tzgg/content/post_123.html and /gkmlpt/content/0/0/post_123.html): one notice.
_NFCMS_POST = re.compile(r"/content/(?:\d+/\d+/)?post_(\d+)\.html$")


def canonical_url(url: str) -> str:
    """The key one notice is archived under, whatever link led to it.

    ``https://www.jtw.sh.gov.cn:443/a/b.html?#top`` and ``http://jtw.sh.gov.cn/a/b.html``
    are both ``//jtw.sh.gov.cn/a/b.html``; query parameters are sorted and ``utm_*``
    tracking parameters dropped; the two paths of a Guangdong NFCMS post (portal and
    gkmlpt) are one ``//host/post_ID``. Never raises: a malformed port is kept as written.
    """
    parts = urlsplit(url.strip())
    host = (parts.hostname or "").lower().rstrip(".")
    if host.startswith("www."):
        host = host[4:]
    try:
        port = parts.port
    except ValueError:  # a port out of range or not a number
        port_text = parts.netloc.rpartition(":")[2]
        host = f"{host}:{port_text}"
    else:
        if port and port not in (80, 443):
            host = f"{host}:{port}"
    query = sorted((k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
                   if not k.lower().startswith(_TRACKING_PREFIX))
    path = parts.path or "/"
    if (post := _NFCMS_POST.search(path)) and not query:
        path = f"/post_{post.group(1)}"
    return f"//{host}{path}" + (f"?{urlencode(query)}" if query else "")
