"""Dates as Chinese government pages write them, to ISO 8601.

Forms: ``2024-05-16``, ``2024/5/16``, ``2024.05.16``, ``2024年5月13日``,
``二〇二四年五月十三日``, each optionally followed by a time (``15:00:01``,
``9时30分``). Dates come out as ``YYYY-MM-DD`` and times as
``YYYY-MM-DDTHH:MM[:SS]``, in China time as published.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Iterator

_NUMERIC = re.compile(
    r"(?<!\d)(?P<y>(?:19|20)\d{2})\s*(?P<s>[-/.年])\s*(?P<m>\d{1,2})\s*[-/.月]\s*(?P<d>\d{1,2})(?!\d)\s*日?"
    r"(?:[\sT-]*(?P<H>\d{1,2})\s*[:时]\s*(?P<M>\d{2})(?:\s*[:分]\s*(?P<S>\d{2}))?)?"
)
_CN_DIGITS = {"〇": 0, "○": 0, "零": 0, "O": 0, "一": 1, "二": 2, "三": 3, "四": 4,
              "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
_CHINESE = re.compile(
    r"(?P<y>[〇○零O一二三四五六七八九]{4})年(?P<m>[一二三四五六七八九十]{1,3})月(?P<d>[一二三四五六七八九十]{1,3})日"
)


def _chinese_number(text: str) -> int:
    """Read 一 … 三十一 (the numbers a month or day needs); 0 for anything else (十十, 一二)."""
    tens, ten, units = text.partition("十")
    if not ten:
        return _CN_DIGITS[text] if len(text) == 1 else 0
    if len(tens) > 1 or len(units) > 1 or "十" in units:
        return 0
    return (_CN_DIGITS[tens] if tens else 1) * 10 + (_CN_DIGITS[units] if units else 0)


def _iso(year: int, month: int, day: int,
         hour: str | None = None, minute: str | None = None, second: str | None = None) -> str | None:
    try:
        date = dt.date(year, month, day)
    except ValueError:
        return None
    if hour is None or minute is None:
        return date.isoformat()
    if not (0 <= int(hour) < 24 and 0 <= int(minute) < 60 and (second is None or 0 <= int(second) < 60)):
        return date.isoformat()
    time = f"{int(hour):02d}:{int(minute):02d}" + (f":{int(second):02d}" if second is not None else "")
    return f"{date.isoformat()}T{time}"


def find_dates(text: str) -> Iterator[tuple[str, int, int]]:
    """Yield ``(iso, start, end)`` for every valid date in ``text``, in order."""
    text = unicodedata.normalize("NFKC", text)
    found = []
    for match in _NUMERIC.finditer(text):
        iso = _iso(int(match["y"]), int(match["m"]), int(match["d"]), match["H"], match["M"], match["S"])
        if iso:
            found.append((iso, match.start(), match.end()))
    for match in _CHINESE.finditer(text):
        year = int("".join(str(_CN_DIGITS[c]) for c in match["y"]))
        iso = _iso(year, _chinese_number(match["m"]), _chinese_number(match["d"]))
        if iso:
            found.append((iso, match.start(), match.end()))
    yield from sorted(found, key=lambda item: item[1])


def parse_date(text: str | None) -> str | None:
    """Return the first date in ``text`` as ISO 8601, or None."""
    if not text:
        return None
    return next((iso for iso, _, _ in find_dates(text)), None)


def merge_time(date_value: str | None, timed_value: str | None) -> str | None:
    """Take the more precise ``timed_value`` when it agrees with ``date_value`` (same day, same minute)."""
    if date_value and timed_value and len(timed_value) > len(date_value) and timed_value.startswith(date_value):
        return timed_value
    return date_value
