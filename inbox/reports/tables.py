"""A report as tables: the page renders them (cards, breakdowns, each chart's numbers) and the CSV
export writes the same ones, so what is shown and what is exported cannot differ."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.db import connection
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import Account
from inbox.labels import reports as label_reports
from inbox.reports import figures, metrics
from inbox.reports.figures import PHONE, Period, Scope


@dataclass
class Table:
    key: str
    title: str
    columns: list[str]
    rows: list[list[Any]] = field(default_factory=list)


@dataclass
class Card:
    label: str
    value: str
    previous: str
    change: float | None
    # Whether a rise is good news (more replies) or bad (longer waits): the arrow's colour.
    rise_is_good: bool
    detail: str = ""

    @property
    def change_percent(self) -> str:
        if self.change is None:
            return ""
        return f"{self.change * 100:+.0f}%"

    @property
    def trend(self) -> str:
        if not self.change:
            return "flat"
        return "good" if (self.change > 0) == self.rise_is_good else "bad"


@dataclass
class Report:
    period: Period
    business: bool
    cards: list[Card]
    tables: dict[str, Table]
    charts: dict[str, Any]


def format_duration(seconds: float | None) -> str:
    """1 h 5 min, 45 s, 2 d 3 h: two units at most."""
    if seconds is None:
        return "—"
    seconds = int(round(seconds))
    units = [(86_400, _("d")), (3600, _("h")), (60, _("min")), (1, _("s"))]
    parts = []
    for size, name in units:
        if seconds >= size or (size == 1 and not parts):
            parts.append(f"{seconds // size} {name}")
            seconds %= size
        if len(parts) == 2:
            break
    return " ".join(parts)


def build(
    scope: Scope, period: Period, *, business: bool, by_hour: bool, accounts: list[Account]
) -> Report:
    in_database = not business and connection.vendor == "postgresql"
    current = figures.read_samples(scope, period, rows=not in_database)
    previous = figures.read_samples(scope, period.previous, rows=not in_database)
    duration = figures.wall_clock
    if in_database:
        now = figures.summaries_in_database(scope, period, current)
        before = figures.summaries_in_database(scope, period.previous, previous, totals_only=True)
    else:
        duration = _duration(scope, period, business, current, previous)
        now = figures.summaries(current, figures.timed(current, duration))
        before = figures.summaries(previous, figures.timed(previous, duration))
    names = _names(now, accounts)
    tables = {
        "overview": _overview(now.totals, before.totals),
        "accounts": _breakdown_table(
            "accounts", _("By account"), _("Account"), now.by_account, True, names["account"]
        ),
        "agents": _breakdown_table(
            "agents", _("By agent"), _("Agent"), now.by_agent, False, names["agent"]
        ),
        "volume": Table(
            "volume",
            _("Letters over time"),
            [_("Hour") if by_hour else _("Day"), _("Incoming letters"), _("Replies sent")],
            [list(row) for row in figures.volume(current, period, by_hour)],
        ),
        "first_response": _histogram(now.first_response_buckets),
        "heatmap": _heatmap(current),
        "labels": _label_table(scope, period, duration),
    }
    return Report(
        period=period,
        business=business,
        cards=_cards(now.totals, before.totals),
        tables=tables,
        charts=_charts(tables),
    )


def _duration(scope, period, business, current, previous) -> figures.Duration:
    if not business:
        return figures.wall_clock
    starts = [
        row[2]
        for samples in (current, previous)
        for rows in (samples.first_responses, samples.replies, samples.resolutions)
        for row in rows
        if row[2] is not None
    ]
    earliest = min(starts, default=period.previous.start.timestamp())
    # The calendars' tables reach from the earliest wait to the end of the current period.
    first = min(datetime.fromtimestamp(earliest, tz=UTC), period.previous.start)
    return figures.business_hours(scope.account_ids, first, period.end)


def _names(summaries: figures.Summaries, accounts: list[Account]) -> dict:
    users = set(summaries.by_agent) - {PHONE}
    people = {
        user.pk: user.get_full_name() or user.get_username()
        for user in get_user_model().objects.filter(pk__in=users)
    }
    return {
        "account": {account.pk: account.name for account in accounts},
        "agent": {PHONE: _("The account (phone)"), **people},
    }


def _cards(now: figures.Figures, before: figures.Figures) -> list[Card]:
    def count(label, attribute, good=True):
        value, old = getattr(now, attribute), getattr(before, attribute)
        return Card(label, f"{value:,}", f"{old:,}", metrics.change(value, old), good)

    def timing(label, attribute):
        value, old = getattr(now, attribute), getattr(before, attribute)
        return Card(
            label,
            format_duration(value.median),
            format_duration(old.median),
            metrics.change(value.median, old.median),
            False,
            detail=_("p90 %(p90)s · %(count)s samples")
            % {"p90": format_duration(value.p90), "count": f"{value.count:,}"},
        )

    return [
        count(_("New conversations"), "new_conversations"),
        count(_("Incoming letters"), "incoming"),
        count(_("Replies sent"), "replies"),
        count(_("Resolved"), "resolved"),
        timing(_("First response time (median)"), "first_response"),
        timing(_("Reply time (median)"), "reply_time"),
        timing(_("Resolution time (median)"), "resolution_time"),
    ]


def _overview(now: figures.Figures, before: figures.Figures) -> Table:
    table = Table(
        "overview",
        _("Overview"),
        [_("Figure"), _("This period"), _("Previous period"), _("Change")],
    )
    for label, attribute in (
        (_("New conversations"), "new_conversations"),
        (_("Incoming letters"), "incoming"),
        (_("Replies sent"), "replies"),
        (_("Resolved"), "resolved"),
    ):
        value, old = getattr(now, attribute), getattr(before, attribute)
        table.rows.append([label, value, old, _percent(metrics.change(value, old))])
    for label, attribute in (
        (_("First response time"), "first_response"),
        (_("Reply time"), "reply_time"),
        (_("Resolution time"), "resolution_time"),
    ):
        value, old = getattr(now, attribute), getattr(before, attribute)
        for name, statistic in ((_("median"), "median"), ("p90", "p90")):
            table.rows.append(
                [
                    f"{label}, {name}",
                    format_duration(getattr(value, statistic)),
                    format_duration(getattr(old, statistic)),
                    _percent(metrics.change(getattr(value, statistic), getattr(old, statistic))),
                ]
            )
    return table


def _percent(change: float | None) -> str:
    return "" if change is None else f"{change * 100:+.0f}%"


def _breakdown_table(key, title, first_column, rows: dict, per_account: bool, known) -> Table:
    table = Table(
        key,
        title,
        [
            first_column,
            _("New conversations"),
            _("Incoming letters"),
            _("Replies sent"),
            _("Resolved"),
            _("First response, median"),
            _("First response, p90"),
            _("Reply time, median"),
            _("Reply time, p90"),
            _("Resolution time, median"),
            _("Resolution time, p90"),
        ],
    )
    for item_key, values in sorted(rows.items(), key=lambda item: -item[1].replies):
        table.rows.append(
            [
                known.get(item_key, str(item_key)),
                values.new_conversations if per_account else "",
                values.incoming if per_account else "",
                values.replies,
                values.resolved,
                format_duration(values.first_response.median),
                format_duration(values.first_response.p90),
                format_duration(values.reply_time.median),
                format_duration(values.reply_time.p90),
                format_duration(values.resolution_time.median),
                format_duration(values.resolution_time.p90),
            ]
        )
    return table


def _label_table(scope: Scope, period: Period, duration: figures.Duration) -> Table:
    table = Table(
        "labels",
        _("By label"),
        [
            _("Label"),
            _("New conversations"),
            _("Resolved"),
            _("First responses"),
            _("First response, median"),
        ],
    )
    for row in label_reports.by_label(scope, period, duration):
        summary = row.first_response
        table.rows.append(
            [row.name, row.opened, row.resolved, summary.count, format_duration(summary.median)]
        )
    return table


def _histogram(counts: list[int]) -> Table:
    labels = [_("< 1 min"), _("< 5 min"), _("< 1 h"), _("< 1 day"), _("1 day or more")]
    return Table(
        "first_response",
        _("First response time"),
        [_("Waited"), _("Conversations")],
        [[label, count] for label, count in zip(labels, counts, strict=True)],
    )


def _heatmap(samples: figures.Samples) -> Table:
    days = [_("Mon"), _("Tue"), _("Wed"), _("Thu"), _("Fri"), _("Sat"), _("Sun")]
    grid = figures.heatmap(samples)
    return Table(
        "heatmap",
        _("Incoming letters by weekday and hour"),
        [_("Weekday"), *[f"{hour:02d}" for hour in range(24)]],
        [[day, *row] for day, row in zip(days, grid, strict=True)],
    )


def _charts(tables: dict[str, Table]) -> dict[str, Any]:
    """What static/inbox/reports.js draws, with its words already translated."""
    volume, histogram = tables["volume"], tables["first_response"]
    heatmap, agents = tables["heatmap"], tables["agents"]
    return {
        "volume": {
            "labels": [row[0] for row in volume.rows],
            "series": [
                {"name": volume.columns[1], "data": [row[1] for row in volume.rows]},
                {"name": volume.columns[2], "data": [row[2] for row in volume.rows]},
            ],
        },
        "first_response": {
            "labels": [row[0] for row in histogram.rows],
            "name": histogram.columns[1],
            "data": [row[1] for row in histogram.rows],
        },
        "heatmap": {
            "days": [row[0] for row in heatmap.rows],
            "hours": heatmap.columns[1:],
            "name": _("Incoming letters"),
            "data": [
                [hour, day, count]
                for day, row in enumerate(heatmap.rows)
                for hour, count in enumerate(row[1:])
            ],
        },
        "agents": {
            "labels": [row[0] for row in agents.rows],
            "series": [
                {"name": agents.columns[3], "data": [row[3] for row in agents.rows]},
                {"name": agents.columns[4], "data": [row[4] for row in agents.rows]},
            ],
        },
    }


def default_period(key: str, start=None, end=None) -> Period:
    """today, yesterday, 7d, 30d (ending today), or custom (local dates, both inclusive)."""
    zone = figures.local_zone()
    today = timezone.now().astimezone(zone).date()
    first, last = {
        "today": (today, today),
        "yesterday": (today - timedelta(days=1), today - timedelta(days=1)),
        "7d": (today - timedelta(days=6), today),
        "30d": (today - timedelta(days=29), today),
    }.get(key, (start, end))
    return Period(_midnight(first, zone), _midnight(last + timedelta(days=1), zone))


def _midnight(day, zone) -> datetime:
    return datetime.combine(day, time(0), tzinfo=zone)
