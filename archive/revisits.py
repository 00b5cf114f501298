"""When a known notice is checked again: often while it is young, rarely once it has settled.

Edits and withdrawals cluster in a notice's first weeks, so a notice first seen
within ``daily_until`` days is re-checked daily, then weekly until
``weekly_until`` days, then monthly until ``monthly_until`` days, then quarterly.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

DAILY, WEEKLY, MONTHLY, QUARTERLY = (dt.timedelta(days=days) for days in (1, 7, 30, 91))
# A crawl re-checks notices due within this much of its start: a nightly run that starts a
# little earlier than the night before still re-checks yesterday's daily notices.
DUE_SLACK = dt.timedelta(hours=6)
# Consecutive re-checks answered 404/410 before a notice counts as gone (one may be a hiccup).
GONE_AFTER_MISSING_CHECKS = 2


@dataclass(frozen=True)
class RevisitPolicy:
    daily_until: int = 30
    weekly_until: int = 90
    monthly_until: int = 365

    def __post_init__(self) -> None:
        if not 0 <= self.daily_until <= self.weekly_until <= self.monthly_until:
            raise ValueError("the revisit ages must grow: daily_until <= weekly_until <= monthly_until (days)")

    def interval(self, age: dt.timedelta) -> dt.timedelta:
        """How long after a check the next one is due, for a notice first seen ``age`` ago."""
        if age < dt.timedelta(days=self.daily_until):
            return DAILY
        if age < dt.timedelta(days=self.weekly_until):
            return WEEKLY
        if age < dt.timedelta(days=self.monthly_until):
            return MONTHLY
        return QUARTERLY

    def next_check(self, first_seen: dt.datetime, checked_at: dt.datetime) -> dt.datetime:
        return checked_at + self.interval(checked_at - first_seen)
