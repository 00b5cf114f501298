"""Downloader middlewares: the crawl's scope, host remapping, response decoding, retries with backoff,
the User-Agent."""

from __future__ import annotations

import json
import random
from urllib.parse import urlsplit

from scrapy import Request, Spider, signals
from scrapy.crawler import Crawler
from scrapy.downloadermiddlewares.retry import get_retry_request
from scrapy.downloadermiddlewares.useragent import UserAgentMiddleware
from scrapy.exceptions import NotConfigured
from scrapy.http import Response, TextResponse
from scrapy.utils.defer import maybe_deferred_to_future
from scrapy.utils.misc import load_object
from scrapy.utils.response import response_status_message
from twisted.internet.task import deferLater
from twisted.internet.threads import deferToThread

from crawler.extract.encoding import detect_encoding
from crawler.items import ORIGINAL_URL, ROLE
from crawler.scope import OutOfScope, Resolve, Scope, address_refusal, system_resolve
from spiders.base import NoticeSpider

MAPPED_URL = "zwgk_mapped_url"
RETRY_DELAY = "zwgk_retry_delay"


def parse_host_map(value: object) -> dict[str, str]:
    """HOST_MAP as a dict, whether it came as a dict or as JSON text (from -s or the environment)."""
    if not value:
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as error:
            raise ValueError(f"HOST_MAP is not valid JSON: {error}") from error
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise ValueError('HOST_MAP must map host names to base URLs: {"host": "http://127.0.0.1:8001/host"}')
    return {host.lower(): base.rstrip("/") for host, base in value.items()}


class HostMapMiddleware:
    """Send requests for a mapped host to its base URL; hand the response back under the real URL.

    The archive therefore only ever stores real URLs, while the bytes come from a
    mirror, a proxy or a fixture site on loopback.
    """

    def __init__(self, host_map: dict[str, str]) -> None:
        self.host_map = host_map

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> HostMapMiddleware:
        host_map = parse_host_map(crawler.settings.get("HOST_MAP"))
        if not host_map:
            raise NotConfigured
        return cls(host_map)

    def mapped_url(self, url: str) -> str | None:
        parts = urlsplit(url)
        base = self.host_map.get((parts.hostname or "").lower())
        if base is None:
            return None
        return base + (parts.path or "/") + (f"?{parts.query}" if parts.query else "")

    def process_request(self, request: Request) -> Request | None:
        # Every request for a mapped host is mapped, redirects to an absolute real URL included;
        # a request that is already the mapped form passes on.
        if request.url == request.meta.get(MAPPED_URL):
            return None
        target = self.mapped_url(request.url)
        if target is None:
            return None
        # robots.txt was already checked for the real URL; the mapped host's own does not apply.
        meta = {**request.meta, ORIGINAL_URL: request.url, MAPPED_URL: target, "dont_obey_robotstxt": True}
        return request.replace(url=target, meta=meta)

    def process_response(self, request: Request, response: Response) -> Response:
        if request.meta.get(MAPPED_URL) == request.url and response.url == request.url:
            return response.replace(url=request.meta[ORIGINAL_URL])
        return response


class ScopeMiddleware:
    """Refuse every request outside its source's scope (crawler.scope), raising OutOfScope with the reason.

    It comes first in the chain, before robots.txt is asked for, and sees every request: list and
    detail pages, attachments, robots.txt, and redirects (which Scrapy schedules as new requests).
    A request HostMapMiddleware has already mapped (a retry) is judged by its real URL.
    """

    def __init__(self, host_map: dict[str, str], resolve: Resolve = system_resolve) -> None:
        self.mapped = frozenset(host_map)
        self.resolve = resolve
        self.scope = Scope(frozenset())  # nothing is in scope until the source is known
        self.addresses: dict[str, str | None] = {}  # host -> why its address is refused (None: it is not)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> ScopeMiddleware:
        middleware = cls(parse_host_map(crawler.settings.get("HOST_MAP")))
        crawler.signals.connect(middleware.spider_opened, signal=signals.spider_opened)
        return middleware

    def spider_opened(self, spider: NoticeSpider) -> None:
        source = spider.context.source
        self.scope = Scope.of(source.host, source.columns, source.file_hosts, self.mapped)

    async def process_request(self, request: Request) -> None:
        url = request.meta[ORIGINAL_URL] if request.url == request.meta.get(MAPPED_URL) else request.url
        files = request.meta.get(ROLE) == "attachment" or _is_robots_txt(request)
        reason = self.scope.refusal(url, files=files)
        host = urlsplit(url).hostname or ""
        if reason is None and not self.scope.trusts(host):
            if host not in self.addresses:
                self.addresses[host] = await maybe_deferred_to_future(deferToThread(address_refusal, host,
                                                                                    self.resolve))
            reason = self.addresses[host]
        if reason is not None:
            raise OutOfScope(f"out of scope: {reason}")


