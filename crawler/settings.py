"""Scrapy settings for zwgk: polite defaults for government sites.

Every run, whether `zwgk crawl` or `scrapy crawl KEY`, starts from this module;
`-s NAME=VALUE` overrides a setting for one run. zwgk's own settings start
with ``ZWGK_`` (and ``HOST_MAP``). Those the environment may set are read from it
once, by ``from_environment``, when this module is loaded.
"""

import os
from collections.abc import Mapping

from crawler import __version__


def from_environment(environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    """The settings the environment gives: HOST_MAP from ZWGK_HOST_MAP (JSON), the others by their own name.

    (ZWGK_DB and ZWGK_SOURCES are read where every command resolves them, not here.)
    """
    return {
        "HOST_MAP": environ.get("ZWGK_HOST_MAP", ""),
        "ZWGK_CONTACT_URL": environ.get("ZWGK_CONTACT_URL", "https://github.com/zwgk/zwgk"),
        "ZWGK_REDIS": environ.get("ZWGK_REDIS", ""),
        "ZWGK_REDIS_PREFIX": environ.get("ZWGK_REDIS_PREFIX", "zwgk"),
    }


_env = from_environment()

BOT_NAME = "zwgk"
SPIDER_LOADER_CLASS = "spiders.loader.RegistrySpiderLoader"
SPIDER_MODULES = ["spiders"]
# `scrapy crawl KEY` plans its crawl from the archive, as `zwgk crawl` does.
COMMANDS_MODULE = "crawler.commands"

# Politeness: obey robots.txt, adapt the pace to the site, never more than two at once per host.
ROBOTSTXT_OBEY = True
CONCURRENT_REQUESTS = 16
CONCURRENT_REQUESTS_PER_DOMAIN = 2
DOWNLOAD_DELAY = 1.0
DOWNLOAD_DELAY_JITTER = 0.5
AUTOTHROTTLE_ENABLED = True
AUTOTHROTTLE_START_DELAY = 2.0
AUTOTHROTTLE_MAX_DELAY = 60.0
AUTOTHROTTLE_TARGET_CONCURRENCY = 1.0

# Identify ourselves; {contact} is filled from ZWGK_CONTACT_URL.
ZWGK_CONTACT_URL = _env["ZWGK_CONTACT_URL"]
USER_AGENT = f"zwgk/{__version__} (+{{contact}})"

# Failures: bounded time and size, retries that back off.
# DOWNLOAD_TIMEOUT is the deadline of one request, however its bytes come (a hung server or a drip of
# bytes is cut off there); CLOSESPIDER_TIMEOUT that of the whole crawl (the run ends `interrupted`).
DOWNLOAD_TIMEOUT = 30
CLOSESPIDER_TIMEOUT = 4 * 3600
# A stopping crawl gives the downloads in flight this many seconds, then cuts them off (crawler.deadline),
# so SIGTERM or the crawl's time limit ends it promptly whatever a server holds.
ZWGK_STOP_GRACE = 5.0
# http(s) through the deadline handler; no other scheme is fetched at all (crawler.scope refuses them too).
DOWNLOAD_HANDLERS: dict[str, str | None] = {
    "http": "crawler.deadline.DeadlineDownloadHandler", "https": "crawler.deadline.DeadlineDownloadHandler",
    "file": None, "data": None, "ftp": None, "s3": None,
}
DNS_TIMEOUT = 15
# Every lookup the downloads make refuses non-public addresses (except HOST_MAP's targets), so a name
# that resolves differently when the download connects than when the scope was checked is refused too.
TWISTED_DNS_RESOLVER = "crawler.resolver.ScopedResolver"
DOWNLOAD_MAXSIZE = 20 * 1024 * 1024
DOWNLOAD_WARNSIZE = 5 * 1024 * 1024
RETRY_ENABLED = True
RETRY_TIMES = 2
# Each failure is recorded with the run and summarised by `zwgk crawl`; no ERROR log per give-up.
RETRY_GIVE_UP_LOG_LEVEL = "INFO"
ZWGK_RETRY_BACKOFF_BASE = 2.0
ZWGK_RETRY_BACKOFF_MAX = 60.0
# Attachments: the largest file fetched, the time and memory reading one may take, and the most
# text (bytes of UTF-8) kept of one; a cut text says so in the attachment's error.
ZWGK_ATTACHMENT_MAXSIZE = 50 * 1024 * 1024
ZWGK_ATTACHMENT_TIMEOUT = 60.0
ZWGK_ATTACHMENT_MEMORY = 1024 * 1024 * 1024
ZWGK_ATTACHMENT_TEXT_MAX = 10 * 1024 * 1024
# What one page can make the crawl do: attachments fetched per notice, links followed per list page
# (past either, the rest are dropped and the cap is recorded with the run).
ZWGK_MAX_ATTACHMENTS = 50
ZWGK_MAX_LIST_LINKS = 500
# The revisit policy: a known notice is re-checked daily until it was first seen this many
# days ago, then weekly, then monthly, then quarterly (`zwgk crawl --revisit` checks all now).
ZWGK_REVISIT_DAILY_UNTIL_DAYS = 30
ZWGK_REVISIT_WEEKLY_UNTIL_DAYS = 90
ZWGK_REVISIT_MONTHLY_UNTIL_DAYS = 365
# A crawl holds its source's lock in the archive, renewed every third of this many seconds;
# the lock of a crawl process that died lapses after it.
ZWGK_LEASE_SECONDS = 120.0
# robots.txt is asked for once, with this timeout (a site without one answers 404 at once).
ZWGK_ROBOTSTXT_TIMEOUT = 10.0

# The crawl's scope (crawler.scope) is checked first, before robots.txt is asked for; it replaces
# Scrapy's OffsiteMiddleware. Only http(s) is ever downloaded.
DOWNLOADER_MIDDLEWARES = {
    "scrapy.downloadermiddlewares.offsite.OffsiteMiddleware": None,
    "crawler.middlewares.ScopeMiddleware": 40,
    "scrapy.downloadermiddlewares.useragent.UserAgentMiddleware": None,
    "crawler.middlewares.ContactUserAgentMiddleware": 500,
    "scrapy.downloadermiddlewares.retry.RetryMiddleware": None,
    "crawler.middlewares.RobotsTxtTimeoutMiddleware": 90,
    "crawler.middlewares.BackoffRetryMiddleware": 550,
    "crawler.middlewares.ResponseEncodingMiddleware": 920,
    "crawler.middlewares.HostMapMiddleware": 950,
}
ITEM_PIPELINES = {"crawler.pipelines.ArchivePipeline": 300}
# The run recorder starts and finishes the crawl's run in the archive (crawler.runs).
# Requests a spider marks DEFER wait until the rest of the crawl is done (a shared crawl's scheduler holds them).
SPIDER_MIDDLEWARES = {"crawler.deferred.HoldDeferred": 600}
EXTENSIONS = {"crawler.runs.RunRecorder": 100, "crawler.extensions.CrawlProgress": 500}
# Seconds between progress lines on stderr while crawling (0 turns them off).
ZWGK_PROGRESS_INTERVAL = 30.0

# Remote control stays off: the telnet console, and the HTTP control server Scrapy 2.19 starts by default.
TELNETCONSOLE_ENABLED = False
REMOTE_CONTROL_ENABLED = False

# Host remapping for mirrors, proxies and fixture sites: {"host": "base URL"}, as a dict or
# as JSON text (checked, with a clear message, by crawler.middlewares.parse_host_map).
HOST_MAP = _env["HOST_MAP"]

# The archive (any SQLAlchemy URL); None means ZWGK_DB, else ./zwgk.sqlite3 (archive.resolve_db_url).
ZWGK_DB = None
# The sources registry; None means ZWGK_SOURCES, else the bundled spiders/sources.toml (spiders.registry).
ZWGK_SOURCES = None

LOG_LEVEL = "INFO"
FEED_EXPORT_ENCODING = "utf-8"

# Distributed crawling (`zwgk crawl --distributed`, `zwgk worker`): the Redis the workers share
# (also --redis), the prefix of zwgk's keys in it (one per archive sharing a Redis), and how many
# seconds a silent worker is trusted before what it holds goes back to the queue.
ZWGK_REDIS = _env["ZWGK_REDIS"]
ZWGK_REDIS_PREFIX = _env["ZWGK_REDIS_PREFIX"]
ZWGK_WORKER_TIMEOUT = 30.0
# Set by --distributed, with the shared scheduler and run recorder (crawler.distributed.shared_crawl_settings).
ZWGK_DISTRIBUTED = False
