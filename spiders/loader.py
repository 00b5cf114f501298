"""A spider loader that makes one spider per registry entry, so `scrapy crawl KEY` works for every source."""

from __future__ import annotations

import builtins

from scrapy.settings import BaseSettings

from .base import NoticeSpider
from .generic import GenericSpider
from .guangdong import GuangdongSpider
from .hunan_numeric import HunanNumericSpider
from .registry import load_sources
from .shanghai_ivs import ShanghaiIvsSpider
from .yunnan_html import YunnanHtmlSpider

PLATFORMS: dict[str, type[NoticeSpider]] = {
    spider.platform: spider
    for spider in (ShanghaiIvsSpider, YunnanHtmlSpider, HunanNumericSpider, GuangdongSpider, GenericSpider)
}


def spider_class(key: str, platform: str) -> type[NoticeSpider]:
    """The platform spider, named after the source it crawls."""
    try:
        base = PLATFORMS[platform]
    except KeyError:
        raise KeyError(f"source {key!r} names platform {platform!r}; known platforms: "
                       f"{', '.join(sorted(PLATFORMS))}") from None
    return type(f"{base.__name__}_{key}", (base,), {"name": key})


class RegistrySpiderLoader:
    """Scrapy's spider loader interface over the sources registry."""

    def __init__(self, settings: BaseSettings) -> None:
        self._sources = load_sources(settings.get("ZWGK_SOURCES"))

    @classmethod
    def from_settings(cls, settings: BaseSettings) -> RegistrySpiderLoader:
        return cls(settings)

    def load(self, spider_name: str) -> type[NoticeSpider]:
        """The spider of one source (a bad entry elsewhere in the registry does not stop it)."""
        if spider_name not in self._sources:
            raise KeyError(f"Spider not found: {spider_name}")
        return spider_class(spider_name, self._sources[spider_name].platform)

    def list(self) -> list[str]:
        return sorted(self._sources)

    def find_by_request(self, request) -> builtins.list[str]:  # `list` here is the method above
        return [key for key in self._sources if self.load(key).handles_request(request)]
