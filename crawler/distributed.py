"""One crawl shared by many workers: scrapy-redis's queue and duplicate filter, made reliable.

Every worker that runs `zwgk crawl --distributed SOURCE` (or `zwgk worker`) joins the
crawl of SOURCE under way in Redis. The first one starts it: it takes the source's
lease in the archive under the crawl's name (so a plain `zwgk crawl` of the source
waits), opens the run, and seeds the shared queue with the run's start requests. Then
every worker pops requests from the shared queue; the run is finished by the first
worker that sees the queue empty and nothing in flight anywhere.

scrapy-redis pops a request and forgets it, so a worker killed mid-request would lose
it. Here a pop moves the request into the worker's in-flight hash in one Lua step, and
it leaves that hash only once Scrapy is done with it: its response parsed, its items
archived, the requests it led to queued. Counters travel with that acknowledgement, so
the run's totals are whole when the crawl ends. The in-flight requests of a worker
whose heartbeat lapses go back on the queue.

The duplicate filter belongs to the crawl: its key names the crawl, expires, and is
deleted when the crawl is finished, so the next crawl re-checks what this one saw and
Redis holds the fingerprints of at most one crawl per source (20 bytes each).

Requests are pickled into Redis, as scrapy-redis does: whoever can write to that Redis
can run code in the workers, so it must be private to them.

Keys, under the ZWGK_REDIS_PREFIX setting:

    {prefix}:crawls                             sources with a crawl under way
    {prefix}:crawl:{source}                     the crawl: id, run, options, seeded, counters
    {prefix}:crawl:{source}:requests            the queue (scrapy-redis's sorted set by priority)
    {prefix}:crawl:{source}:seen:{id}           the duplicate filter
    {prefix}:crawl:{source}:deferred            requests held back until the queue drains (by fingerprint)
    {prefix}:crawl:{source}:workers             workers that joined
    {prefix}:crawl:{source}:inflight:{worker}   what a worker holds
    {prefix}:crawl:{source}:starting            held while a worker starts or seeds the crawl
    {prefix}:worker:{worker}                    a worker's heartbeat
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from collections.abc import Callable, Mapping

from redis import Redis
from redis.exceptions import RedisError
from scrapy import Request
from scrapy.crawler import Crawler
from scrapy.utils.defer import deferred_from_coro
from scrapy_redis.connection import get_redis
from scrapy_redis.dupefilter import RFPDupeFilter
from scrapy_redis.queue import PriorityQueue
from scrapy_redis.scheduler import Scheduler
from twisted.internet.task import LoopingCall

from archive import Archive
from archive.leases import Lease
from crawler.context import context_of
from crawler.items import DEFER
from spiders.registry import SourceConfig

logger = logging.getLogger(__name__)

# An abandoned crawl's fingerprints go after a week (a finished crawl deletes them at once).
SEEN_TTL = 7 * 24 * 3600
# How long a worker waits for another to finish starting the crawl it joins.
JOIN_TIMEOUT = 60.0

# Every script that acts on a crawl first checks that the crawl is still the one the worker
# joined (KEYS[1] the crawl's hash, ARGV[1] its id): a worker lagging behind a finished crawl
# must not pop, queue, count or seed in the next one.
_SAME_CRAWL = "if redis.call('HGET', KEYS[1], 'id') ~= ARGV[1] then return false end\n"

# Take the highest-priority request and hold it in the worker's in-flight hash, in one step; a worker
# that holds something is always among the crawl's workers (ARGV[2]).
_POP = _SAME_CRAWL + """
local item = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
if #item == 0 then return false end
redis.call('ZREM', KEYS[2], item[1])
redis.call('HSET', KEYS[3], item[1], item[2])
redis.call('SADD', KEYS[4], ARGV[2])
return item[1]
"""

# Queue a request (ARGV: score, payload), unless a fingerprint is given (ARGV[4]) and the crawl has
# seen it: the check and the push are one step, so a worker killed between them cannot leave a
# request marked seen that nobody will fetch.
_PUSH = _SAME_CRAWL + """
if ARGV[4] ~= '' then
  if redis.call('SADD', KEYS[3], ARGV[4]) == 0 then return false end
  redis.call('EXPIRE', KEYS[3], ARGV[5])
