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
from scrapy import Request
from scrapy.crawler import Crawler
from scrapy_redis.connection import get_redis
from scrapy_redis.dupefilter import RFPDupeFilter
from scrapy_redis.queue import PriorityQueue
from scrapy_redis.scheduler import Scheduler
from twisted.internet.task import LoopingCall

from archive import Archive
from archive.leases import Lease
from spiders.registry import SourceConfig

logger = logging.getLogger(__name__)

# An abandoned crawl's fingerprints go after a week (a finished crawl deletes them at once).
SEEN_TTL = 7 * 24 * 3600
# A request with this meta key set waits until the rest of the crawl is done (see SharedCrawl.defer).
DEFER = "zwgk_defer"
# How long a worker waits for another to finish starting the crawl it joins.
JOIN_TIMEOUT = 60.0

# Take the highest-priority request and hold it in the worker's in-flight hash, in one step.
_POP = """
local item = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if #item == 0 then return false end
redis.call('ZREM', KEYS[1], item[1])
redis.call('HSET', KEYS[2], item[1], item[2])
return item[1]
"""

# Queue a request unless the crawl has seen it: the check and the push in one step, so a worker killed
# between them cannot leave a request marked seen that nobody will fetch.
_PUSH_UNSEEN = """
if redis.call('SADD', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('EXPIRE', KEYS[1], ARGV[4])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[3])
return 1
"""

