"""A spider loader that makes one spider per registry entry, so `scrapy crawl KEY` works for every source."""

from __future__ import annotations

from scrapy.settings import BaseSettings

from .base import NoticeSpider
from .registry import load_sources
from .shanghai_ivs import ShanghaiIvsSpider

PLATFORMS: dict[str, type[NoticeSpider]] = {
    ShanghaiIvsSpider.platform: ShanghaiIvsSpider,
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
        sources = load_sources(settings.get("ZWGK_SOURCES"))
        self._spiders = {key: spider_class(key, source.platform) for key, source in sources.items()}

    @classmethod
    def from_settings(cls, settings: BaseSettings) -> RegistrySpiderLoader:
        return cls(settings)

    def load(self, spider_name: str) -> type[NoticeSpider]:
        try:
            return self._spiders[spider_name]
        except KeyError:
            raise KeyError(f"Spider not found: {spider_name}") from None

    def list(self) -> list[str]:
        return sorted(self._spiders)

    def find_by_request(self, request) -> list[str]:
        return [name for name, spider in self._spiders.items() if spider.handles_request(request)]
