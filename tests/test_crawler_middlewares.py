"""Downloader middlewares with plain values: HOST_MAP, byte-sniffed decoding, retry backoff."""

from __future__ import annotations

import pytest
from scrapy import Request, Spider
from scrapy.http import HtmlResponse
from scrapy.utils.test import get_crawler

from crawler.middlewares import (
    ORIGINAL_URL,
    RETRY_DELAY,
    BackoffRetryMiddleware,
    HostMapMiddleware,
    ResponseEncodingMiddleware,
    parse_host_map,
)

BASE = "http://127.0.0.1:8001/jtw.sh.gov.cn"


def test_a_mapped_request_goes_to_the_base_url_and_comes_back_under_the_real_url() -> None:
    middleware = HostMapMiddleware(parse_host_map({"jtw.sh.gov.cn": BASE + "/"}))
    request = Request("https://jtw.sh.gov.cn/zxzfxx/index_2.html?a=1&b=2")
    mapped = middleware.process_request(request)
    assert mapped.url == BASE + "/zxzfxx/index_2.html?a=1&b=2"
    assert mapped.meta[ORIGINAL_URL] == request.url
    assert middleware.process_request(mapped) is None  # already mapped: passes on
    redirected = mapped.replace(url="https://jtw.sh.gov.cn/zxzfxx/elsewhere.html")  # meta carried over
    assert middleware.process_request(redirected).url == BASE + "/zxzfxx/elsewhere.html"
    response = HtmlResponse(mapped.url, body=b"<html></html>", request=mapped)
    assert middleware.process_response(mapped, response).url == request.url


def test_other_hosts_are_left_alone() -> None:
    middleware = HostMapMiddleware({"jtw.sh.gov.cn": BASE})
    assert middleware.process_request(Request("https://www.gov.cn/zhengce/")) is None


def test_host_map_from_json_text_and_clear_errors() -> None:
    assert parse_host_map('{"JTW.sh.gov.cn": "http://x/"}') == {"jtw.sh.gov.cn": "http://x"}
    assert parse_host_map("") == {}
    with pytest.raises(ValueError, match="not valid JSON"):
        parse_host_map("{oops")
    with pytest.raises(ValueError, match="must map host names"):
        parse_host_map('["jtw.sh.gov.cn"]')


def test_gbk_page_without_charset_is_read_as_gbk() -> None:
    body = "<html><head><title>湘潭市交通运输局</title></head><body>通知公告</body></html>".encode("gbk")
    response = HtmlResponse("http://x/", body=body, headers={"Content-Type": "text/html"})
    fixed = ResponseEncodingMiddleware().process_response(Request("http://x/"), response)
    assert "湘潭市交通运输局" in fixed.text


def test_gbk_page_labelled_utf8_is_read_as_gbk() -> None:
    body = '<html><head><meta charset="utf-8"></head><body>通知公告</body></html>'.encode("gbk")
    response = HtmlResponse("http://x/", body=body, headers={"Content-Type": "text/html; charset=utf-8"})
    assert "通知公告" in ResponseEncodingMiddleware().process_response(Request("http://x/"), response).text


def test_retries_back_off_exponentially_up_to_the_cap() -> None:
    crawler = get_crawler(Spider, {"RETRY_TIMES": 3, "ZWGK_RETRY_BACKOFF_BASE": 2.0, "ZWGK_RETRY_BACKOFF_MAX": 5.0})
    middleware = BackoffRetryMiddleware.from_crawler(crawler)
    middleware.spider_opened(crawler._create_spider("test"))
    request, delays = Request("http://x/"), []
    for _ in range(3):
        request = middleware.process_response(request, HtmlResponse(request.url, status=500, request=request))
        delays.append(request.meta[RETRY_DELAY])
    assert 1.6 <= delays[0] <= 2.4 and 3.2 <= delays[1] <= 4.8 and 4.0 <= delays[2] <= 6.0
    given_up = HtmlResponse(request.url, status=500, request=request)
    assert middleware.process_response(request, given_up) is given_up  # retries spent: the answer goes on
