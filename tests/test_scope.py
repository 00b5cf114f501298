"""The crawler's scope and link guards, with plain values: nothing here sends a packet.

Which addresses are refused is checked with ``ipaddress`` values alone; the DNS path with
``localhost``, which the resolver answers from /etc/hosts. Hostile hrefs are fuzzed through
the spiders' list parsing, the extractor's attachment links and the pipeline's request building.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys

import pytest
import scrapy
from hypothesis import HealthCheck, given
from hypothesis import settings as fuzz_settings
from hypothesis import strategies as st

from crawler.extract import extract_notice
from crawler.items import ORIGINAL_URL, ROLE, FetchErrorItem
from crawler.middlewares import MAPPED_URL, ScopeMiddleware
from crawler.scope import OutOfScope, Scope, address_kind, address_refusal
from spiders.base import _fetchable
from spiders.registry import RegistryError, SourceConfig, load_sources
from tests.conftest import ROOT
from tests.test_spiders_lists import SH_LIST, downloaded
from tests.test_spiders_lists import settings as settings
from tests.test_spiders_lists import spider_for as spider_for

HOST = "jtw.sh.gov.cn"
SCOPE = Scope.of(HOST, [f"https://{HOST}/zxzfxx/index.html", "http://xxgk.sh.gov.cn/list"], ["files.sh.gov.cn"],
                 mapped=[HOST])
# Hrefs real pages hold, or attackers write: schemes, broken hosts and ports, control characters.
HOSTILE_HREFS = [" JAVASCRIPT:alert(1)//a.pdf", "http://[::1:bad/x.pdf", "http://[::1:bad/x.html", "file:///etc/passwd",
                 "data:application/pdf,%25PDF/x.pdf", "http://a:99999/x.pdf", "http://a:port/x.html", "//[/x.html",
                 "\x00http://x/\x00.pdf", "http://%zz/x.pdf", "http://例子.测试/x.pdf", "\u202ehttp://x/a.pdf"]
hrefs = st.one_of(st.sampled_from(HOSTILE_HREFS), st.text(max_size=60),
                  st.builds("".join, st.lists(st.sampled_from(["http:", "//", "[", "]", ":", "::1", "%", "/", "?",
                                                               "#", "a.pdf", "x.html", "9999999", " ", "\t"]),
                                              max_size=10)))


@pytest.mark.parametrize(("address", "kind"), [
    ("10.0.0.1", "private"), ("192.168.1.1", "private"), ("169.254.169.254", "link-local"), ("127.0.0.1", "loopback"),
    ("::1", "loopback"), ("224.0.0.1", "multicast"), ("0.0.0.0", "unspecified"), ("::ffff:10.1.2.3", "private"),
    ("fe80::1%eth0", "link-local"), ("100.64.0.1", "non-public"), ("202.96.209.5", None), ("2400:da00::6666", None),
])
def test_an_address_is_refused_by_its_kind(address: str, kind: str | None) -> None:
    assert address_kind(address) == kind


def test_a_name_is_judged_by_every_address_it_resolves_to() -> None:
    resolved = {"mixed.example": ["202.96.209.5", "10.0.0.1"], "public.example": ["202.96.209.5"]}
    assert address_refusal("mixed.example", resolved.__getitem__).startswith(
        "mixed.example resolves to 10.0.0.1, a private address")
    assert address_refusal("public.example", resolved.__getitem__) is None
    assert address_refusal("169.254.169.254", resolved.__getitem__).startswith("169.254.169.254 a link-local address")

    def unresolvable(host: str) -> list[str]:
        raise OSError("Name or service not known")

    assert address_refusal("intranet.invalid", unresolvable) is None  # the download fails on it, and says so


def test_localhost_resolves_to_loopback_and_is_refused() -> None:
    refusal = address_refusal("localhost")
    assert "localhost resolves to" in refusal and "loopback address" in refusal


@pytest.mark.parametrize(("url", "files", "reason"), [
    (f"https://{HOST}/zxzfxx/a.html", False, None),
    ("http://XXGK.sh.gov.cn/a.html", False, None),  # a column's host is the source's own
    ("https://files.sh.gov.cn/a.pdf", True, None),
    ("https://files.sh.gov.cn/a.html", False, "files.sh.gov.cn is not one of the source's own hosts"),
    ("http://127.0.0.1:9/x.pdf", True, "127.0.0.1 is not one of the source's own or file hosts"),
    ("https://jtj.gz.gov.cn/a.html", False, "jtj.gz.gov.cn is not one of the source's own hosts"),
    ("file:///etc/passwd", True, "file: URLs are not fetched (http and https only)"),
    ("data:application/pdf,%25PDF/x.pdf", True, "data: URLs are not fetched"),
    ("ftp://jtw.sh.gov.cn/a.pdf", True, "ftp: URLs are not fetched"),
    ("javascript:alert(1)//a.pdf", True, "javascript: URLs are not fetched"),
    ("http://[::1:bad/x.pdf", True, "a malformed URL (Invalid IPv6 URL)"),
    ("http://jtw.sh.gov.cn:99999/x.pdf", True, "a malformed URL (Port out of range"),
])
def test_scope_by_scheme_and_host(url: str, files: bool, reason: str | None) -> None:
    refusal = SCOPE.refusal(url, files=files)
    assert refusal == reason if reason is None else refusal.startswith(reason)


class _Spider:
    """What the scope middleware reads of a spider: its crawl context's registry entry."""

    class context:
        source = SourceConfig("shanghai", "上海市交通委员会", HOST, "shanghai_ivs", (f"https://{HOST}/zxzfxx/index.html",),
                              file_hosts=("files.sh.gov.cn",))


