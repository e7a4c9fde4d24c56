"""The reports' arithmetic, pure: percentiles, SLA buckets, changes, and business time.

Percentiles use the nearest-rank method: the q-th percentile of n samples is the smallest sample
with at least q·n samples at or below it (sorted ascending, the one at position ceil(q·n)). It is
always a real sample (a waiting time somebody had), never an average of two; the median is the
50th percentile, so with an even count it is the lower of the two middle samples.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo

# The first-response histogram's buckets: upper bounds in seconds (exclusive), then "more".
SLA_BOUNDS = (60, 5 * 60, 3600, 86_400)
DEFAULT_SPANS: tuple[tuple[time, time] | None, ...] = (
    *[(time(9), time(18))] * 5,
    None,
    None,
)


def percentile(samples: Sequence[float], q: float) -> float | None:
    """The nearest-rank q-percentile (0 < q ≤ 1) of `samples`, None when there are none."""
    if not samples:
        return None
    ordered = sorted(samples)
    return ordered[max(1, math.ceil(q * len(ordered))) - 1]


def median(samples: Sequence[float]) -> float | None:
    return percentile(samples, 0.5)


@dataclass(frozen=True)
class Summary:
    """What a card shows for one time metric: how many samples, their median and p90."""

    count: int
    median: float | None
    p90: float | None


def summarise(samples: Sequence[float]) -> Summary:
    ordered = sorted(samples)
    return Summary(len(ordered), percentile(ordered, 0.5), percentile(ordered, 0.9))


def sla_buckets(samples: Iterable[float]) -> list[int]:
    """How many samples fall under 1 min, 5 min, 1 h, 1 day, and more."""
    counts = [0] * (len(SLA_BOUNDS) + 1)
    for seconds in samples:
        counts[bisect_right(SLA_BOUNDS, seconds)] += 1
    return counts


def change(current: float | None, previous: float | None) -> float | None:
    """The relative change from the previous period, as a fraction (0.25 = +25%); None when there
    is nothing to compare with."""
    if current is None or previous is None or previous == 0:
        return None
    return (current - previous) / previous


class BusinessCalendar:
    """Working time of one team: a span per weekday (Monday first; None for a day off) in a time
    zone, minus holidays. `seconds(start, end)` is the working time between two instants: nights,
    weekends and holidays count nothing, and a day's span is measured in real seconds (on the day
    a zone springs forward, 00:00-12:00 is 11 hours).

    Many intervals over a few weeks: call `prepare(first, last)` first, then each `seconds()` is
    two lookups in a table of cumulative working seconds per day."""

    def __init__(
        self,
        zone: tzinfo,
        spans: Sequence[tuple[time, time] | None] = DEFAULT_SPANS,
        holidays: Iterable[date] = (),
    ):
        self.zone = zone
        self.spans = list(spans)
        self.holidays = frozenset(holidays)
        self._first: date | None = None
        self._opens: list[float] = []
        self._closes: list[float] = []
        self._before: list[float] = []
        self._day_starts: list[float] = []
        self._table_end = 0.0

    def day_span(self, day: date) -> tuple[float, float] | None:
        """The day's working span as POSIX timestamps, None if nobody works that day."""
        span = self.spans[day.weekday()]
        if span is None or day in self.holidays:
            return None
        opens = datetime.combine(day, span[0], tzinfo=self.zone).timestamp()
        closes = datetime.combine(day, span[1], tzinfo=self.zone).timestamp()
        return (opens, closes) if closes > opens else None

    def prepare(self, first: datetime, last: datetime) -> None:
        start = first.astimezone(self.zone).date()
        end = last.astimezone(self.zone).date()
        self._first = start
        self._opens, self._closes, self._before, self._day_starts = [], [], [], []
        total = 0.0
        day = start
        while day <= end:
            self._day_starts.append(datetime.combine(day, time(0), tzinfo=self.zone).timestamp())
            span = self.day_span(day) or (0.0, 0.0)
            self._opens.append(span[0])
            self._closes.append(span[1])
            self._before.append(total)
            total += span[1] - span[0]
            day += timedelta(days=1)
        self._table_end = datetime.combine(day, time(0), tzinfo=self.zone).timestamp()

    def seconds_between(self, start: float, end: float) -> float:
        """`seconds()` for POSIX timestamps: within the prepared table, two bisections."""
        if end <= start:
            return 0.0
        a, b = self._worked_until_timestamp(start), self._worked_until_timestamp(end)
        if a is not None and b is not None:
            return b - a
        return self.seconds(
            datetime.fromtimestamp(start, self.zone), datetime.fromtimestamp(end, self.zone)
        )

    def _worked_until_timestamp(self, at: float) -> float | None:
        index = bisect_right(self._day_starts, at) - 1
        if not 0 <= index < len(self._opens) or at >= self._table_end:
            return None
        opens, closes = self._opens[index], self._closes[index]
        return self._before[index] + min(max(at - opens, 0.0), closes - opens)

    def _worked_until(self, moment: datetime) -> float | None:
        """Working seconds from the prepared table's first day to `moment`, None outside it."""
        if self._first is None:
            return None
        index = (moment.astimezone(self.zone).date() - self._first).days
        if not 0 <= index < len(self._opens):
            return None
        at = moment.timestamp()
        opens, closes = self._opens[index], self._closes[index]
        return self._before[index] + min(max(at - opens, 0.0), closes - opens)

    def seconds(self, start: datetime, end: datetime) -> float:
        if end <= start:
            return 0.0
        a, b = self._worked_until(start), self._worked_until(end)
        if a is not None and b is not None:
            return b - a
        total = 0.0
        day = start.astimezone(self.zone).date()
        last = end.astimezone(self.zone).date()
        begin, finish = start.timestamp(), end.timestamp()
        while day <= last:
            span = self.day_span(day)
            if span is not None:
                total += max(0.0, min(finish, span[1]) - max(begin, span[0]))
            day += timedelta(days=1)
        return total
