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

Modules: shared (SharedCrawl: joining, seeding, acknowledging, totals, finishing, each step
one of the Lua scripts in scripts/), queue (the worker's view of the queue: what it holds),
scheduler (the Scrapy scheduler of a worker, and the spider middleware that leaves seeding
to it), runs (the run recorder of a shared crawl). shared_crawl_settings() makes a crawl's
settings those of a worker.

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

from scrapy.settings import Settings

from crawler.deferred import HoldDeferred
from crawler.runs import RunRecorder

from .runs import SharedRunRecorder
from .scheduler import SeededByScheduler, SharedScheduler
from .shared import SharedCrawl, connect, new_worker_id

__all__ = ["SharedCrawl", "connect", "new_worker_id", "shared_crawl_settings"]


def shared_crawl_settings(settings: Settings, redis_url: str) -> None:
    """Make ``settings`` those of a worker of the crawls shared through the Redis at ``redis_url``:
    the shared scheduler serves (and seeds) the queue, and the shared run recorder records the run."""
    settings.set("ZWGK_DISTRIBUTED", True, priority="cmdline")
    settings.set("ZWGK_REDIS", redis_url, priority="cmdline")
    settings.set("SCHEDULER", SharedScheduler, priority="cmdline")
    settings.replace_in_component_priority_dict("EXTENSIONS", RunRecorder, SharedRunRecorder)
    settings.set_in_component_priority_dict("SPIDER_MIDDLEWARES", SeededByScheduler, 0)
    settings.set_in_component_priority_dict("SPIDER_MIDDLEWARES", HoldDeferred, None)  # the scheduler holds them
