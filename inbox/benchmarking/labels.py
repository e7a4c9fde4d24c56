"""Labels in the benchmark data set: one shared label on about 30% of the sessions, one on about
0.5%, put on set-based (one INSERT … SELECT each, the counters' triggers counting them) and only
where missing, so a data set built before labels existed gets them once and a rerun changes
nothing. Then the probes of the list filtered by them, first page and deep down."""

from __future__ import annotations

from dataclasses import dataclass

from django.db import connection

from inbox import browse
from inbox.labels.models import Label, SessionLabel
from inbox.models import Session

COMMON = "bench-常见"
RARE = "bench-罕见"
# Which sessions carry a label: a multiplicative hash of the id, so they spread over every
# account and every age (per mille).
SHARE = {COMMON: 300, RARE: 5}


@dataclass(frozen=True)
class BenchLabels:
    common: Label
    rare: Label


def ensure_labels() -> BenchLabels:
    labels = {}
    for name, per_mille in SHARE.items():
        label, _ = Label.objects.get_or_create(
            name=name, account=None, defaults={"colour": "blue" if per_mille > 50 else "red"}
        )
        labels[name] = label
        if not SessionLabel.objects.filter(label=label).exists():
            with connection.cursor() as cursor:
                cursor.execute(
                    f"""
                    INSERT INTO {SessionLabel._meta.db_table}
                        (session_id, label_id, account_id, added_at)
                    SELECT id, %s, account_id, CURRENT_TIMESTAMP FROM {Session._meta.db_table}
                    WHERE (id * 2654435761) %% 1000 < %s
                    ON CONFLICT DO NOTHING
                    """,
                    [label.pk, per_mille],
                )
                if connection.vendor == "postgresql":
                    cursor.execute(f"ANALYZE {SessionLabel._meta.db_table}")
    return BenchLabels(common=labels[COMMON], rare=labels[RARE])


def cursor_at(label: Label, user, page: int) -> str | None:
    """The load-more cursor of the list filtered by `label` at `page` (or its last page); None
    when no session carries it (a tiny data set)."""
    ordered = (
        browse.visible_sessions(user)
        .filter(label_links__label=label)
        .order_by("-last_message_at", "-pk")
    )
    total = ordered.count()
    if not total:
        return None
    row = max(min((page - 1) * browse.SESSION_PAGE, total) - 1, 0)
    return browse.session_key(ordered[row])
