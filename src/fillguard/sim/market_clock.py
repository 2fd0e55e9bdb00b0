"""The US equity market's calendar in New York time: trading days, sessions, opens and closes.

Pure functions of a timezone-aware instant. New York's daylight saving comes from ``zoneinfo``;
the NYSE holidays (with their weekend observance rules, Good Friday from Easter) and the 13:00
early closes are computed for any year. Sessions: pre-market 04:00-09:30, regular 09:30-16:00
(13:00 on an early close), after-hours to 20:00 (17:00 on an early close), closed otherwise
and on weekends and holidays. Crypto trades around the clock and never asks this module.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from typing import Literal
from zoneinfo import ZoneInfo

__all__ = [
    "NEW_YORK",
    "Session",
    "TradingDay",
    "calendar",
    "clock_at",
    "is_trading_day",
    "session_at",
    "trading_day",
]

NEW_YORK = ZoneInfo("America/New_York")
Session = Literal["pre", "regular", "post", "closed"]

_PRE_OPEN = time(4, 0)
_OPEN = time(9, 30)
_CLOSE = time(16, 0)
_EARLY_CLOSE = time(13, 0)
_POST_CLOSE = time(20, 0)
_EARLY_POST_CLOSE = time(17, 0)


@dataclass(frozen=True, slots=True)
class TradingDay:
    """One trading day: its date and session bounds as New York instants."""

    day: date
    pre_open: datetime
    open: datetime
    close: datetime
    post_close: datetime

    def settlement_date(self) -> date:
        """T+1: the next trading day."""
        return next_trading_day(self.day)


def _easter(year: int) -> date:
    # Anonymous Gregorian algorithm (Meeus/Jones/Butcher).
    a, b, c = year % 19, year // 100, year % 100
    d, e = divmod(b, 4)
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    ell = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * ell) // 451
    month, day = divmod(h + ell - 7 * m + 114, 31)
    return date(year, month, day + 1)


def _nth_weekday(year: int, month: int, weekday: int, n: int) -> date:
    first = date(year, month, 1)
    return first + timedelta(days=(weekday - first.weekday()) % 7 + 7 * (n - 1))


def _last_weekday(year: int, month: int, weekday: int) -> date:
    last = date(year + month // 12, month % 12 + 1, 1) - timedelta(days=1)
    return last - timedelta(days=(last.weekday() - weekday) % 7)


def _observed(day: date) -> date:
    # Saturday holidays are observed on Friday, Sunday ones on Monday.
    if day.weekday() == 5:
        return day - timedelta(days=1)
    if day.weekday() == 6:
        return day + timedelta(days=1)
    return day


@lru_cache(maxsize=64)
def _holidays(year: int) -> frozenset[date]:
    days = {
        _nth_weekday(year, 1, 0, 3),  # Martin Luther King Jr. Day
        _nth_weekday(year, 2, 0, 3),  # Washington's Birthday
        _easter(year) - timedelta(days=2),  # Good Friday
        _last_weekday(year, 5, 0),  # Memorial Day
        _observed(date(year, 7, 4)),
        _nth_weekday(year, 9, 0, 1),  # Labor Day
        _nth_weekday(year, 11, 3, 4),  # Thanksgiving
        _observed(date(year, 12, 25)),
    }
    if year >= 2022:
        days.add(_observed(date(year, 6, 19)))  # Juneteenth
    new_year = date(year, 1, 1)
    if new_year.weekday() != 5:  # NYSE does not observe a Saturday New Year on Dec 31
        days.add(_observed(new_year))
    return frozenset(days)


@lru_cache(maxsize=64)
def _early_closes(year: int) -> frozenset[date]:
    days = {_nth_weekday(year, 11, 3, 4) + timedelta(days=1)}  # the day after Thanksgiving
    july3, dec24 = date(year, 7, 3), date(year, 12, 24)
    if july3.weekday() < 5 and date(year, 7, 4).weekday() not in (5, 6, 0):
        days.add(july3)  # only when Independence Day is not observed on the 3rd or 5th
    if dec24.weekday() < 5:
        days.add(dec24)
    return frozenset(d for d in days if is_trading_day(d))


def is_trading_day(day: date) -> bool:
    """Whether the exchange trades on ``day`` (a weekday that is no holiday)."""
    return day.weekday() < 5 and day not in _holidays(day.year)


def next_trading_day(day: date) -> date:
    """The first trading day after ``day``."""
    day += timedelta(days=1)
    while not is_trading_day(day):
        day += timedelta(days=1)
    return day


def trading_day(day: date) -> TradingDay:
    """The session bounds of ``day`` (which must be a trading day)."""
    early = day in _early_closes(day.year)

    def at(t: time) -> datetime:
        return datetime.combine(day, t, tzinfo=NEW_YORK)

    return TradingDay(
        day=day,
        pre_open=at(_PRE_OPEN),
        open=at(_OPEN),
        close=at(_EARLY_CLOSE if early else _CLOSE),
        post_close=at(_EARLY_POST_CLOSE if early else _POST_CLOSE),
    )


def session_at(now: datetime) -> Session:
    """Which session ``now`` falls in."""
    local = now.astimezone(NEW_YORK)
    if not is_trading_day(local.date()):
        return "closed"
    day = trading_day(local.date())
    if day.open <= local < day.close:
        return "regular"
    if day.pre_open <= local < day.open:
        return "pre"
    if day.close <= local < day.post_close:
        return "post"
    return "closed"


def days_from(now: datetime) -> list[TradingDay]:
    """Today's trading day (if any, even when its sessions are over) and the next one."""
    local = now.astimezone(NEW_YORK).date()
    first = local if is_trading_day(local) else next_trading_day(local)
    return [trading_day(first), trading_day(next_trading_day(first))]


def next_open(now: datetime, *, extended: bool = False) -> datetime:
    """The next instant at or after ``now`` when a session starts (pre-market if ``extended``)."""
    for day in days_from(now):
        start = day.pre_open if extended else day.open
        if start >= now:
            return start
    raise AssertionError("unreachable: the next trading day starts after now")


def next_close(now: datetime, *, extended: bool = False) -> datetime:
    """The next regular close (after-hours close if ``extended``) strictly after ``now``."""
    for day in days_from(now):
        end = day.post_close if extended else day.close
        if end > now:
            return end
    raise AssertionError("unreachable: the next trading day ends after now")


def clock_at(now: datetime, *, always_open: bool = False) -> dict[str, object]:
    """``GET /v2/clock`` values at ``now`` (datetimes in New York time, as Alpaca writes them)."""
    local = now.astimezone(NEW_YORK)
    is_open = always_open or session_at(now) == "regular"
    upcoming_open = next_open(now)
    if upcoming_open == now:
        upcoming_open = next_open(now + timedelta(microseconds=1))
    return {
        "timestamp": local,
        "is_open": is_open,
        "next_open": upcoming_open,
        "next_close": next_close(now),
    }


def calendar(start: date, end: date) -> list[TradingDay]:
    """Every trading day from ``start`` to ``end`` inclusive."""
    out = []
    day = start
    while day <= end:
        if is_trading_day(day):
            out.append(trading_day(day))
        day += timedelta(days=1)
    return out
