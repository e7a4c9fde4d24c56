"""What a report shows, read from the facts (never from the message table): a fixed number of
queries whatever the range, each an index range over its fact table.

A figure belongs to the period in which it happened: new conversations by when they opened,
first responses, replies and reply times by when the reply was sent, resolutions by when they
were resolved, letters by their hour.
"""

from __future__ import annotations

import zoneinfo
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from django.conf import settings
from django.db.models import Count, Q

from inbox.reports import metrics
from inbox.reports.models import BusinessHours, Episode, Holiday, LetterHour, ReplyFact

PHONE = 0  # the responder key of replies written on the account's phone


@dataclass(frozen=True)
class Period:
    start: datetime  # inclusive, aware
    end: datetime  # exclusive

    @property
    def previous(self) -> Period:
        return Period(self.start - (self.end - self.start), self.start)

    def days(self) -> list[date]:
        zone = local_zone()
        first = self.start.astimezone(zone).date()
        last = (self.end - timedelta(microseconds=1)).astimezone(zone).date()
        return [first + timedelta(days=n) for n in range((last - first).days + 1)]


@dataclass(frozen=True)
class Scope:
    """Whose figures: these accounts (already limited to what the user may see), and optionally
    one agent (their replies, first responses and resolutions)."""

    account_ids: tuple[int, ...]
    agent_id: int | None = None


def local_zone() -> zoneinfo.ZoneInfo:
    return zoneinfo.ZoneInfo(settings.TIME_ZONE)


@dataclass
class Samples:
    """The raw facts of one period, read once, from which every figure is computed."""

    opened: dict[int, int] = field(default_factory=dict)  # account → new conversations
    # (account, responder or PHONE, start, end) of each sample
    first_responses: list[tuple] = field(default_factory=list)
    replies: list[tuple] = field(default_factory=list)  # (account, responder, waited_from, sent)
    resolutions: list[tuple] = field(default_factory=list)  # (account, resolver, opened, resolved)
    hours: list[tuple] = field(default_factory=list)  # (account, hour, incoming, replies)


def read_samples(scope: Scope, period: Period) -> Samples:
    """Five queries."""
    accounts = Q(account_id__in=scope.account_ids)
    samples = Samples()
    samples.opened = dict(
        Episode.objects.filter(accounts, opened_at__gte=period.start, opened_at__lt=period.end)
        .values("account_id")
        .annotate(n=Count("id"))
        .values_list("account_id", "n")
    )
    first = Episode.objects.filter(
        accounts,
        first_response_at__gte=period.start,
        first_response_at__lt=period.end,
        first_letter_at__isnull=False,
    )
    replies = ReplyFact.objects.filter(accounts, sent_at__gte=period.start, sent_at__lt=period.end)
    resolved = Episode.objects.filter(
        accounts, resolved_at__gte=period.start, resolved_at__lt=period.end
    )
    if scope.agent_id is not None:
        first = first.filter(first_responder_id=scope.agent_id)
        replies = replies.filter(responder_id=scope.agent_id)
        resolved = resolved.filter(resolver_id=scope.agent_id)
    samples.first_responses = [
        (account, responder or PHONE, start, end)
        for account, responder, start, end in first.values_list(
            "account_id", "first_responder_id", "first_letter_at", "first_response_at"
        )
    ]
    samples.replies = [
        (account, responder or PHONE, start, end)
        for account, responder, start, end in replies.values_list(
            "account_id", "responder_id", "waited_from", "sent_at"
        )
    ]
    samples.resolutions = [
        (account, resolver or PHONE, start, end)
        for account, resolver, start, end in resolved.values_list(
            "account_id", "resolver_id", "opened_at", "resolved_at"
        )
    ]
    samples.hours = list(
        LetterHour.objects.filter(accounts, hour__gte=period.start, hour__lt=period.end)
        .values_list("account_id", "hour", "incoming", "replies")
        .order_by()
    )
    return samples


# --- durations: wall clock or business hours -------------------------------------------------

Duration = Callable[[int, datetime, datetime], float]


def wall_clock(account_id: int, start: datetime, end: datetime) -> float:
    return max(0.0, (end - start).total_seconds())


def business_hours(account_ids: Sequence[int], period: Period, earliest: datetime) -> Duration:
    """Working seconds between two instants by each account's calendar (one query for the
    schedules, one for the holidays)."""
    zone = local_zone()
    schedules = {
        hours.account_id: hours.spans()
        for hours in BusinessHours.objects.filter(account_id__in=account_ids)
    }
    holidays: dict[int | None, list[date]] = defaultdict(list)
    for account_id, day in Holiday.objects.filter(
        Q(account_id__in=account_ids) | Q(account__isnull=True)
    ).values_list("account_id", "date"):
        holidays[account_id].append(day)
    calendars = {}
    for account_id in account_ids:
        calendar = metrics.BusinessCalendar(
            zone,
            schedules.get(account_id, metrics.DEFAULT_SPANS),
            holidays[None] + holidays[account_id],
        )
        calendar.prepare(min(earliest, period.start), period.end)
        calendars[account_id] = calendar
    return lambda account_id, start, end: calendars[account_id].seconds(start, end)


