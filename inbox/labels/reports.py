"""The report's "by label" table: per label, the conversations that opened and were resolved in
the period, and their first response times (median), from the report facts joined to the labels
the sessions carry now. One query, whatever the range.

A conversation counts under every label its session carries (so the rows do not add up to the
totals), and under the labels it carries today: a label taken off since no longer counts it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

from django.db import connection
from django.db.models import F, FloatField, IntegerField, Q, Value
from django.db.models.functions import Cast

from inbox.reports import metrics
from inbox.reports.figures import Epoch, Period, Scope
from inbox.reports.models import Episode

OPENED, RESPONDED, RESOLVED = 1, 2, 3
LABEL = "session__label_links__label"


@dataclass
class LabelFigures:
    name: str
    opened: int = 0
    resolved: int = 0
    first_responses: list[float] = field(default_factory=list)

    @property
    def first_response(self) -> metrics.Summary:
        return metrics.summarise(self.first_responses)


def by_label(
    scope: Scope, period: Period, duration: Callable[[int, float, float], float]
) -> list[LabelFigures]:
    """The labels' figures, most conversations first. `duration` measures a first response
    (wall-clock or business hours, as the rest of the report)."""
    episodes = Episode.objects.filter(
        Q(account_id__in=scope.account_ids), session__label_links__isnull=False
    )
    # Typed: PostgreSQL takes a bare NULL in a UNION's first part for text.
    nothing = Cast(Value(None), FloatField())

    def part(kind: int, condition: Q, start=nothing, end=nothing):
        return episodes.filter(condition).values_list(
            Value(kind, output_field=IntegerField()),
            F(f"{LABEL}__id"),
            F(f"{LABEL}__name"),
            "account_id",
            start,
            end,
        )

    opened = Q(opened_at__gte=period.start, opened_at__lt=period.end)
    responded = Q(
        first_response_at__gte=period.start,
        first_response_at__lt=period.end,
        first_letter_at__isnull=False,
    )
    resolved = Q(resolved_at__gte=period.start, resolved_at__lt=period.end)
    if scope.agent_id is not None:
        responded &= Q(first_responder_id=scope.agent_id)
        resolved &= Q(resolver_id=scope.agent_id)
    parts = [
        part(OPENED, opened),
        part(RESPONDED, responded, Epoch("first_letter_at"), Epoch("first_response_at")),
        part(RESOLVED, resolved),
    ]
    sqls, params = [], []
    for queryset in parts:
        sql, part_params = queryset.order_by().query.sql_with_params()
        sqls.append(f"SELECT * FROM ({sql}) AS part{len(sqls)}")
        params.extend(part_params)
    labels: dict[int, LabelFigures] = defaultdict(lambda: LabelFigures(""))
    with connection.cursor() as cursor:
        cursor.execute(" UNION ALL ".join(sqls), params)
        for kind, label_id, name, account_id, start, end in cursor:
            figures = labels[label_id]
            figures.name = name
            if kind == OPENED:
                figures.opened += 1
            elif kind == RESOLVED:
                figures.resolved += 1
            else:
                figures.first_responses.append(duration(account_id, start, end))
    return sorted(labels.values(), key=lambda f: (-f.opened, -f.resolved, f.name))
