"""The crawl of one source that workers share, as Redis holds it: joining, seeding, totals, finishing.

Every change to a crawl's keys is one of the Lua scripts in scripts/, so each is one step
however many workers act at once.
"""

from __future__ import annotations

import functools
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable, Mapping
from importlib import resources
from typing import Any

from redis import Redis
from redis.typing import EncodableT
from scrapy.crawler import Crawler
from scrapy_redis.connection import get_redis

from archive import Archive
from archive.leases import Lease
from crawler.context import CrawlOptions, context_of
from spiders.registry import SourceConfig

logger = logging.getLogger(__name__)

# An abandoned crawl's fingerprints go after a week (a finished crawl deletes them at once).
SEEN_TTL = 7 * 24 * 3600
# How long a worker waits for another to finish starting the crawl it joins.
JOIN_TIMEOUT = 60.0
# The scripts that first check that the crawl is still the one the worker joined (scripts/same_crawl.lua).
GUARDED_SCRIPTS = ("pop", "push", "defer", "acknowledge", "beat", "claim_seeding", "claim_finish")
SCRIPTS = (*GUARDED_SCRIPTS, "leave", "release", "finished")


@functools.cache
def script(name: str) -> str:
    """The text of scripts/NAME.lua, behind the same-crawl check if it acts on a crawl."""
    text = (resources.files(__package__) / "scripts" / f"{name}.lua").read_text(encoding="utf-8")
    return script("same_crawl") + text if name in GUARDED_SCRIPTS else text


def text_of(reply: bytes | str) -> str:
    """A Redis reply as text (redis-py types replies as either: bytes, unless decode_responses is set)."""
    return reply.decode() if isinstance(reply, bytes) else reply


def new_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def connect(url: str) -> Redis:
    """The shared Redis, with scrapy-redis's connection defaults; fails at once if it does not answer."""
    server = get_redis(url=url)
    server.ping()
    return server


