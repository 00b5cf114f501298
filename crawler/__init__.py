"""zwgk's Scrapy project: settings, middlewares, pipelines, pure extraction and the CLI."""

import os

__version__ = "0.1.0"

# Scrapy's cookie handling asks tldextract for public suffixes, and tldextract would download the
# list on first use: an empty URL list makes it read its bundled snapshot. Set here, before any
# Scrapy module builds its extractor; an operator who wants a fresher list names a file in it.
os.environ.setdefault("TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS", "")
