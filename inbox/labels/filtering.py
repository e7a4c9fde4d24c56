"""The session list filtered by labels: `?label=3&label=7` lists the sessions that carry all of
them (support teams narrow down: "退款" and "VIP"), in the list's order, keyset-paged like any view.

Each account's part of a page (inbox.browse.session_page) is planned from the labels' maintained
counts in that account:
- a label that no session of the account carries empties the part (no read at all);
- when the rarest label is on few sessions (RARE_SESSIONS or fewer), its sessions are read from
  the label's index and sorted: five hundred rows at most, whatever the depth;
- otherwise the view's own index is walked newest first and each session is probed on the unique
  (session, label) index: a label on a third of the sessions finds a page in about 150 probes.
So a page costs about the same for a common label as for a rare one, at any depth.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.db.models import BooleanField, F, FilteredRelation, Func, Q, Value

from inbox.labels.models import Label, SessionLabel

# At or below this many sessions in an account, reading the label's sessions by primary key and
# sorting them costs less than the walk: a label on 500 of an account's 33,000 sessions needs
# ~3,400 probes for a page of 50; 500 primary-key reads stay a few milliseconds.
RARE_SESSIONS = 500
# More labels at once narrow nothing a person reads; it bounds the query's size.
MAX_LABELS = 5


class UnknownLabel(LookupError):
    """A label id that is not a label the list's accounts may carry."""


class AmongSessionsOf(Func):
    """The row's session is one of `label_id`'s in `account_id`, read first from the label's
    index (one range of labels_sessionlabel_by_label). On PostgreSQL an `= ANY(ARRAY(…))`: the
    subquery runs once (an InitPlan) and the few sessions are fetched by primary key, where
    `IN (subquery)` would leave the planner free to hash the label's rows and scan the account's
    sessions."""

    output_field = BooleanField()

    def __init__(self, label_id: int, account_id: int) -> None:
        super().__init__(F("pk"), Value(label_id), Value(account_id))

    def as_sql(self, compiler, connection, **extra):
        session, label, account = (compiler.compile(e) for e in self.get_source_expressions())
        ids = (
            f"SELECT session_id FROM {SessionLabel._meta.db_table} "
            f"WHERE label_id = {label[0]} AND account_id = {account[0]}"
        )
        if connection.vendor == "postgresql":
            sql = f"{session[0]} = ANY(ARRAY({ids}))"
        else:
            sql = f"{session[0]} IN ({ids})"
        return sql, (*session[1], *label[1], *account[1])


class Carries(Func):
    """The row's session carries `label_id`: one probe of the unique (session, label) index.
    Written as a scalar subquery (true, or NULL when there is no such row) rather than EXISTS:
    PostgreSQL may turn an EXISTS into a join that hashes every session of the label, where the
    walk down the list wants a probe per session it passes and a stop after a page."""

    output_field = BooleanField()

    def __init__(self, label_id: int) -> None:
        super().__init__(F("pk"), Value(label_id))

    def as_sql(self, compiler, connection, **extra):
        session, label = (compiler.compile(e) for e in self.get_source_expressions())
        sql = (
            f"(SELECT true FROM {SessionLabel._meta.db_table} "
            f"WHERE session_id = {session[0]} AND label_id = {label[0]})"
        )
        return sql, (*session[1], *label[1])


def carries_all(label_ids: Sequence[int]) -> Q:
    """Sessions carrying every one of `label_ids` (for a poll's few changed rows)."""
    condition = Q()
    for label_id in label_ids:
        condition &= Q(Carries(label_id))
    return condition


def account_conditions(
    label_ids: Sequence[int], account_ids: Sequence[int], visible_ids: Sequence[int]
) -> dict[int, Q | None]:
    """Per account of `account_ids`, the condition its part of the page adds (None: the part
    is empty), planned as the module says, from one query (the labels with their counters in
    these accounts). UnknownLabel when a label is not one of the `visible_ids` accounts' (a
    label of another account the user sees just lists nothing here)."""
    rows = (
        Label.objects.for_accounts(visible_ids)
        .filter(pk__in=label_ids)
        .annotate(
            counted=FilteredRelation("counters", condition=Q(counters__account_id__in=account_ids))
        )
        .values_list("pk", "account_id", "counted__account_id", "counted__sessions")
    )
    labels, counts = {}, {}
    for label_id, label_account_id, account_id, sessions in rows:
        labels[label_id] = label_account_id
        if account_id is not None:
            counts[label_id, account_id] = sessions
    if len(labels) != len(set(label_ids)):
        raise UnknownLabel("unknown label")
    conditions: dict[int, Q | None] = {}
    for account_id in account_ids:
        sizes = {
            label_id: counts.get((label_id, account_id), 0)
            for label_id, owner in labels.items()
            if owner in (None, account_id)
        }
        if len(sizes) < len(labels) or min(sizes.values()) <= 0:
            conditions[account_id] = None
            continue
        rarest = min(sizes, key=sizes.get)
        if sizes[rarest] <= RARE_SESSIONS:
            condition = Q(AmongSessionsOf(rarest, account_id))
            others = [label_id for label_id in sizes if label_id != rarest]
        else:
            condition, others = Q(), list(sizes)
        conditions[account_id] = condition & carries_all(others)
    return conditions
