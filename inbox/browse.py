"""Reading the inbox: what a user may see, the session list's views, keyset cursors and the
thread's pages. Every function here runs a fixed number of queries, whatever the row counts.

Cursors never use OFFSET: the session list pages on (last_message_at, id) descending, a thread on
(created_at, seq, id) in either direction, each with one row comparison, `(a, b) < (x, y)`, which
an index serves as a range (`a < x OR (a = x AND b < y)` it cannot). Live polls ask "changed
since T?" on the indexed `updated_at` columns. The sidebar's counts come from the maintained
inbox.SessionCounter rows (inbox/counters.py), never from counting sessions.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from django.db.models import F, Field, Func, Q, QuerySet, Sum, Value
from django.db.models.expressions import RawSQL
from django.db.models.functions import Coalesce
from django.db.models.lookups import GreaterThan, GreaterThanOrEqual, LessThan
from django.utils import timezone
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from accounts.models import Account
from inbox.labels import filtering as labels_filtering
from inbox.labels.chips import with_label_chips
from inbox.models import THREAD_SEQ, Message, Session, SessionCounter

SESSION_PAGE = 50
THREAD_PAGE = 50
# A search hit opens its thread with this many messages either side of it.
AROUND = 25
# At most this many changed rows go out in one poll answer; the rest follow in the next.
POLL_BATCH = 100
# A poll's "since" trails the clock by this much. A row is stamped with updated_at before its
# transaction commits, so a poll can run between the stamp and the commit; looking back a little
# catches such rows a moment later (they are swapped in by id, so seeing one twice is harmless).
POLL_LAG = timedelta(seconds=5)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


# --- who sees what -------------------------------------------------------------------------------


def visible_sessions(user) -> QuerySet[Session]:
    return Session.objects.visible_to(user)


def visible_messages(user) -> QuerySet[Message]:
    if user.is_superuser:
        return Message.objects.all()
    return Message.objects.filter(account__members=user)


def visible_accounts(user, *, counts: bool = False) -> list[Account]:
    """The accounts in the sidebar, in one query. With `counts`, each also carries `counts`
    (sessions per view key) and `unread` (its unread letters), summed from its few counter rows."""
    accounts = Account.objects.visible_to(user).order_by("name", "pk")
    if not counts:
        return list(accounts)
    sums = {
        f"count_{view.key}": Coalesce(
            Sum("session_counters__sessions", filter=_counter_filter(view, user)), 0
        )
        for view in VIEWS
    }
    accounts = list(accounts.annotate(unread=Coalesce(Sum("session_counters__unread"), 0), **sums))
    for account in accounts:
        account.counts = {view.key: getattr(account, f"count_{view.key}") for view in VIEWS}
    return accounts


def unread_total(user) -> int:
    """Unread letters in all the user's accounts (the tab title's number), from the counters."""
    counters = SessionCounter.objects.all()
    if not user.is_superuser:
        counters = counters.filter(account__members=user)
    return counters.aggregate(total=Coalesce(Sum("unread"), 0))["total"]


# --- the session list's views ----------------------------------------------------------------


@dataclass(frozen=True)
class ListView:
    """One entry of the sidebar's view lists: a filter on the sessions a user may see. The
    sidebar shows the "views" section first, then the status tabs."""

    key: str
    label: str | Promise
    # Which sessions it lists (a filter on Session), and which counter rows count them (field
    # lookups on SessionCounter): the same set, said twice.
    condition: Callable[[object], Q] = field(default=lambda user: Q())
    counted: Callable[[object], dict] = field(default=lambda user: {})
    section: str = "views"


def _status_view(status: Session.Status) -> ListView:
    return ListView(
        status.value,
        status.label,
        lambda user: Q(status=status),
        lambda user: {"status": status},
        section="status",
    )


VIEWS: list[ListView] = [
    ListView("all", _("All conversations")),
    ListView(
        "unread", _("Unread"), lambda user: Q(unread_count__gt=0), lambda user: {"has_unread": True}
    ),
    ListView(
        "mine", _("Mine"), lambda user: Q(assignee=user), lambda user: {"assignee_id": user.pk}
    ),
    ListView(
        "unassigned",
        _("Unassigned"),
        lambda user: Q(assignee__isnull=True),
        lambda user: {"assignee_id": 0},
    ),
    *(_status_view(status) for status in Session.Status),
]
VIEWS_BY_KEY = {view.key: view for view in VIEWS}
DEFAULT_VIEW = VIEWS[0]


def _counter_filter(view: ListView, user) -> Q | None:
    lookups = view.counted(user)
    return Q(**{f"session_counters__{name}": value for name, value in lookups.items()}) or None


def view_counts(accounts: list[Account], account: Account | None) -> dict[str, int]:
    """How many sessions each view holds in `account`, or in all `accounts` (loaded with
    counts=True): arithmetic on what visible_accounts read, no query."""
    chosen = [account] if account is not None else accounts
    return {view.key: sum(a.counts[view.key] for a in chosen) for view in VIEWS}


# The list's `assignee` refinement: a user's id, or one of these.
ASSIGNEE_ME = "me"
ASSIGNEE_NOBODY = "none"


@dataclass(frozen=True)
class ListFilter:
    """What the session list shows: a view, optionally one account, optionally narrowed to an
    assignee (`me`, `none` or a user's id) and to unread conversations (what a saved view
    stores) and to labels. Travels in the query string (`view`, `account`, `assignee`, `unread`,
    `label` repeated) so that deep links and reloads show the same list."""

    view: ListView = DEFAULT_VIEW
    account: Account | None = None
    assignee: str = ""
    unread: bool = False
    # Labels the sessions carry, all of them (`label`, repeated; inbox.labels.filtering).
    label_ids: tuple[int, ...] = ()

    def params(self) -> dict[str, str | list[str]]:
        params = {}
        if self.account is not None:
            params["account"] = str(self.account.pk)
        if self.view is not DEFAULT_VIEW:
            params["view"] = self.view.key
        if self.assignee:
            params["assignee"] = self.assignee
        if self.unread:
            params["unread"] = "1"
        if self.label_ids:
            params["label"] = [str(label_id) for label_id in self.label_ids]
        return params

    def condition(self, user) -> Q:
        """Which sessions the list shows (a filter on Session; the account aside)."""
        condition = self.view.condition(user)
        if self.assignee == ASSIGNEE_ME:
            condition &= Q(assignee=user)
        elif self.assignee == ASSIGNEE_NOBODY:
            condition &= Q(assignee__isnull=True)
        elif self.assignee:
            condition &= Q(assignee_id=int(self.assignee))
        if self.unread:
            condition &= Q(unread_count__gt=0)
        if self.label_ids:
            condition &= labels_filtering.carries_all(self.label_ids)
        return condition

    @property
    def refined(self) -> bool:
        return bool(self.assignee or self.unread)


class BadCursor(ValueError):
    """A cursor or filter parameter that is not what this app writes."""


def parse_filter(params, accounts: list[Account]) -> ListFilter:
    """`view`, `account`, `assignee` and `unread` from a query string; an account the user
    cannot see is refused."""
    account = None
    if params.get("account"):
        account = next((a for a in accounts if str(a.pk) == params["account"]), None)
        if account is None:
            raise BadCursor("unknown account")
    return replace(_parse_view(params), account=account)


def parse_filter_for_poll(params) -> tuple[ListFilter, int | None]:
    """Like parse_filter without loading the accounts: the filter without its account, and the
    account's id. A poll filters by the id and lets the visibility filter drop what the user may
    not see."""
    account = params.get("account") or None
    if account is not None and not is_row_id(account):
        raise BadCursor("bad account")
    return _parse_view(params), int(account) if account else None


def _parse_view(params) -> ListFilter:
    view = VIEWS_BY_KEY.get(params.get("view") or DEFAULT_VIEW.key)
    if view is None:
        raise BadCursor("unknown view")
    assignee = params.get("assignee") or ""
    if assignee not in ("", ASSIGNEE_ME, ASSIGNEE_NOBODY) and not is_row_id(assignee):
        raise BadCursor("unknown assignee")
    unread = params.get("unread") or ""
    if unread not in ("", "1"):
        raise BadCursor("bad unread")
    return ListFilter(
        view=view, assignee=assignee, unread=unread == "1", label_ids=_parse_labels(params)
    )


def _parse_labels(params) -> tuple[int, ...]:
    values = params.getlist("label") if hasattr(params, "getlist") else []
    if not all(is_row_id(value) for value in values):
        raise BadCursor("bad label")
    label_ids = tuple(sorted({int(value) for value in values}))
    if len(label_ids) > labels_filtering.MAX_LABELS:
        raise BadCursor("too many labels")
    return label_ids


# --- cursors ---------------------------------------------------------------------------------


class Row(Func):
    """A row value, `(a, b, …)`. Compared whole (`Row(a, b) < Row(x, y)`) it is one index
    condition on an index over (a, b); PostgreSQL and SQLite (3.15+) both have them."""

    template = "(%(expressions)s)"
    output_field = Field()


def is_number(value: str) -> bool:
    """Digits int() takes: str.isdigit() alone also passes "²" and other non-ASCII digits."""
    return value.isascii() and value.isdigit()


# The largest primary key the database can hold (a signed 64-bit integer): a larger number in
# a query makes SQLite raise OverflowError, so it is refused before it gets there.
MAX_ROW_ID = 2**63 - 1


def is_row_id(value: str) -> bool:
    """A primary key as a query string writes it: ASCII digits within the database's range."""
    return is_number(value) and len(value) <= 19 and int(value) <= MAX_ROW_ID