# --- figures ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Dimension:
    """A way to break figures down: a key per sample, and how a key is named. Labels plug in
    here as one more dimension once conversations carry them."""

    key: str
    title: str
    key_of: Callable[[tuple], object]


BY_ACCOUNT = Dimension("account", "account", lambda sample: sample[0])
BY_AGENT = Dimension("agent", "agent", lambda sample: sample[1])


@dataclass
class Figures:
    new_conversations: int
    incoming: int
    replies: int
    resolved: int
    first_response: metrics.Summary
    reply_time: metrics.Summary
    resolution_time: metrics.Summary


@dataclass
class Timed:
    """A period's samples as (account, person, seconds): seconds None for a reply that answered
    nothing waiting. Durations are computed once, then grouped as each table needs."""

    first_responses: list[tuple]
    replies: list[tuple]
    resolutions: list[tuple]


def timed(samples: Samples, duration: Duration) -> Timed:
    def rows(samples_rows):
        return [
            (account, person, duration(account, start, end) if start else None)
            for account, person, start, end in samples_rows
        ]

    return Timed(rows(samples.first_responses), rows(samples.replies), rows(samples.resolutions))


@dataclass
class _Group:
    first: list[float] = field(default_factory=list)
    reply: list[float] = field(default_factory=list)
    resolution: list[float] = field(default_factory=list)
    replies: int = 0
    resolved: int = 0
    opened: int = 0
    incoming: int = 0

    def figures(self) -> Figures:
        return Figures(
            new_conversations=self.opened,
            incoming=self.incoming,
            replies=self.replies,
            resolved=self.resolved,
            first_response=metrics.summarise(self.first),
            reply_time=metrics.summarise(self.reply),
            resolution_time=metrics.summarise(self.resolution),
        )


def _grouped(samples: Samples, times: Timed, key: Callable[[tuple], object]) -> dict:
    """Figures per key, in one pass over each kind of sample."""
    groups: dict = defaultdict(_Group)
    for row in times.first_responses:
        if row[2] is not None:
            groups[key(row)].first.append(row[2])
    for row in times.replies:
        group = groups[key(row)]
        group.replies += 1
        if row[2] is not None:
            group.reply.append(row[2])
    for row in times.resolutions:
        group = groups[key(row)]
        group.resolved += 1
        group.resolution.append(row[2])
    return groups


def figures_of(samples: Samples, times: Timed) -> Figures:
    """The period's totals."""
    group = _grouped(samples, times, lambda row: None).get(None, _Group())
    group.opened = sum(samples.opened.values())
    group.incoming = sum(row[2] for row in samples.hours)
    return group.figures()


def breakdown(samples: Samples, times: Timed, dimension: Dimension) -> dict:
    """Figures per key of `dimension`. New conversations and incoming letters belong to an
    account, not to a person."""
    groups = _grouped(samples, times, dimension.key_of)
    if dimension is BY_ACCOUNT:
        for account, opened in samples.opened.items():
            groups[account].opened += opened
        for account, _, incoming, _ in samples.hours:
            groups[account].incoming += incoming
    return {key: group.figures() for key, group in groups.items()}


def volume(samples: Samples, period: Period, by_hour: bool) -> list[tuple[str, int, int]]:
    """(label, incoming, replies) per local day, or per local hour."""
    zone = local_zone()
    buckets: dict[str, list[int]] = {}
    if by_hour:
        moment = period.start
        while moment < period.end:
            buckets[moment.astimezone(zone).strftime("%m-%d %H:00")] = [0, 0]
            moment += timedelta(hours=1)
    else:
        for day in period.days():
            buckets[day.isoformat()] = [0, 0]
    for _, hour, incoming, replies in samples.hours:
        local = hour.astimezone(zone)
        label = local.strftime("%m-%d %H:00") if by_hour else local.date().isoformat()
        if label in buckets:
            buckets[label][0] += incoming
            buckets[label][1] += replies
    return [(label, counts[0], counts[1]) for label, counts in buckets.items()]


def heatmap(samples: Samples) -> list[list[int]]:
    """Incoming letters per local weekday (Monday first) and hour: 7 rows of 24."""
    zone = local_zone()
    grid = [[0] * 24 for _ in range(7)]
    for _, hour, incoming, _ in samples.hours:
        local = hour.astimezone(zone)
        grid[local.weekday()][local.hour] += incoming
    return grid
