"""The shared queue as one worker sees it: what it pops stays in its in-flight hash until acknowledged."""

from __future__ import annotations

import logging

from scrapy import Request, Spider
from scrapy.utils.request import request_from_dict
from scrapy_redis import picklecompat

from .shared import SharedCrawl

logger = logging.getLogger(__name__)


class ReliableQueue:
    """The crawl's priority queue, whose pops are held until acknowledged.

    Requests are stored as scrapy-redis stores them (Scrapy's request dict, pickled by
    scrapy_redis.picklecompat), so a queue written by scrapy-redis reads the same.
    """

    def __init__(self, crawl: SharedCrawl, spider: Spider) -> None:
        self.crawl, self.spider = crawl, spider
        self.held: dict[Request, bytes] = {}

    def encode(self, request: Request) -> bytes:
        return picklecompat.dumps(request.to_dict(spider=self.spider))

    def decode(self, payload: bytes) -> Request:
        return request_from_dict(picklecompat.loads(payload), spider=self.spider)

    def push(self, request: Request, fingerprint: bytes = b"") -> bool:
        return self.crawl.push(self.encode(request), -request.priority, fingerprint)

    def pop(self) -> Request | None:
        payload = self.crawl.pop()
        if payload is None:
            return None
        try:
            request = self.decode(payload)
        except Exception as error:  # written by another zwgk version, or for a spider method this one lacks
            logger.error("%s: a queued request could not be read (%s: %s); dropped", self.crawl.source,
                         error.__class__.__name__, error)
            self.crawl.acknowledge([payload], {}, None)
            return None
        self.held[request] = payload
        return request

    def finished_requests(self, still_in_progress: set[Request]) -> list[Request]:
        return [request for request in self.held if request not in still_in_progress]

    def forget(self, requests: list[Request]) -> None:
        for request in requests:
            del self.held[request]
