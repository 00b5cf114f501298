"""The crawler's scope: which URLs a crawl of one source may fetch, and why another is refused.

http(s) only; the source's own hosts (its registry ``host`` and the hosts of its columns), and
for attachments also the ``file_hosts`` its registry entry allows; never a host that resolves to
a loopback, private, link-local, multicast or otherwise non-public address, unless HOST_MAP maps
it (a mapped host is trusted: its requests go to the mapped base URL). The rules are plain
functions; crawler.middlewares.ScopeMiddleware applies them to every request, and
crawler.resolver.ScopedResolver the address rule again to every lookup a download makes.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from scrapy.exceptions import IgnoreRequest

SCHEMES = ("http", "https")
# The first of these an address is, names it in the refusal; an address that is none of them
# but not global (shared, documentation, benchmarking ranges) is "non-public".
_ADDRESS_KINDS = (("loopback", "is_loopback"), ("link-local", "is_link_local"), ("multicast", "is_multicast"),
                  ("unspecified", "is_unspecified"), ("private", "is_private"), ("reserved", "is_reserved"))

Resolve = Callable[[str], Iterable[str]]


class OutOfScope(IgnoreRequest):
    """A request outside its source's scope; the message says why (it is recorded with the run)."""


def address_kind(address: str) -> str | None:
    """What kind of non-public address ``address`` is ("loopback", "private", …), None for a public one."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # an IPv6 zone (fe80::1%eth0) names no other address
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    for kind, attribute in _ADDRESS_KINDS:
        if getattr(ip, attribute):
            return kind
    return None if ip.is_global else "non-public"


def system_resolve(host: str) -> list[str]:
    """The addresses the system resolver gives ``host`` (a blocking call: run it in a thread)."""
    return sorted({str(info[4][0]) for info in socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)})


def address_refusal(host: str, resolve: Resolve = system_resolve) -> str | None:
    """Why ``host`` may not be fetched for the address it has (or resolves to); None when every address is public.

    A name that does not resolve is left to the download, which fails on it and says so.
    """
    try:
        addresses = [str(ipaddress.ip_address(host.strip("[]")))]
    except ValueError:
        try:
            addresses = list(resolve(host))
        except (OSError, UnicodeError):
            return None
    return addresses_refusal(host, addresses)


def addresses_refusal(host: str, addresses: Iterable[str]) -> str | None:
    """Why ``host`` may not be fetched at ``addresses`` (the first non-public one); None when all are public."""
    for address in addresses:
        if kind := address_kind(address):
            named = host if host.strip("[]") == address else f"{host} resolves to {address},"
            return f"{named} a {kind} address (only public addresses are fetched, or hosts HOST_MAP maps)"
    return None


@dataclass(frozen=True)
class Scope:
    """The hosts one source's crawl may ask: its own, the file hosts it allows, and those HOST_MAP maps."""

    hosts: frozenset[str]
    file_hosts: frozenset[str] = frozenset()
    mapped: frozenset[str] = frozenset()

    @classmethod
    def of(cls, host: str, columns: Iterable[str], file_hosts: Iterable[str] = (),
           mapped: Iterable[str] = ()) -> Scope:
        own = {host.lower()} | {(urlsplit(column).hostname or "").lower() for column in columns}
        return cls(frozenset(own - {""}), frozenset(name.lower() for name in file_hosts), frozenset(mapped))

    def refusal(self, url: str, files: bool = False) -> str | None:
        """Why ``url`` is out of scope by its scheme or host (None if it is not); ``files`` allows the
        file hosts too (attachments). Addresses are checked apart, as they need DNS."""
        try:
            parts = urlsplit(url)
            host = (parts.hostname or "").lower()
            parts.port  # noqa: B018 - raises on a port that is out of range or not a number
        except ValueError as error:
            return f"a malformed URL ({error})"
        if parts.scheme.lower() not in SCHEMES:
            return f"{parts.scheme or 'scheme-less'}: URLs are not fetched (http and https only)"
        if host in self.hosts or (files and host in self.file_hosts):
            return None
        allowed = "the source's own or file hosts" if files else "the source's own hosts"
        return f"{host or 'no host'} is not one of {allowed} ({', '.join(sorted(self.hosts))})"

    def trusts(self, host: str) -> bool:
        """Whether HOST_MAP maps ``host``: its address is not checked (its requests go to the mapped base URL)."""
        return host.lower() in self.mapped