class SharedCrawl:
    """The crawl of one source that workers share, as Redis holds it."""

    def __init__(self, redis: Redis, prefix: str, source: str, worker: str, worker_timeout: float) -> None:
        self.redis, self.source, self.worker, self.worker_timeout = redis, source, worker, worker_timeout
        self.key = f"{prefix}:crawl:{source}"
        self.crawls_key = f"{prefix}:crawls"
        self.queue_key = f"{self.key}:requests"
        self.workers_key = f"{self.key}:workers"
        self.inflight_prefix = f"{self.key}:inflight:"
        self.starting_key = f"{self.key}:starting"
        self.deferred_key = f"{self.key}:deferred"
        self.heartbeat_prefix = f"{prefix}:worker:"
        self.crawl_id = ""
        self.run_id = 0
        self.finished_here = False
        self._scripts = {name: redis.register_script(script(name)) for name in SCRIPTS}

    @staticmethod
    def of(crawler: Crawler) -> SharedCrawl | None:
        """The shared crawl a crawler takes part in (None for a crawl of its own), as its context says."""
        return context_of(crawler).shared

    def seen_key_of(self, crawl_id: str) -> str:
        return f"{self.key}:seen:{crawl_id}"

    @property
    def seen_key(self) -> str:
        return self.seen_key_of(self.crawl_id)

    @property
    def inflight_key(self) -> str:
        return self.inflight_prefix + self.worker

    @property
    def lease_holder(self) -> str:
        return f"distributed crawl {self.crawl_id[:12]}"

    def _run(self, script: str, keys: list[str], *args: EncodableT) -> Any:
        """Run one of the crawl's scripts, with the crawl's hash and id first; its reply (untyped in redis-py)."""
        return self._scripts[script](keys=[self.key, *keys], args=[self.crawl_id, *args])

    # Joining and leaving

    def join(self, archive: Archive, source: SourceConfig, full: bool, revisit: bool, lease_ttl: float,
             on_lease_lost: Callable[[], None], start: bool = True) -> Lease | None:
        """Join the crawl under way, or start one (unless not ``start``: then None); return the
        source's lease, held under the crawl's name.

        Raises LeaseTaken when a crawl outside the cluster holds the source.
        """
        deadline = time.monotonic() + JOIN_TIMEOUT
        while True:
            crawl = self._read()
            if crawl and not self._is_stale(crawl, archive):
                self.crawl_id, self.run_id = crawl["id"], int(crawl["run"])
                return self._enter(archive, lease_ttl, on_lease_lost)
            if not start:
                return None
            if self.redis.set(self.starting_key, self.worker, nx=True, ex=int(JOIN_TIMEOUT)):
                try:
                    crawl = self._read()
                    if crawl and not self._is_stale(crawl, archive):
                        continue
                    self.forget(crawl.get("id", ""))
                    return self._start(archive, source, full, revisit, lease_ttl, on_lease_lost)
                finally:
                    self.release_seeding()
            if time.monotonic() > deadline:
                raise TimeoutError(f"another worker has been starting the crawl of {self.source} for "
                                   f"{JOIN_TIMEOUT:.0f} s; is Redis or the archive stuck?")
            time.sleep(0.2)

    def _read(self) -> dict[str, str]:
        return {text_of(key): text_of(value) for key, value in self.redis.hgetall(self.key).items()}

    @staticmethod
    def _is_stale(crawl: Mapping[str, str], archive: Archive) -> bool:
        """A crawl whose run is over (finished, or closed as abandoned) is not joined but replaced."""
        return "finished_by" in crawl or archive.run_status(int(crawl.get("run") or 0)) != "running"

    def _start(self, archive: Archive, source: SourceConfig, full: bool, revisit: bool, lease_ttl: float,
               on_lease_lost: Callable[[], None]) -> Lease:
        self.crawl_id = uuid.uuid4().hex
        lease = Lease(archive, f"crawl:{self.source}", lease_ttl, holder=self.lease_holder, on_lost=on_lease_lost)
        lease.acquire()
        archive.close_abandoned_runs(source.key)
        archive.ensure_source(source.key, source.name, source.host, source.platform, source.level, source.region)
        self.run_id = archive.start_run(source.key)
        with self.redis.pipeline() as pipe:
            pipe.hset(self.key, mapping={"id": self.crawl_id, "run": self.run_id, "seeded": 0,
                                         "full": int(full), "revisit": int(revisit), "started_by": self.worker})
            pipe.sadd(self.crawls_key, self.source)
            pipe.execute()
        self.beat()
        logger.info("started the distributed crawl of %s (run %s)", self.source, self.run_id)
        return lease

    def _enter(self, archive: Archive, lease_ttl: float, on_lease_lost: Callable[[], None]) -> Lease:
        lease = Lease(archive, f"crawl:{self.source}", lease_ttl, holder=self.lease_holder, on_lost=on_lease_lost)
        lease.acquire()
        self.beat()
        return lease

    def options(self) -> CrawlOptions:
        """The --full and --revisit of the worker that started the crawl: every worker follows them."""
        crawl = self._read()
        return CrawlOptions(full=crawl.get("full") == "1", revisit=crawl.get("revisit") == "1")

    def leave(self) -> None:
        """This worker stops: what it still holds goes back on the queue."""
        self._run("leave", [self.queue_key, self.inflight_key, self.workers_key], self.worker)

    def forget(self, crawl_id: str) -> None:
        """Remove a crawl's state from Redis (its run is over)."""
        workers = [text_of(worker) for worker in self.redis.smembers(self.workers_key)]
        with self.redis.pipeline() as pipe:
            if crawl_id:
                pipe.delete(self.seen_key_of(crawl_id))
            pipe.delete(self.queue_key, self.workers_key, self.deferred_key, self.key,
                        *(self.inflight_prefix + worker for worker in workers))
            pipe.srem(self.crawls_key, self.source)
            pipe.execute()

    # While crawling

    def beat(self) -> int:
        """Say this worker is alive; put back what silent workers held (how many requests)."""
        return int(self._run("beat", [self.queue_key, self.workers_key, self.seen_key], self.worker,
                             max(1, round(self.worker_timeout)), self.heartbeat_prefix, self.inflight_prefix,
                             SEEN_TTL) or 0)

    def claim_seeding(self) -> bool:
        """Whether this worker is to seed the queue now (nobody has, nobody is)."""
        return bool(self._run("claim_seeding", [self.starting_key], self.worker, max(1, round(self.worker_timeout))))

    def keep_seeding(self) -> None:
        """A long seeding keeps its lock and this worker's heartbeat."""
        self.redis.expire(self.starting_key, max(1, round(self.worker_timeout)))
        self.beat()

    def release_seeding(self) -> None:
        self._scripts["release"](keys=[self.starting_key], args=[self.worker])

    def pop(self) -> bytes | None:
        return self._run("pop", [self.queue_key, self.inflight_key, self.workers_key], self.worker) or None

    def push(self, payload: bytes, score: int, fingerprint: bytes = b"") -> bool:
        """Queue a request, unless a fingerprint is given and the crawl has seen it (or the crawl is over)."""
        return bool(self._run("push", [self.queue_key, self.seen_key], score, payload, fingerprint, SEEN_TTL))

    def defer(self, fingerprint: bytes, payload: bytes) -> None:
        """Hold a request back until everything else is done; it is then fetched unless seen meanwhile."""
        self._run("defer", [self.deferred_key], fingerprint, payload)

    def acknowledge(self, done: list[bytes], counts: Mapping[str, int], first_error: str | None,
                    seeded: bool = False) -> None:
        """Requests this worker is done with leave its in-flight hash, with the counts they added."""
        self._run("acknowledge", [self.inflight_key], "1" if seeded else "", first_error or "", len(counts),
                  *counts.keys(), *counts.values(), *done)

    def finished(self) -> bool:
        return bool(self._run("finished", [self.queue_key, self.workers_key, self.seen_key, self.deferred_key],
                              self.inflight_prefix))

    def is_current(self) -> bool:
        return self.redis.hget(self.key, "id") == self.crawl_id.encode()

    def claim_finish(self) -> bool:
        """Whether this worker is the one to finish the run (the first to ask, once the crawl is over)."""
        self.finished_here = bool(self._run("claim_finish", [], self.worker))
        return self.finished_here

    def totals(self) -> dict[str, int | str]:
        """The counts every worker added, and the first error any of them met."""
        crawl = self._read()
        totals: dict[str, int | str] = {name.removeprefix("count:"): int(value)
                                        for name, value in crawl.items() if name.startswith("count:")}
        if "first_error" in crawl:
            totals["first_error"] = crawl["first_error"]
        return totals