def to_micros(moment: datetime) -> int:
    return (moment - EPOCH) // timedelta(microseconds=1)


def from_micros(value: str) -> datetime:
    if not is_number(value) or len(value) > 18:
        raise BadCursor("bad time")
    return EPOCH + timedelta(microseconds=int(value))


def session_key(session: Session) -> str:
    """The session list's keyset cursor for `session`: "<last_message_at µs>.<pk>"."""
    return f"{to_micros(session.last_message_at)}.{session.pk}"


def parse_session_key(value: str) -> tuple[datetime, int]:
    moment, _, pk = value.partition(".")
    if not is_row_id(pk):
        raise BadCursor("bad session cursor")
    return from_micros(moment), int(pk)


LIST_ORDER = ("-last_message_at", "-pk")


def session_page(
    user, list_filter: ListFilter, accounts: list[Account], before: str | None = None
) -> tuple[list[Session], str | None]:
    """One page of the list, newest activity first, and the cursor of the next page (or None),
    in one query.

    `accounts` are the user's visible accounts (already loaded for the sidebar), so visibility
    is `account_id = …` rather than two joins. Each account's part is one range of the view's
    index (inbox.Session's `*_latest` indexes) from the cursor down, at most a page long; the
    parts merge into the page. So a page costs the same at any depth, in any view, whatever
    the other accounts hold; only the page's rows are read.
    """
    account_ids = [list_filter.account.pk] if list_filter.account else [a.pk for a in accounts]
    if not account_ids:
        return [], None
    # Labels are planned per account (inbox.labels.filtering), from their counts there.
    sessions = Session.objects.filter(replace(list_filter, label_ids=()).condition(user))
    per_account = None
    if list_filter.label_ids:
        try:
            per_account = labels_filtering.account_conditions(
                list_filter.label_ids, account_ids, [a.pk for a in accounts]
            )
        except labels_filtering.UnknownLabel as exc:
            raise BadCursor(str(exc)) from exc
        account_ids = [pk for pk in account_ids if per_account[pk] is not None]
        if not account_ids:
            return [], None
    if before:
        moment, pk = parse_session_key(before)
        sessions = sessions.filter(
            LessThan(Row(F("last_message_at"), F("pk")), Row(Value(moment), Value(pk)))
        )
    page = _merged_page(sessions, account_ids, SESSION_PAGE + 1, per_account)
    rows = list(
        with_label_chips(Session.objects.filter(pk__in=page))
        .select_related("account", "assignee")
        .order_by(*LIST_ORDER)
    )
    if len(rows) > SESSION_PAGE:
        rows = rows[:SESSION_PAGE]
        return rows, session_key(rows[-1])
    return rows, None


