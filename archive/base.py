"""What every part of the archive's API stands on: the engine and its sessions."""

from __future__ import annotations

from contextlib import AbstractContextManager

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from .errors import ArchiveError
from .models import Source
from .revisits import RevisitPolicy


class ArchiveBase:
    """An archive's engine, its sessions and its revisit policy."""

    def __init__(self, engine: Engine, policy: RevisitPolicy | None = None) -> None:
        self.engine = engine
        self.policy = policy or RevisitPolicy()
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    def close(self) -> None:
        self.engine.dispose()

    def session(self) -> Session:
        return self._sessions()

    def transaction(self) -> AbstractContextManager[Session]:
        """A session whose block is one transaction, committed at its end."""
        return self._sessions.begin()

    def _source_id(self, session: Session, key: str) -> int:
        source_id = session.scalar(select(Source.id).where(Source.key == key))
        if source_id is None:
            raise ArchiveError(f"unknown source {key!r}: register it with ensure_source first")
        return source_id
