"""The researchers' web interface (read-only): the FastAPI app in ``app``, its pages in templates/."""

from .app import create_app

__all__ = ["create_app"]
