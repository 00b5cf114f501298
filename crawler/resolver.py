"""The crawl's DNS resolver: the address rule of crawler.scope, applied where Twisted connects.

ScopeMiddleware checks a host's addresses once per crawl, but the download resolves the name
again when it connects; a name that answered a public address first and a private one then
(DNS rebinding) would reach the private one. This resolver refuses every address crawler.scope
refuses, at the lookup the connection itself uses, except for the hosts of HOST_MAP's base URLs
(a fixture site or mirror on 127.0.0.1 is reached on purpose). A refused lookup fails with a
DNSLookupError that says why, and the reason is logged as a warning: Twisted's connection (its
HostnameEndpoint) replaces any lookup error with its own "no results for hostname lookup", which is
then what the request fails with and what the run records.

IP literals need no lookup (Twisted connects to them directly), so they cannot be rebound;
ScopeMiddleware refuses a non-public one by the same rule, and this resolver too when asked.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from urllib.parse import urlsplit

from scrapy.crawler import Crawler
from scrapy.resolver import CachingThreadedResolver
from twisted.internet.base import ReactorBase
from twisted.internet.defer import Deferred
from twisted.internet.error import DNSLookupError

from crawler.middlewares import parse_host_map
from crawler.scope import addresses_refusal

logger = logging.getLogger(__name__)


class RefusedAddress(DNSLookupError):
    """A lookup whose answer is an address the crawl may not connect to."""


def mapped_targets(host_map: dict[str, str]) -> frozenset[str]:
    """The hosts of HOST_MAP's base URLs ("127.0.0.1" for ``{"a.gov.cn": "http://127.0.0.1:8001/a"}``)."""
    return frozenset(host for base in host_map.values() if (host := (urlsplit(base).hostname or "").lower()))


class ScopedResolver(CachingThreadedResolver):
    """Scrapy's caching resolver, failing any lookup that answers a non-public address (see the module)."""

    def __init__(self, reactor: ReactorBase, cache_size: int, timeout: float,
                 allowed: Iterable[str] = ()) -> None:
        super().__init__(reactor, cache_size, timeout)
        self.allowed = frozenset(host.lower() for host in allowed)

    @classmethod
    def from_crawler(cls, crawler: Crawler, reactor: ReactorBase) -> ScopedResolver:
        resolver = super().from_crawler(crawler, reactor)
        resolver.allowed = mapped_targets(parse_host_map(crawler.settings.get("HOST_MAP")))
        return resolver

    def getHostByName(self, name: str, timeout: Sequence[int] = ()) -> Deferred[str]:
        lookup = super().getHostByName(name, timeout)
        if name.lower() not in self.allowed:
            lookup.addCallback(self._checked, name)
        return lookup

    @staticmethod
    def _checked(address: str, name: str) -> str:
        if reason := addresses_refusal(name, [address]):
            logger.warning("DNS lookup refused: %s", reason)
            raise RefusedAddress(reason)
        return address
