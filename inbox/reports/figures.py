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
from django.db import connection
from django.db.models import Count, FloatField, Func, Q

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


def read_samples(scope: Scope, period: Period, *, rows: bool = True) -> Samples:
    """Five queries; two without the samples' `rows` (summarised in the database instead)."""
    accounts = Q(account_id__in=scope.account_ids)
    samples = Samples()
    samples.opened = dict(
        Episode.objects.filter(accounts, opened_at__gte=period.start, opened_at__lt=period.end)
        .values("account_id")
        .annotate(n=Count("id"))
        .values_list("account_id", "n")
    )
    samples.hours = list(
        LetterHour.objects.filter(accounts, hour__gte=period.start, hour__lt=period.end)
        .values_list("account_id", "hour", "incoming", "replies")
        .order_by()
    )
    if rows:
        first, replies, resolved = sample_querysets(scope, period)
        samples.first_responses = _rows(first)
        samples.replies = _rows(replies)
        samples.resolutions = _rows(resolved)
    return samples


def sample_querysets(scope: Scope, period: Period) -> tuple:
    """First responses, replies and resolutions in the period, each row (account, person, start,
    end), the instants as POSIX seconds computed by the database: tens of thousands of floats
    load in a fraction of the time the same timestamps take to become aware datetimes."""
    accounts = Q(account_id__in=scope.account_ids)
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
    return (
        first.values_list(
            "account_id", "first_responder_id", Epoch("first_letter_at"), Epoch("first_response_at")
        ),
        replies.values_list("account_id", "responder_id", Epoch("waited_from"), Epoch("sent_at")),
        resolved.values_list("account_id", "resolver_id", Epoch("opened_at"), Epoch("resolved_at")),
    )


def _rows(queryset) -> list[tuple]:
    """(account, person or PHONE, start, end) per row, read with a plain cursor: the values are
    ints and floats already, and the ORM's per-value converters would cost more than the query."""
    sql, params = queryset.order_by().query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [(account, person or PHONE, start, end) for account, person, start, end in cursor]


class Epoch(Func):
    """A timestamp as POSIX seconds (a float), None for NULL."""

    output_field = FloatField()

    def as_postgresql(self, compiler, connection, **extra):
        return self.as_sql(
            compiler, connection, template="EXTRACT(EPOCH FROM %(expressions)s)::float8", **extra
        )

    def as_sqlite(self, compiler, connection, **extra):
        # SQLite keeps UTC text; julianday counts days from noon, 4714 BC.
        return self.as_sql(
            compiler,
            connection,
            template="((julianday(%(expressions)s) - 2440587.5) * 86400.0)",
            **extra,
        )


# --- durations: wall clock or business hours -------------------------------------------------

Duration = Callable[[int, float, float], float]  # (account, start, end in POSIX seconds)


def wall_clock(account_id: int, start: float, end: float) -> float:
    return max(0.0, end - start)