# Put every request a worker holds back on the queue (ARGV: workers whose hashes to empty).
_PUT_BACK = """
local moved = 0
for _, worker in ipairs(ARGV) do
  local key = KEYS[2] .. worker
  local held = redis.call('HGETALL', key)
  for i = 1, #held, 2 do
    redis.call('ZADD', KEYS[1], held[i + 1], held[i])
    moved = moved + 1
  end
  redis.call('DEL', key)
end
return moved
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
_CLAIM_FINISH = """
if redis.call('HGET', KEYS[1], 'id') ~= ARGV[1] then return 0 end
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
        self._put_back = redis.register_script(_PUT_BACK)
        self._finished = redis.register_script(_FINISHED)
        self._claim_finish = redis.register_script(_CLAIM_FINISH)

    @staticmethod
    def of(crawler: Crawler) -> SharedCrawl | None:
        """The shared crawl a crawler takes part in (None for a crawl of its own)."""
        return getattr(crawler, "zwgk_shared_crawl", None)

    @property
    def seen_key(self) -> str:
        return f"{self.key}:seen:{self.crawl_id}"

    @property
    def inflight_key(self) -> str:
        return self.inflight_prefix + self.worker

    @property
    def lease_holder(self) -> str:
        return f"distributed crawl {self.crawl_id[:12]}"

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
                self._adopt(crawl)
                return self._enter(archive, lease_ttl, on_lease_lost)
            if not start:
                return None
            if self.redis.set(self.starting_key, self.worker, nx=True, ex=int(JOIN_TIMEOUT)):
                try:
                    crawl = self._read()
                    if crawl and not self._is_stale(crawl, archive):
                        continue
                    return self._start(archive, source, full, revisit, lease_ttl, on_lease_lost)
                finally:
                    self._release_starting()
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

    def _adopt(self, crawl: Mapping[str, str]) -> None:
        self.crawl_id, self.run_id = crawl["id"], int(crawl["run"])

    def _start(self, archive: Archive, source: SourceConfig, full: bool, revisit: bool, lease_ttl: float,
               on_lease_lost: Callable[[], None]) -> Lease:
        self.forget()
        self.crawl_id = uuid.uuid4().hex
        lease = self._enter(archive, lease_ttl, on_lease_lost)
        archive.close_abandoned_runs(source.key)
        archive.ensure_source(source.key, source.name, source.host, source.platform, source.level, source.region)
        self.run_id = archive.start_run(source.key)
        with self.redis.pipeline() as pipe:
            pipe.hset(self.key, mapping={"id": self.crawl_id, "run": self.run_id, "seeded": 0,
                                         "full": int(full), "revisit": int(revisit), "started_by": self.worker})
            pipe.sadd(self.crawls_key, self.source)
            pipe.execute()
        logger.info("started the distributed crawl of %s (run %s)", self.source, self.run_id)
        return lease

    def _enter(self, archive: Archive, lease_ttl: float, on_lease_lost: Callable[[], None]) -> Lease:
        lease = Lease(archive, f"crawl:{self.source}", lease_ttl, holder=self.lease_holder, on_lost=on_lease_lost)
        lease.acquire()
        self.beat()
        self.redis.sadd(self.workers_key, self.worker)
        return lease

    def options(self) -> dict[str, bool]:
        """The --full and --revisit of the worker that started the crawl: every worker follows them."""
        crawl = self._read()
        return {name: crawl.get(name) == "1" for name in ("full", "revisit")}

    def leave(self) -> None:
        """This worker stops: what it still holds goes back on the queue."""
        self._put_back(keys=[self.queue_key, self.inflight_prefix], args=[self.worker])
        self.redis.srem(self.workers_key, self.worker)

    def forget(self) -> None:
        """Remove the crawl's state from Redis (its run is over)."""
        workers = [worker.decode() for worker in self.redis.smembers(self.workers_key)]
        with self.redis.pipeline() as pipe:
            if self.crawl_id:
                pipe.delete(self.seen_key)
            pipe.delete(self.queue_key, self.workers_key, self.deferred_key, self.key, *(self.inflight_prefix + w for w in workers))
            pipe.srem(self.crawls_key, self.source)
            pipe.execute()

    def _release_starting(self) -> None:
        if self.redis.get(self.starting_key) == self.worker.encode():
            self.redis.delete(self.starting_key)

    # While crawling

    def beat(self) -> None:
        """Say this worker is alive; put back what silent workers held."""
        self.redis.set(self.heartbeat_prefix + self.worker, "alive", ex=max(1, round(self.worker_timeout)))
        workers = [worker.decode() for worker in self.redis.smembers(self.workers_key)]
        silent = [w for w, alive in zip(workers, self.redis.mget([self.heartbeat_prefix + w for w in workers]))
                  if not alive] if workers else []
        if silent:
            moved = self._put_back(keys=[self.queue_key, self.inflight_prefix], args=silent)
            self.redis.srem(self.workers_key, *silent)
            if moved:
                logger.warning("%s: %d requests held by silent workers (%s) are back on the queue",
                               self.source, moved, ", ".join(silent))
        if self.crawl_id:
            self.redis.expire(self.seen_key, SEEN_TTL)

    def claim_seeding(self) -> bool:
        """Whether this worker is to seed the queue now (nobody has, nobody is)."""
        if self.redis.hget(self.key, "seeded") != b"0":
            return False
        return bool(self.redis.set(self.starting_key, self.worker, nx=True, ex=max(1, round(self.worker_timeout))))

    def acknowledge(self, done: list[bytes], counts: Mapping[str, int], first_error: str | None,
                    seeded: bool = False) -> None:
        """Requests this worker is done with leave its in-flight hash, with the counts they added."""
        with self.redis.pipeline() as pipe:  # MULTI/EXEC: the counts land with the acknowledgement
            for name, delta in counts.items():
                pipe.hincrby(self.key, f"count:{name}", delta)
            if first_error:
                pipe.hsetnx(self.key, "first_error", first_error)
            if seeded:
                pipe.hset(self.key, "seeded", 1)
            if done:
                pipe.hdel(self.inflight_key, *done)
            pipe.execute()
        if seeded:
            self._release_starting()

    def defer(self, fingerprint: bytes, payload: bytes) -> None:
        """Hold a request back until everything else is done; it is then fetched unless seen meanwhile."""
        self.redis.hset(self.deferred_key, fingerprint, payload)

    def finished(self) -> bool:
        return bool(self._finished(keys=[self.key, self.queue_key, self.workers_key, self.seen_key, self.deferred_key],
                                   args=[self.crawl_id, self.inflight_prefix]))

    def is_current(self) -> bool:
        return self.redis.hget(self.key, "id") == self.crawl_id.encode()

    def claim_finish(self) -> bool:
        """Whether this worker is the one to finish the run (the first to ask, once the crawl is over)."""
        self.finished_here = bool(self._claim_finish(keys=[self.key], args=[self.crawl_id, self.worker]))
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
    """scrapy-redis's priority queue whose pops stay in the worker's in-flight hash until acknowledged."""

    def __init__(self, server: Redis, spider, key: str, inflight_key: str) -> None:
        super().__init__(server, spider, key)
        self.inflight_key = inflight_key
        self.held: dict[Request, bytes] = {}
        self._pop = server.register_script(_POP)
        self._push_unseen = server.register_script(_PUSH_UNSEEN)

    def push_unseen(self, request: Request, seen_key: str, fingerprint: bytes) -> bool:
        """Queue the request unless its fingerprint is in ``seen_key``; whether it was queued."""
        return bool(self._push_unseen(keys=[seen_key, self.key], args=[
            fingerprint, -request.priority, self._encode_request(request), SEEN_TTL]))

    def pop(self, timeout: int = 0) -> Request | None:
        payload = self._pop(keys=[self.key, self.inflight_key])
        if not payload:
            return None
        request = self._decode_request(payload)
        self.held[request] = payload
        return request

    def release(self, still_in_progress: set[Request]) -> list[bytes]:
        """Forget the requests that are no longer in progress; return their payloads to acknowledge."""
        done = [request for request in self.held if request not in still_in_progress]
        return [self.held.pop(request) for request in done]