end
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[3])
return 1
"""

# Hold a request back until the rest of the crawl is done (ARGV: fingerprint, payload).
_DEFER = _SAME_CRAWL + """
redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
return 1
"""

# Requests a worker is done with leave its in-flight hash (KEYS[2]) with the counts they added.
# ARGV: id, seeded ('1' or ''), first error (or ''), the number n of counters, n names, n deltas,
# then the payloads.
_ACKNOWLEDGE = _SAME_CRAWL + """
local n = tonumber(ARGV[4])
for i = 1, n do redis.call('HINCRBY', KEYS[1], 'count:' .. ARGV[4 + i], ARGV[4 + n + i]) end
if ARGV[3] ~= '' then redis.call('HSETNX', KEYS[1], 'first_error', ARGV[3]) end
if ARGV[2] == '1' then redis.call('HSET', KEYS[1], 'seeded', 1) end
for i = 5 + 2 * n, #ARGV do redis.call('HDEL', KEYS[2], ARGV[i]) end
return 1
"""

# This worker is alive (KEYS: crawl, queue, workers, seen; ARGV: id, worker, seconds, heartbeat
# prefix, in-flight prefix, seen ttl). What silent workers held goes back on the queue, checked
# and moved in one step, so a worker that beats again meanwhile keeps what it holds.
_BEAT = _SAME_CRAWL + """
redis.call('SET', ARGV[4] .. ARGV[2], 'alive', 'EX', ARGV[3])
redis.call('SADD', KEYS[3], ARGV[2])
redis.call('EXPIRE', KEYS[4], ARGV[6])
local moved = 0
for _, worker in ipairs(redis.call('SMEMBERS', KEYS[3])) do
  if redis.call('EXISTS', ARGV[4] .. worker) == 0 then
    local held = redis.call('HGETALL', ARGV[5] .. worker)
    for i = 1, #held, 2 do
      redis.call('ZADD', KEYS[2], held[i + 1], held[i])
      moved = moved + 1
    end
    redis.call('DEL', ARGV[5] .. worker)
    redis.call('SREM', KEYS[3], worker)
  end
end
return moved
"""

# This worker leaves: what it holds goes back on the queue (KEYS: crawl, queue, in-flight, workers).
_LEAVE = """
if redis.call('HGET', KEYS[1], 'id') == ARGV[1] then
  local held = redis.call('HGETALL', KEYS[3])
  for i = 1, #held, 2 do redis.call('ZADD', KEYS[2], held[i + 1], held[i]) end
end
redis.call('DEL', KEYS[3])
redis.call('SREM', KEYS[4], ARGV[2])
return 1
"""

# Whether this worker is to seed the queue now: nobody has, nobody is (KEYS: crawl, starting lock).
_CLAIM_SEEDING = _SAME_CRAWL + """
if redis.call('HGET', KEYS[1], 'seeded') ~= '0' then return false end
if redis.call('SET', KEYS[2], ARGV[2], 'NX', 'EX', ARGV[3]) then return 1 end
return false
"""

# Let go of a lock only if this worker holds it.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1
"""

# The crawl is over: it was replaced or removed, or it is seeded, its queue is empty, nobody holds
# anything and no deferred request is left. Deferred requests not seen meanwhile are queued at that point.
_FINISHED = """
if redis.call('HGET', KEYS[1], 'id') ~= ARGV[1] then return 1 end
if redis.call('HGET', KEYS[1], 'seeded') ~= '1' then return 0 end
if redis.call('ZCARD', KEYS[2]) > 0 then return 0 end
for _, worker in ipairs(redis.call('SMEMBERS', KEYS[3])) do
  if redis.call('HLEN', ARGV[2] .. worker) > 0 then return 0 end
end
local deferred = redis.call('HGETALL', KEYS[5])
if #deferred == 0 then return 1 end
for i = 1, #deferred, 2 do
  if redis.call('SADD', KEYS[4], deferred[i]) == 1 then redis.call('ZADD', KEYS[2], 0, deferred[i + 1]) end
end
redis.call('DEL', KEYS[5])
return 0
"""

