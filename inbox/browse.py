"""Reading the inbox: what a user may see, the session list's views, keyset cursors and the
thread's pages. Every function here runs a fixed number of queries, whatever the row counts.

Cursors never use OFFSET: the session list pages on (last_message_at, id) descending, a thread on
(created_at, seq, id) in either direction. Live polls ask "changed since T?" on the indexed
`updated_at` columns.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.db.models import Count, F, Q, QuerySet, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from accounts.models import Account
from inbox.models import Message, Session

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


def visible_accounts(user) -> list[Account]:
    """The accounts in the sidebar, each with `unread` (its sessions' unread letters)."""
    return list(
        Account.objects.visible_to(user)
        .annotate(unread=Coalesce(Sum("sessions__unread_count"), 0))
        .order_by("name", "pk")
    )


# --- the session list's views ----------------------------------------------------------------


@dataclass(frozen=True)
class ListView:
    """One entry of the sidebar's view lists: a filter on the sessions a user may see. The
    sidebar shows the "views" section first, then the status tabs."""

    key: str
    label: str | Promise
    condition: Callable[[object], Q] = field(default=lambda user: Q())
    section: str = "views"


def _status_view(status: Session.Status) -> ListView:
    return ListView(status.value, status.label, lambda user: Q(status=status), section="status")


VIEWS: list[ListView] = [
    ListView("all", _("All conversations")),
    ListView("unread", _("Unread"), lambda user: Q(unread_count__gt=0)),
    ListView("mine", _("Mine"), lambda user: Q(assignee=user)),
    ListView("unassigned", _("Unassigned"), lambda user: Q(assignee__isnull=True)),
    *(_status_view(status) for status in Session.Status),
]
VIEWS_BY_KEY = {view.key: view for view in VIEWS}
DEFAULT_VIEW = VIEWS[0]


def view_counts(user, account: Account | None) -> dict[str, int]:
    """How many sessions each view holds, and `unread_total` (letters), in one query."""
    sessions = visible_sessions(user)
    if account is not None:
        sessions = sessions.filter(account=account)
    aggregates = {view.key: Count("pk", filter=view.condition(user) or None) for view in VIEWS}
    counts = sessions.aggregate(unread_total=Coalesce(Sum("unread_count"), 0), **aggregates)
    return counts


def unread_total(user) -> int:
    return visible_sessions(user).aggregate(total=Coalesce(Sum("unread_count"), 0))["total"]


@dataclass(frozen=True)
class ListFilter:
    """What the session list shows: a view, optionally one account. Travels in the query string
    (`view`, `account`) so that deep links and reloads show the same list."""

    view: ListView = DEFAULT_VIEW
    account: Account | None = None

    def sessions(self, user) -> QuerySet[Session]:
        sessions = visible_sessions(user).filter(self.view.condition(user))
        if self.account is not None:
            sessions = sessions.filter(account=self.account)
        return sessions

    def params(self) -> dict[str, str]:
        params = {}
        if self.account is not None:
            params["account"] = str(self.account.pk)
        if self.view is not DEFAULT_VIEW:
            params["view"] = self.view.key
        return params


class BadCursor(ValueError):
    """A cursor or filter parameter that is not what this app writes."""


def parse_filter(params, accounts: list[Account]) -> ListFilter:
    """`view` and `account` from a query string; an account the user cannot see is refused."""
    view = VIEWS_BY_KEY.get(params.get("view") or DEFAULT_VIEW.key)
    if view is None:
        raise BadCursor("unknown view")
    account = None
    if params.get("account"):
        account = next((a for a in accounts if str(a.pk) == params["account"]), None)
        if account is None:
            raise BadCursor("unknown account")
    return ListFilter(view=view, account=account)


def parse_filter_for_poll(params) -> tuple[ListView, int | None]:
    """Like parse_filter without loading the accounts: a poll filters by the id and lets the
    visibility filter drop what the user may not see."""
    view = VIEWS_BY_KEY.get(params.get("view") or DEFAULT_VIEW.key)
    if view is None:
        raise BadCursor("unknown view")
    account = params.get("account") or None
    if account is not None and not is_number(account):
        raise BadCursor("bad account")
    return view, int(account) if account else None


# --- cursors ---------------------------------------------------------------------------------


def is_number(value: str) -> bool:
    """Digits int() takes: str.isdigit() alone also passes "²" and other non-ASCII digits."""
    return value.isascii() and value.isdigit()


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
    if not is_number(pk):
        raise BadCursor("bad session cursor")
    return from_micros(moment), int(pk)


def session_page(
    sessions: QuerySet[Session], before: str | None = None
) -> tuple[list[Session], str | None]:
    """One page of the list, newest activity first, and the cursor of the next page (or None)."""
    if before:
        moment, pk = parse_session_key(before)
        sessions = sessions.filter(
            Q(last_message_at__lt=moment) | Q(last_message_at=moment, pk__lt=pk)
        )
    rows = list(
        sessions.select_related("account", "assignee").order_by("-last_message_at", "-pk")[
            : SESSION_PAGE + 1
        ]
    )
    if len(rows) > SESSION_PAGE:
        rows = rows[:SESSION_PAGE]
        return rows, session_key(rows[-1])
    return rows, None


def poll_since(seen: list[datetime], now: datetime | None = None) -> datetime:
    """The next poll's cursor: the newest change seen, but never closer to now than POLL_LAG."""
    horizon = (now or timezone.now()) - POLL_LAG
    return min([max(seen), horizon]) if seen else horizon


# --- threads ---------------------------------------------------------------------------------

THREAD_ORDER = (F("created_at").asc(), F("seq").asc(nulls_first=True), F("id").asc())
THREAD_ORDER_DESC = (F("created_at").desc(), F("seq").desc(nulls_last=True), F("id").desc())


def before_message(anchor: Message) -> Q:
    """Messages strictly before `anchor` in thread order (seq may be NULL and sorts first)."""
    if anchor.seq is None:
        same_time = Q(seq__isnull=True, id__lt=anchor.pk)
    else:
        same_time = (
            Q(seq__isnull=True) | Q(seq__lt=anchor.seq) | Q(seq=anchor.seq, id__lt=anchor.pk)
        )
    return Q(created_at__lt=anchor.created_at) | (Q(created_at=anchor.created_at) & same_time)


def after_message(anchor: Message) -> Q:
    """Messages strictly after `anchor` in thread order."""
    if anchor.seq is None:
        same_time = Q(seq__isnull=False) | Q(seq__isnull=True, id__gt=anchor.pk)
    else:
        same_time = Q(seq__gt=anchor.seq) | Q(seq=anchor.seq, id__gt=anchor.pk)
    return Q(created_at__gt=anchor.created_at) | (Q(created_at=anchor.created_at) & same_time)


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
    condition = after_message(anchor)
    if inclusive:
        condition |= Q(pk=anchor.pk)
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
