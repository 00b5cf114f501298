"""Full-text search over the archive in Chinese, the same on SQLite and PostgreSQL.

``query``: the query language (parse_query); ``searcher``: running a query (hits,
snippets, facets); ``index``: the per-version index that searches use;
``textindex``: the normalisation and tokens they share.
"""

from .index import (
    FTS_TABLE,
    IndexEntry,
    create_index_structures,
    index_existing_versions,
    index_version,
    prepare_index,
    searched_parts,
    version_parts,
)
from .query import FILTERS, SORTS, Query, QueryError, parse_query
from .searcher import Hit, Searcher, SearchResult

__all__ = ["FILTERS", "FTS_TABLE", "SORTS", "Hit", "IndexEntry", "Query", "QueryError", "SearchResult", "Searcher",
           "create_index_structures", "index_existing_versions", "index_version", "parse_query", "prepare_index",
           "searched_parts", "version_parts"]
