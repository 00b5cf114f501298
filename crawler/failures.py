"""One line for a request that failed: its kind (for the run's error list) and what went wrong.

Spiders describe the pages they could not fetch with it, the pipeline the attachments.
"""

from __future__ import annotations

from scrapy.exceptions import (
    CannotResolveHostError,
    DownloadCancelledError,
    DownloadConnectionRefusedError,
    DownloadFailedError,
    DownloadTimeoutError,
    ResponseDataLossError,
)
from scrapy.spidermiddlewares.httperror import HttpError
from twisted.internet.error import ConnectionRefusedError, DNSLookupError, TCPTimedOutError, TimeoutError

from crawler.scope import OutOfScope


def describe_error(error: BaseException, url: str, size_limit: str = "DOWNLOAD_MAXSIZE") -> tuple[str, str]:
    """(kind, message) for ``error`` met fetching ``url``, without a traceback; ``size_limit`` names
    the setting that bounds the download."""
    host = url.split("/")[2] if "//" in url else url
    if isinstance(error, OutOfScope):
        return "scope", str(error)
    if isinstance(error, HttpError):
        status = error.response.status
        return f"http-{status}", f"the site answered {status} for {error.response.url}"
    if isinstance(error, CannotResolveHostError | DNSLookupError):
        return "dns", f"DNS lookup failed for {host} (no such host, or no network)"
    if isinstance(error, DownloadConnectionRefusedError | ConnectionRefusedError):
        return "refused", f"connection refused by {host}"
    text = str(error)
    detail = f": {text}" if text else ""
    if isinstance(error, DownloadTimeoutError | TimeoutError | TCPTimedOutError):
        return "timeout", f"timed out waiting for {host}{detail}"
    if "max redirections" in text:
        return "redirect-loop", f"{url} redirects in a loop (more than REDIRECT_MAX_TIMES redirects)"
    if isinstance(error, DownloadCancelledError) or "MAXSIZE" in text or "maxsize" in text.lower():
        return "too-large", f"what {host} sent is larger than the size limit ({size_limit}){detail}"
    if isinstance(error, ResponseDataLossError | DownloadFailedError):
        return "download", f"the download from {host} broke off: {error}"
    name = error.__class__.__name__
    return name, f"{name}: {text}" if text else name
