"""Scrapy commands of the project (COMMANDS_MODULE): `scrapy crawl KEY` plans its crawl as `zwgk crawl` does."""