class CrawlDupeFilter(RFPDupeFilter):
    """scrapy-redis's duplicate filter over Scrapy's own fingerprints, in a key that belongs to one crawl.

    The shared scheduler checks it and queues in one step (ReliableQueue.push_unseen).
    """

    def __init__(self, server: Redis, key: str, fingerprint: Callable[[Request], bytes]) -> None:
        super().__init__(server, key)
        self.fingerprint = fingerprint

    def request_fingerprint(self, request: Request) -> bytes:
        return self.fingerprint(request)


class SharedScheduler(Scheduler):
    """The scheduler of a worker in a shared crawl (SCHEDULER when crawling with --distributed).

    The crawl stays open while anything is queued, deferred or held by any worker; a
    request is acknowledged once Scrapy's engine no longer has it in progress.
    """

    def __init__(self, crawler: Crawler, crawl: SharedCrawl) -> None:
        super().__init__(crawl.redis, persist=True, queue_key=crawl.queue_key,
                         dupefilter=CrawlDupeFilter(crawl.redis, crawl.seen_key,
                                                    crawler.request_fingerprinter.fingerprint))
        self.crawler, self.crawl, self.stats = crawler, crawl, crawler.stats
        self.flushed: dict[str, int] = {}
        self.error_sent = False
        self.heartbeat = LoopingCall(self.beat)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> SharedScheduler:
        crawl = SharedCrawl.of(crawler)
        if crawl is None:
            raise RuntimeError("SharedScheduler crawls only for `zwgk crawl --distributed` and `zwgk worker`")
        return cls(crawler, crawl)

    def open(self, spider) -> None:
        self.spider = spider
        self.queue = ReliableQueue(self.server, spider, self.queue_key, self.crawl.inflight_key)
        self.heartbeat.start(self.crawl.worker_timeout / 3, now=True)

    def beat(self) -> None:
        try:
            self.crawl.beat()
            self._acknowledge()
            self._seed()
        except Exception as error:  # Redis away for a moment: the next beat tries again
            logger.warning("%s: the shared crawl's heartbeat failed: %s", self.crawl.source, error)

    def _seed(self) -> None:
        """Queue the run's start requests, if nobody has (the worker that started the crawl, or took over)."""
        if not self.crawl.claim_seeding():
            return
        count = 0
        for request in self.spider.initial_requests():
            count += self.enqueue_request(request)
        self._acknowledge(seeded=True)
        logger.info("%s: queued %d start requests for every worker", self.crawl.source, count)

    def _acknowledge(self, seeded: bool = False) -> None:
        slot = getattr(self.crawler.engine, "_slot", None)  # Scrapy's requests in progress, from download to the
        in_progress = slot.inprogress if slot is not None else set()  # last item and request they led to
        done = self.queue.release(in_progress)
        counts = self._count_deltas()
        first_error = None if self.error_sent else self.stats.get_value("zwgk/first_error")
        if done or counts or first_error or seeded:
            self.crawl.acknowledge(done, counts, first_error, seeded)
            self.flushed.update({name: self.flushed.get(name, 0) + delta for name, delta in counts.items()})
            self.error_sent = self.error_sent or bool(first_error)

    def _count_deltas(self) -> dict[str, int]:
        counts = {name.removeprefix("zwgk/"): value for name, value in self.stats.get_stats().items()
                  if name.startswith("zwgk/") and type(value) is int and name != "zwgk/run_id"}
        return {name: value - self.flushed.get(name, 0) for name, value in counts.items()
                if value != self.flushed.get(name, 0)}

    def enqueue_request(self, request: Request) -> bool:
        if request.meta.get(DEFER):
            self.crawl.defer(self.df.request_fingerprint(request), self.queue._encode_request(request))
            return True
        if request.dont_filter:
            self.queue.push(request)
        elif not self.queue.push_unseen(request, self.df.key, self.df.request_fingerprint(request)):
            self.df.log(request, self.spider)
            self.stats.inc_value("dupefilter/filtered")
            return False
        self.stats.inc_value("scheduler/enqueued/redis")
        return True

    def next_request(self) -> Request | None:
        self._acknowledge()
        request = self.queue.pop()
        if request is not None:
            self.stats.inc_value("scheduler/dequeued/redis")
        return request

    def has_pending_requests(self) -> bool:
        self._acknowledge()
        return bool(self.queue.held) or not self.crawl.finished()

    def close(self, reason: str) -> None:
        if self.heartbeat.running:
            self.heartbeat.stop()
        self._acknowledge()
        self.crawl.leave()
