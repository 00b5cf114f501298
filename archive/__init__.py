"""The SQL archive: every version of every notice, with the raw pages they came from.

Knows nothing of Scrapy: callers hand it extracted fields and response bytes.
"""

from .db import DEFAULT_DB_URL, open_archive, resolve_db_url
from .errors import ArchiveError
from .store import Archive, SaveResult

__all__ = ["DEFAULT_DB_URL", "Archive", "ArchiveError", "SaveResult", "open_archive", "resolve_db_url"]
