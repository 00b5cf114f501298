"""The crawl's DNS resolver (crawler.resolver): its decision on a stubbed lookup, and end to end
through Scrapy's own connection, against a loopback canary server."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from scrapy.resolver import CachingThreadedResolver
from twisted.internet import defer
from twisted.python.failure import Failure

from crawler.resolver import RefusedAddress, ScopedResolver, mapped_targets
from tests.fixtures.server import FixtureServer

MAP = {"jtw.sh.gov.cn": "http://127.0.0.1:8001/jtw.sh.gov.cn", "jtj.gz.gov.cn": "http://Mirror.example:8002/gz"}


def lookup(monkeypatch: pytest.MonkeyPatch, name: str, answer: str) -> str | Failure:
    """What the resolver gives for ``name`` when the system lookup answers ``answer``."""
    monkeypatch.setattr(CachingThreadedResolver, "getHostByName", lambda self, name, timeout=(): defer.succeed(answer))
    resolver = ScopedResolver(reactor=None, cache_size=0, timeout=1.0, allowed=mapped_targets(MAP))
    results: list[str | Failure] = []
    resolver.getHostByName(name).addBoth(results.append)
    return results[0]


def test_mapped_targets_are_the_hosts_of_the_base_urls() -> None:
    assert mapped_targets(MAP) == {"127.0.0.1", "mirror.example"}
    assert mapped_targets({}) == frozenset()


@pytest.mark.parametrize(("name", "answer", "kind"), [
    ("intranet.example", "10.0.0.1", "private"),
    ("metadata.example", "169.254.169.254", "link-local"),
    ("rebound.example", "127.0.0.1", "loopback"),
    ("zero.example", "0.0.0.0", "unspecified"),
    ("shared.example", "100.64.0.1", "non-public"),
    ("10.1.2.3", "10.1.2.3", "private"),  # an IP literal goes through the same rule
])
def test_a_non_public_answer_fails_the_lookup_and_says_why(monkeypatch: pytest.MonkeyPatch, name: str,
                                                           answer: str, kind: str) -> None:
    result = lookup(monkeypatch, name, answer)
    assert isinstance(result, Failure) and result.check(RefusedAddress)
    message = result.getErrorMessage()
    assert f"a {kind} address" in message and name in message and "HOST_MAP" in message


@pytest.mark.parametrize(("name", "answer"), [
    ("www.gov.cn", "93.184.216.34"),  # a public address
    ("127.0.0.1", "127.0.0.1"),  # HOST_MAP's target
    ("MIRROR.example", "192.168.1.5"),  # the host of a base URL, whatever its address
])
def test_a_public_answer_or_a_mapped_target_passes(monkeypatch: pytest.MonkeyPatch, name: str, answer: str) -> None:
    assert lookup(monkeypatch, name, answer) == answer


def test_the_project_installs_it() -> None:
    from crawler import settings

    assert settings.TWISTED_DNS_RESOLVER == "crawler.resolver.ScopedResolver"


PROBE = '''
    import scrapy


    class Probe(scrapy.Spider):
        """One request to ``url``: prints what came of it."""

        name = "probe"

        async def start(self):
            yield scrapy.Request(self.url, callback=self.fetched, errback=self.failed, dont_filter=True)

        def fetched(self, response):
            print("FETCHED", response.status, flush=True)

        def failed(self, failure):
            print("FAILED", failure.getErrorMessage(), flush=True)
'''


def probe(tmp_path: Path, url: str, host_map: dict[str, str]) -> str:
    """Fetch ``url`` with a bare Scrapy spider (no zwgk middleware, so no scope check) using only
    the project's resolver; return what the spider printed, then its log."""
    spider = tmp_path / "probe.py"
    spider.write_text(textwrap.dedent(PROBE), encoding="utf-8")
    settings = {"TWISTED_DNS_RESOLVER": "crawler.resolver.ScopedResolver", "HOST_MAP": json.dumps(host_map),
                "RETRY_ENABLED": "0", "TELNETCONSOLE_ENABLED": "0", "HTTPERROR_ALLOW_ALL": "1",
                "LOG_LEVEL": "WARNING"}
    command = [sys.executable, "-m", "scrapy", "runspider", str(spider), "-a", f"url={url}"]
    for name, value in settings.items():
        command += ["-s", f"{name}={value}"]
    # Run outside the repository, so that Scrapy loads none of the project's settings.
    completed = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert completed.returncode == 0, completed.stderr
    return completed.stdout + completed.stderr


@pytest.mark.slow
def test_a_name_resolving_to_loopback_never_reaches_it(tmp_path: Path) -> None:
    (tmp_path / "canary").mkdir()
    with FixtureServer(tmp_path / "canary") as canary:
        url = f"http://localhost:{urlsplit(canary.base_url).port}/secret.html"
        refused = probe(tmp_path, url, {"jtw.sh.gov.cn": "http://127.0.0.1:1/jtw.sh.gov.cn"})
        assert canary.requests == []
        assert "FAILED DNS lookup failed" in refused
        assert "DNS lookup refused: localhost resolves to 127.0.0.1, a loopback address" in refused
        # The same request, once localhost is HOST_MAP's target, does reach it: the refusal was the resolver's.
        allowed = probe(tmp_path, url, {"jtw.sh.gov.cn": f"http://localhost:{urlsplit(canary.base_url).port}/x"})
        assert "FETCHED" in allowed and [r.path for r in canary.requests] == ["/secret.html"]
