"""zwgk's Scrapy project: settings, middlewares, pipelines, pure extraction and the CLI."""

__version__ = "0.1.0"