def _middleware() -> ScopeMiddleware:
    def no_dns(host: str) -> list[str]:
        raise AssertionError(f"{host} was looked up")

    middleware = ScopeMiddleware({HOST: "http://127.0.0.1:8001/" + HOST}, no_dns)
    middleware.spider_opened(_Spider())
    return middleware


def test_the_middleware_refuses_with_the_reason_and_judges_a_retry_by_its_real_url() -> None:
    middleware = _middleware()
    with pytest.raises(OutOfScope, match=r"out of scope: 127\.0\.0\.1 is not one of the source's own hosts"):
        asyncio.run(middleware.process_request(scrapy.Request("http://127.0.0.1:8002/evil.html")))
    with pytest.raises(OutOfScope, match="file: URLs are not fetched"):
        asyncio.run(middleware.process_request(scrapy.Request("file:///etc/passwd", meta={ROLE: "attachment"})))
    # A mapped host is trusted (no lookup); a retry of a mapped request is judged by its real URL.
    real, mapped = f"https://{HOST}/zxzfxx/a.html", "http://127.0.0.1:8001/jtw.sh.gov.cn/zxzfxx/a.html"
    assert asyncio.run(middleware.process_request(scrapy.Request(real))) is None
    retry = scrapy.Request(mapped, meta={MAPPED_URL: mapped, ORIGINAL_URL: real})
    assert asyncio.run(middleware.process_request(retry)) is None
    with pytest.raises(OutOfScope, match=r"files\.sh\.gov\.cn is not one of the source's own hosts"):
        asyncio.run(middleware.process_request(scrapy.Request("https://files.sh.gov.cn/a.html")))


def test_file_hosts_in_the_registry_are_checked(tmp_path) -> None:
    entry = f'[x]\nname = "x"\nhost = "{HOST}"\nplatform = "generic"\ncolumns = ["https://{HOST}/"]\n'
    (tmp_path / "good.toml").write_text(entry + 'file_hosts = ["files.sh.gov.cn"]\n', encoding="utf-8")
    assert load_sources(tmp_path / "good.toml")["x"].file_hosts == ("files.sh.gov.cn",)
    (tmp_path / "bad.toml").write_text(entry + 'file_hosts = "files.sh.gov.cn"\n', encoding="utf-8")
    with pytest.raises(RegistryError, match=r"\[x\] file_hosts must be a list of strings"):
        load_sources(tmp_path / "bad.toml")


# Fuzzing: whatever a page's links hold, nothing raises and the other rows stay.

FUZZ = fuzz_settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
GOOD = [f"{SH_LIST}20241220/8e0c3a170525d10b933b9970556dbb1e.html",
        f"{SH_LIST}20241206/89d8d1d56a4432e837870b1cb3dc0ac6.html"]


def _list_page(href: str) -> bytes:
    rows = [f'<li><a href="{GOOD[0]}" title="第一条通知">第一条</a><span class="time">2024-12-20</span></li>',
            f'<li><a href="{html_escape(href)}" title="恶意链接">恶意</a><span class="time">2024-12-10</span></li>',
            f'<li><a href="{GOOD[1]}" title="第二条通知">第二条</a><span class="time">2024-12-06</span></li>']
    return (f'<html><body><ul class="pageList">{"".join(rows)}</ul>'
            f'<a href="{html_escape(href)}">下一页</a></body></html>').encode()


def html_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")


def test_hostile_hrefs_on_a_list_page_never_lose_its_other_rows(spider_for) -> None:
    spider = spider_for("shanghai")

    @FUZZ
    @given(hrefs)
    def check(href: str) -> None:
        response = downloaded(f"{SH_LIST}index.html", _list_page(href))
        assert all(url in [entry.url for entry in spider.list_entries(response)] for url in GOOD)
        out = list(spider.parse_list(response))
        assert all(url in spider.known for url in GOOD)  # requested, now or for an earlier example
        for item in out:
            assert isinstance(item, scrapy.Request | FetchErrorItem)
            if isinstance(item, FetchErrorItem):
                assert item.kind == "bad-link" and "malformed" in item.message

    check()