def business_hours(account_ids: Sequence[int], first: datetime, last: datetime) -> Duration:
    """Working seconds between two instants by each account's calendar (one query for the
    schedules, one for the holidays), fast for instants from `first` to `last`."""
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
        calendar.prepare(first, last)
        calendars[account_id] = calendar
    return lambda account_id, start, end: calendars[account_id].seconds_between(start, end)


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
            (account, person, duration(account, start, end) if start is not None else None)
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
    # Summaries the database computed (summaries_in_database), instead of the sample lists.
    first_summary: metrics.Summary | None = None
    reply_summary: metrics.Summary | None = None
    resolution_summary: metrics.Summary | None = None

    def figures(self) -> Figures:
        return Figures(
            new_conversations=self.opened,
            incoming=self.incoming,
            replies=self.replies,
            resolved=self.resolved,
            first_response=self.first_summary or metrics.summarise(self.first),
            reply_time=self.reply_summary or metrics.summarise(self.reply),
            resolution_time=self.resolution_summary or metrics.summarise(self.resolution),
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


@dataclass
class Summaries:
    """A period's figures: totals, per account, per person, and the first-response buckets."""

    totals: Figures
    by_account: dict
    by_agent: dict
    first_response_buckets: list[int]


def summaries(samples: Samples, times: Timed) -> Summaries:
    """From the samples' rows, in Python (any database, and business hours)."""
    return Summaries(
        totals=figures_of(samples, times),
        by_account=breakdown(samples, times, BY_ACCOUNT),
        by_agent=breakdown(samples, times, BY_AGENT),
        first_response_buckets=metrics.sla_buckets(
            row[2] for row in times.first_responses if row[2] is not None
        ),
    )


def summaries_in_database(
    scope: Scope, period: Period, samples: Samples, *, totals_only: bool = False
) -> Summaries:
    """Wall-clock figures summarised by PostgreSQL: counts, and medians and p90s with
    percentile_disc (which is the nearest-rank percentile of metrics.percentile), per account,
    per person and in total, one GROUPING SETS query per kind of sample. A 30-day report over
    all accounts then moves a few dozen rows instead of tens of thousands."""
    first, replies, resolved = sample_querysets(scope, period)
    groups: dict = defaultdict(_Group)
    buckets = [0] * (len(metrics.SLA_BOUNDS) + 1)
    for kind, queryset in (("first", first), ("reply", replies), ("resolution", resolved)):
        summarised = _summarised(queryset, kind == "first", totals_only)
        for level, key, total, count, median, p90, below in summarised:
            group = groups[(level, key)]
            summary = metrics.Summary(count, median, p90)
            if kind == "first":
                group.first_summary = summary
                if level == "total":
                    under = [*below, count]
                    buckets = [under[0]] + [b - a for a, b in zip(under, under[1:], strict=False)]
            elif kind == "reply":
                group.replies, group.reply_summary = total, summary
            else:
                group.resolved, group.resolution_summary = total, summary
    for account, opened in samples.opened.items():
        groups[("account", account)].opened += opened
        groups[("total", None)].opened += opened
    for account, _, incoming, _ in samples.hours:
        groups[("account", account)].incoming += incoming
        groups[("total", None)].incoming += incoming
    by_level: dict = {"account": {}, "agent": {}}
    for (level, key), group in groups.items():
        if level != "total":
            by_level[level][key] = group.figures()
    return Summaries(
        totals=groups[("total", None)].figures(),
        by_account=by_level["account"],
        by_agent=by_level["agent"],
        first_response_buckets=buckets,
    )


def _summarised(queryset, with_buckets: bool, totals_only: bool) -> list[tuple]:
    """(level, key, rows, samples, median, p90, [samples under each SLA bound]) per group."""
    inner, params = queryset.order_by().query.sql_with_params()
    under = "".join(
        f", count(*) FILTER (WHERE waited < {bound})"
        for bound in (metrics.SLA_BOUNDS if with_buckets else ())
    )
    groups = (
        "1, 1, NULL, NULL"
        if totals_only
        else "GROUPING(account), GROUPING(person), account, person"
    )
    sql = (
        f"SELECT {groups}, count(*), count(waited), "
        "percentile_disc(0.5) WITHIN GROUP (ORDER BY waited), "
        f"percentile_disc(0.9) WITHIN GROUP (ORDER BY waited){under} "
        "FROM (SELECT account, COALESCE(person, 0) AS person, "
        "GREATEST(finish - start, 0) AS waited "
        f"FROM ({inner}) AS raw(account, person, start, finish)) AS samples "
        + ("" if totals_only else "GROUP BY GROUPING SETS ((), (account), (person))")
    )
    result = []
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        for no_account, no_person, account, person, total, count, median, p90, *below in cursor:
            if no_account and no_person:
                level, key = "total", None
            elif no_person:
                level, key = "account", account
            else:
                level, key = "agent", person
            result.append((level, key, total, count, median, p90, below))
    return result


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