def _merged_page(
    sessions: QuerySet[Session],
    account_ids: list[int],
    limit: int,
    per_account: dict[int, Q | None] | None = None,
) -> RawSQL:
    """The ids of the newest `limit` of `sessions` across these accounts: per account an
    ordered, limited index range (narrowed by that account's `per_account` condition);
    PostgreSQL merges them (Merge Append) and stops at `limit`. Written out because the ORM
    cannot put a LIMIT inside each part of a UNION on SQLite."""
    parts, params = [], []
    for n, account_id in enumerate(account_ids):
        part = (
            sessions.filter(account_id=account_id)
            .filter((per_account or {}).get(account_id) or Q())
            .order_by(*LIST_ORDER)
            .values_list("id", "last_message_at")[:limit]
        )
        sql, part_params = part.query.get_compiler(using=part.db).as_sql()
        parts.append(f"SELECT * FROM ({sql}) AS part{n}")
        params.extend(part_params)
    return RawSQL(
        f"SELECT page.id FROM ({' UNION ALL '.join(parts)}) AS page "
        f"ORDER BY page.last_message_at DESC, page.id DESC LIMIT {int(limit)}",
        params,
    )


def poll_since(seen: list[datetime], now: datetime | None = None) -> datetime:
    """The next poll's cursor: the newest change seen, but never closer to now than POLL_LAG."""
    horizon = (now or timezone.now()) - POLL_LAG
    return min([max(seen), horizon]) if seen else horizon