# One worker, the first to ask, finishes the run.
_CLAIM_FINISH = _SAME_CRAWL + """
return redis.call('HSETNX', KEYS[1], 'finished_by', ARGV[2])
"""


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
        self._scripts = {name: redis.register_script(text) for name, text in (
            ("pop", _POP), ("push", _PUSH), ("defer", _DEFER), ("acknowledge", _ACKNOWLEDGE), ("beat", _BEAT),
            ("leave", _LEAVE), ("claim_seeding", _CLAIM_SEEDING), ("release", _RELEASE), ("finished", _FINISHED),
            ("claim_finish", _CLAIM_FINISH))}

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

    def _run(self, script: str, keys: list[str], *args: object) -> object:
        """Run one of the crawl's scripts, with the crawl's hash and id first."""
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
        return {key.decode(): value.decode() for key, value in self.redis.hgetall(self.key).items()}

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

    def options(self) -> dict[str, bool]:
        """The --full and --revisit of the worker that started the crawl: every worker follows them."""
        crawl = self._read()
        return {name: crawl.get(name) == "1" for name in ("full", "revisit")}

    def leave(self) -> None:
        """This worker stops: what it still holds goes back on the queue."""
        self._run("leave", [self.queue_key, self.inflight_key, self.workers_key], self.worker)

    def forget(self, crawl_id: str) -> None:
        """Remove a crawl's state from Redis (its run is over)."""
        workers = [worker.decode() for worker in self.redis.smembers(self.workers_key)]
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


class ReliableQueue(PriorityQueue):
    """scrapy-redis's priority queue (its serialisation, its key) whose pops stay in the worker's
    in-flight hash until acknowledged."""

    def __init__(self, crawl: SharedCrawl, spider) -> None:
        super().__init__(crawl.redis, spider, crawl.queue_key)
        self.crawl = crawl
        self.held: dict[Request, bytes] = {}

    def push(self, request: Request, fingerprint: bytes = b"") -> bool:
        return self.crawl.push(self._encode_request(request), -request.priority, fingerprint)

    def pop(self, timeout: int = 0) -> Request | None:
        payload = self.crawl.pop()
        if payload is None:
            return None
        try:
            request = self._decode_request(payload)
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


class CrawlDupeFilter(RFPDupeFilter):
    """scrapy-redis's duplicate filter over Scrapy's own fingerprints, in a key that belongs to one crawl.

    The shared scheduler checks it and queues in one step (SharedCrawl.push).
    """

    def __init__(self, server: Redis, key: str, fingerprint: Callable[[Request], bytes]) -> None:
        super().__init__(server, key)
        self.fingerprint = fingerprint

    def request_fingerprint(self, request: Request) -> bytes:
        return self.fingerprint(request)