def test_a_malformed_list_link_is_recorded_and_the_page_read_on(spider_for) -> None:
    spider = spider_for("shanghai")
    bad = "http://[::1:bad/zxzfxx/20241210/0123456789abcdef0123456789abcdef.html"
    out = list(spider.parse_list(downloaded(f"{SH_LIST}index.html", _list_page(bad))))
    assert [item.url for item in out if isinstance(item, scrapy.Request)][:2] == GOOD
    errors = [(item.url, item.kind) for item in out if isinstance(item, FetchErrorItem)]
    assert (bad, "bad-link") in errors and any(url.startswith("http://[::1:bad") for url, _ in errors)


def test_a_list_page_of_100000_links_follows_500_and_records_the_cap(spider_for) -> None:
    spider = spider_for("shanghai")
    row = '<li><a href="{}20250101/{:032x}.html">链接</a><span class="time">2025-01-01</span></li>'
    rows = "".join(row.format(SH_LIST, index) for index in range(100_000))
    out = list(spider.parse_list(downloaded(f"{SH_LIST}index.html", f'<ul class="pageList">{rows}</ul>'.encode())))
    requests = [item for item in out if isinstance(item, scrapy.Request)]
    [cap] = [item for item in out if isinstance(item, FetchErrorItem)]
    assert len(requests) == 500 and requests[-1].url == f"{SH_LIST}20250101/{499:032x}.html"
    assert cap.kind == "cap" and cap.message == ("more than 500 notice links; only the first 500 are followed "
                                                 "(ZWGK_MAX_LIST_LINKS)")


@FUZZ
@given(hrefs)
def test_hostile_attachment_hrefs_never_lose_the_notice_or_its_other_files(href: str) -> None:
    page = (f'<html><head><title>关于印发工作要点的通知</title></head><body><div id="ivs_content"><p>正文内容。</p>'
            f'<a href="/cmsres/a.pdf">甲</a><a href="{html_escape(href)}">乙.pdf</a><a href="/cmsres/b.docx">丙</a>'
            f'</div></body></html>').encode()
    notice = extract_notice(page, f"https://{HOST}/zxzfxx/20241220/a.html")
    urls = [link.url for link in notice.attachments]
    assert f"https://{HOST}/cmsres/a.pdf" in urls and f"https://{HOST}/cmsres/b.docx" in urls


@FUZZ
@given(hrefs)
def test_a_link_becomes_a_request_or_a_value_error_and_scope_always_answers(href: str) -> None:
    """The pipeline's guard: building an attachment's request raises nothing but ValueError, and the
    scope check gives an answer for any text."""
    with contextlib.suppress(ValueError):
        scrapy.Request(href.strip())
    assert SCOPE.refusal(href) is None or isinstance(SCOPE.refusal(href), str)
    assert isinstance(_fetchable(href), bool)


def test_tldextract_reads_its_bundled_list_and_never_fetches(tmp_path) -> None:
    """Scrapy's cookie handling asks tldextract for public suffixes; with an empty cache it would
    download the list. Every lookup and connection of the process is caught and counted."""
    probe = """
import socket, sys
attempts = []
def refuse(*args, **kwargs):
    attempts.append(args[:2])
    raise OSError("no network in this test")
socket.getaddrinfo = socket.create_connection = refuse
socket.socket.connect = lambda self, address: refuse(address)
if sys.argv[1] == "zwgk":
    import crawler.middlewares  # noqa: F401
from scrapy.downloadermiddlewares.cookies import _is_public_domain
print(_is_public_domain("gov.cn"), _is_public_domain("sh.gov.cn"), _is_public_domain("jtw.sh.gov.cn"), len(attempts))
"""
    def attempts(mode: str) -> int:
        env = {**os.environ, "TLDEXTRACT_CACHE": str(tmp_path / mode), "PYTHONWARNINGS": "ignore"}
        env.pop("TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS", None)  # as a user's environment has it
        result = subprocess.run([sys.executable, "-c", probe, mode], capture_output=True, text=True, env=env,
                                cwd=ROOT, timeout=120)
        assert result.returncode == 0, result.stderr
        assert result.stdout.split()[:3] == ["True", "False", "False"]  # gov.cn is a public suffix, sh.gov.cn not
        return int(result.stdout.split()[-1])

    assert attempts("zwgk") == 0
    assert attempts("scrapy-alone") > 0  # the test can fail: without zwgk's setting, tldextract tries