# --- threads ---------------------------------------------------------------------------------

# The thread's order, which its index (inbox_message_thread_position) holds: create time, then
# seq with NULL first, then id.
THREAD_ORDER = (F("created_at").asc(), THREAD_SEQ.asc(), F("id").asc())
THREAD_ORDER_DESC = (F("created_at").desc(), THREAD_SEQ.desc(), F("id").desc())


def thread_position(message: Message | None = None) -> Row:
    """A message's place in thread order as a row value; without one, the row's own column."""
    if message is None:
        return Row(F("created_at"), THREAD_SEQ, F("id"))
    seq = -1 if message.seq is None else message.seq
    return Row(Value(message.created_at), Value(seq), Value(message.pk))


def before_message(anchor: Message) -> LessThan:
    """Messages strictly before `anchor` in thread order."""
    return LessThan(thread_position(), thread_position(anchor))


def after_message(anchor: Message, *, inclusive: bool = False) -> GreaterThan:
    """Messages after `anchor` in thread order (and `anchor` itself if `inclusive`)."""
    lookup = GreaterThanOrEqual if inclusive else GreaterThan
    return lookup(thread_position(), thread_position(anchor))


@dataclass
class ThreadPage:
    messages: list[Message]
    has_older: bool = False
    has_newer: bool = False
    focus: Message | None = None

    @property
    def at_tail(self) -> bool:
        """The page reaches the newest message, so live letters are appended to it."""
        return not self.has_newer


def thread_messages(session: Session) -> QuerySet[Message]:
    return session.messages.select_related("author", "activity_user")


def _older(session: Session, limit: int, anchor: Message | None = None) -> tuple[list, bool]:
    messages = thread_messages(session)
    if anchor is not None:
        messages = messages.filter(before_message(anchor))
    rows = list(messages.order_by(*THREAD_ORDER_DESC)[: limit + 1])
    more = len(rows) > limit
    return rows[:limit][::-1], more


def _newer(session: Session, limit: int, anchor: Message, *, inclusive: bool) -> tuple[list, bool]:
    condition = after_message(anchor, inclusive=inclusive)
    rows = list(thread_messages(session).filter(condition).order_by(*THREAD_ORDER)[: limit + 1])
    return rows[:limit], len(rows) > limit


def latest_page(session: Session) -> ThreadPage:
    rows, more = _older(session, THREAD_PAGE)
    return ThreadPage(rows, has_older=more)


def page_before(session: Session, anchor: Message) -> ThreadPage:
    rows, more = _older(session, THREAD_PAGE, anchor)
    return ThreadPage(rows, has_older=more, has_newer=True)


def page_after(session: Session, anchor: Message) -> ThreadPage:
    rows, more = _newer(session, THREAD_PAGE, anchor, inclusive=False)
    return ThreadPage(rows, has_older=True, has_newer=more)


def page_around(session: Session, anchor: Message) -> ThreadPage:
    """The anchor with up to AROUND messages either side: a search hit, however old."""
    older, more_older = _older(session, AROUND, anchor)
    newer, more_newer = _newer(session, AROUND + 1, anchor, inclusive=True)
    return ThreadPage(older + newer, has_older=more_older, has_newer=more_newer, focus=anchor)


def changed_messages(session: Session, since: datetime) -> list[Message]:
    """Messages of `session` added or changed after `since`, in thread order."""
    rows = list(
        thread_messages(session)
        .filter(updated_at__gt=since)
        .order_by("updated_at", "pk")[:POLL_BATCH]
    )
    return sorted(rows, key=lambda m: (m.created_at, m.seq is not None, m.seq or 0, m.pk))