class SharedScheduler(Scheduler):
    """The scheduler of a worker in a shared crawl (SCHEDULER when crawling with --distributed).

    The crawl stays open while anything is queued, deferred or held by any worker; a
    request is acknowledged once Scrapy's engine no longer has it in progress. A worker
    that cannot queue what a page led to stops acknowledging and closes: everything it
    holds goes back to the queue, so nothing is lost with the requests it could not queue.
    """

    def __init__(self, crawler: Crawler, crawl: SharedCrawl) -> None:
        super().__init__(crawl.redis, persist=True, queue_key=crawl.queue_key,
                         dupefilter=CrawlDupeFilter(crawl.redis, crawl.seen_key,
                                                    crawler.request_fingerprinter.fingerprint))
        self.crawler, self.crawl, self.stats = crawler, crawl, crawler.stats
        self.flushed: dict[str, int] = {}
        self.error_sent = False
        self.broken = False
        self.heartbeat = LoopingCall(self.beat)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> SharedScheduler:
        crawl = SharedCrawl.of(crawler)
        if crawl is None:
            raise RuntimeError("SharedScheduler crawls only for `zwgk crawl --distributed` and `zwgk worker`")
        return cls(crawler, crawl)

    def open(self, spider) -> None:
        if not isinstance(getattr(getattr(self.crawler.engine, "_slot", None), "inprogress", None), set):
            # Without it no request could be acknowledged at the right time: refuse rather than lose requests.
            raise RuntimeError("this Scrapy's engine does not expose the requests in progress that shared crawls "
                               "acknowledge by (engine._slot.inprogress); install the Scrapy version zwgk names")
        self.spider = spider
        self.queue = ReliableQueue(self.crawl, spider)
        self.heartbeat.start(self.crawl.worker_timeout / 3, now=True)

    def beat(self) -> None:
        if self.broken:
            return
        try:
            moved = self.crawl.beat()
            if moved:
                logger.warning("%s: %d requests held by silent workers are back on the queue", self.crawl.source, moved)
            self._acknowledge()
            self._seed()
        except RedisError as error:  # Redis away for a moment: the next beat tries again
            logger.warning("%s: the shared crawl's heartbeat failed: %s", self.crawl.source, error)

    def _seed(self) -> None:
        """Queue the run's start requests, if nobody has (the worker that started the crawl, or took over)."""
        if not self.crawl.claim_seeding():
            return
        count, failure = 0, None
        try:
            for count, request in enumerate(self.spider.initial_requests(), 1):
                self.enqueue_request(request)
                if count % 500 == 0:
                    self.crawl.keep_seeding()
        except RedisError:
            raise  # not seeded: another beat (of this worker or another) seeds again
        except Exception as error:  # the archive unreachable, a bug: the run ends, saying why
            logger.exception("%s: could not compute the start requests", self.crawl.source)
            failure = f"seeding: {error.__class__.__name__}: {error}"
        finally:
            self.crawl.release_seeding()
        self._acknowledge(seeded=True, first_error=failure)
        logger.info("%s: queued %d start requests for every worker", self.crawl.source, count)

    def _acknowledge(self, seeded: bool = False, first_error: str | None = None) -> None:
        if self.broken:
            return
        # Scrapy's requests in progress, from download to the last item and request they led to
        # (checked in open(); once the engine has closed, nothing is in progress).
        slot = getattr(self.crawler.engine, "_slot", None)
        in_progress = slot.inprogress if slot is not None else set()
        done = self.queue.finished_requests(in_progress)
        counts = self._count_deltas()
        if first_error is None and not self.error_sent:
            first_error = self.stats.get_value("zwgk/first_error")
        if not (done or counts or first_error or seeded):
            return
        self.crawl.acknowledge([self.queue.held[request] for request in done], counts, first_error, seeded)
        self.queue.forget(done)  # only now: a failed acknowledgement is tried again with the next one
        for name, delta in counts.items():
            self.flushed[name] = self.flushed.get(name, 0) + delta
        self.error_sent = self.error_sent or bool(first_error)

    def _count_deltas(self) -> dict[str, int]:
        counts = {name.removeprefix("zwgk/"): value for name, value in self.stats.get_stats().items()
                  if name.startswith("zwgk/") and type(value) is int and name != "zwgk/run_id"}
        return {name: value - self.flushed.get(name, 0) for name, value in counts.items()
                if value != self.flushed.get(name, 0)}

    def enqueue_request(self, request: Request) -> bool:
        if self.broken:
            return False
        try:
            if request.meta.pop(DEFER, False):  # popped: a retry of the request, later, is not deferred again
                self.crawl.defer(self.df.request_fingerprint(request), self.queue._encode_request(request))
                return True
            queued = self.queue.push(request, b"" if request.dont_filter else self.df.request_fingerprint(request))
        except RedisError as error:
            self._break(error)
            return False
        if not queued:
            self.df.log(request, self.spider)
            self.stats.inc_value("dupefilter/filtered")
            return False
        self.stats.inc_value("scheduler/enqueued/redis")
        return True

    def _break(self, error: Exception) -> None:
        """A request could not be queued: stop, and let everything this worker holds go back to the queue."""
        if self.broken:
            return
        self.broken = True
        logger.error("%s: the shared queue failed (%s); this worker stops, and what it holds goes back to "
                     "the queue", self.crawl.source, error)
        if self.heartbeat.running:
            self.heartbeat.stop()
        deferred_from_coro(self.crawler.engine.close_spider_async(reason="shared queue failed"))

    def next_request(self) -> Request | None:
        if self.broken:
            return None
        try:
            self._acknowledge()
            request = self.queue.pop()
            if request is None and not self.queue.held and not self.crawl.finished():
                request = self.queue.pop()  # the check queued the deferred requests: take one now, not at the next beat
        except RedisError as error:
            logger.warning("%s: the shared queue does not answer: %s", self.crawl.source, error)
            return None
        if request is not None:
            self.stats.inc_value("scheduler/dequeued/redis")
        return request

    def has_pending_requests(self) -> bool:
        if self.broken:
            return False
        try:
            self._acknowledge()
            return bool(self.queue.held) or not self.crawl.finished()
        except RedisError as error:
            logger.warning("%s: the shared queue does not answer: %s", self.crawl.source, error)
            return True

    def close(self, reason: str) -> None:
        if self.heartbeat.running:
            self.heartbeat.stop()
        try:
            self._acknowledge()
        finally:
            self.crawl.leave()