def _is_robots_txt(request: Request) -> bool:
    """Scrapy's own request for a host's robots.txt (made for a request already in scope)."""
    return bool(request.meta.get("dont_obey_robotstxt")) and urlsplit(request.url).path == "/robots.txt"


class ResponseEncodingMiddleware:
    """Decode HTML by its bytes, not by a missing or lying charset (see crawler.extract.encoding)."""

    def process_response(self, request: Request, response: Response) -> Response:
        if not isinstance(response, TextResponse) or not response.body:
            return response
        content_type = (response.headers.get(b"Content-Type") or b"").decode("latin-1")
        encoding = detect_encoding(response.body, content_type)
        return response.replace(encoding=encoding) if encoding != response.encoding else response


class BackoffRetryMiddleware:
    """Scrapy's retries, made by its ``get_retry_request`` (RETRY_HTTP_CODES, RETRY_EXCEPTIONS, RETRY_TIMES
    or the ``max_retry_times`` meta key, ``dont_retry``), each one waiting longer: base × 2^(attempt-1),
    with jitter, up to a cap."""

    def __init__(self, http_codes: set[int], exceptions: tuple[type[Exception], ...], backoff_base: float,
                 backoff_max: float) -> None:
        self.http_codes = http_codes
        self.exceptions = exceptions
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.spider: Spider | None = None  # get_retry_request counts and logs against it

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> BackoffRetryMiddleware:
        settings = crawler.settings
        if not settings.getbool("RETRY_ENABLED"):
            raise NotConfigured
        middleware = cls({int(code) for code in settings.getlist("RETRY_HTTP_CODES")},
                         tuple(load_object(name) if isinstance(name, str) else name
                               for name in settings.getlist("RETRY_EXCEPTIONS")),
                         settings.getfloat("ZWGK_RETRY_BACKOFF_BASE"), settings.getfloat("ZWGK_RETRY_BACKOFF_MAX"))
        crawler.signals.connect(middleware.spider_opened, signal=signals.spider_opened)
        return middleware

    def spider_opened(self, spider: Spider) -> None:
        self.spider = spider

    def process_response(self, request: Request, response: Response) -> Request | Response:
        if response.status in self.http_codes and not request.meta.get("dont_retry"):
            return self.retry(request, response_status_message(response.status)) or response
        return response

    def process_exception(self, request: Request, exception: Exception) -> Request | None:
        if isinstance(exception, self.exceptions) and not request.meta.get("dont_retry"):
            return self.retry(request, exception)
        return None

    def retry(self, request: Request, reason: str | Exception) -> Request | None:
        """The request again, after a delay that doubles with each attempt; None once retries are spent."""
        if self.spider is None:
            raise RuntimeError("a request is retried only once its spider has opened")
        retry = get_retry_request(request, spider=self.spider, reason=reason)
        if retry is not None:
            delay = min(self.backoff_max, self.backoff_base * 2 ** (retry.meta["retry_times"] - 1))
            retry.meta[RETRY_DELAY] = delay * random.uniform(0.8, 1.2)
        return retry

    async def process_request(self, request: Request) -> None:
        delay = request.meta.pop(RETRY_DELAY, None)
        if delay:
            from twisted.internet import (
                reactor,  # the reactor Scrapy installed, not a default one
            )

            await maybe_deferred_to_future(deferLater(reactor, delay, lambda: None))


class RobotsTxtTimeoutMiddleware:
    """Ask for robots.txt once, briefly: a dead site should fail on its pages, not on robots.txt retries."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> RobotsTxtTimeoutMiddleware:
        return cls(crawler.settings.getfloat("ZWGK_ROBOTSTXT_TIMEOUT"))

    def process_request(self, request: Request) -> None:
        if _is_robots_txt(request):
            request.meta.setdefault("download_timeout", self.timeout)
            request.meta.setdefault("dont_retry", True)


class ContactUserAgentMiddleware(UserAgentMiddleware):
    """The User-Agent names zwgk and the operator's contact URL (ZWGK_CONTACT_URL)."""

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> ContactUserAgentMiddleware:
        template = crawler.settings.get("USER_AGENT")
        middleware = cls(template.replace("{contact}", crawler.settings.get("ZWGK_CONTACT_URL")))
        crawler.signals.connect(middleware.spider_opened, signal=signals.spider_opened)
        return middleware
