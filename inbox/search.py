"""The one search box: sessions by the peer's nickname, user name or session id, and letters and
notes by their text, newest first, however old.

Text is matched as a substring (Chinese has no spaces between words), case-insensitively. At a
million letters a substring scan is far too slow, so on PostgreSQL two bounded plans find the hits
(migration 0009):
- the newest RECENT_WINDOW text letters the user may see are walked newest first through
  `inbox_message_search_recent`, stopping at the last hit needed: a common term (发货, in one
  letter out of ten) is answered from the first few hundred;
- only when that window holds too few hits, the older letters are looked up in the GIN index on
  `inbox_search_vector(content)` (every ASCII word, and every character and pair of characters of
  Chinese text), so a rare term is found however far back it is.
Both plans recheck the real substring, so the index only narrows and never decides. SQLite has no
such index and runs the same two queries by scanning (slower, same answers).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from django.db import connection
from django.db.models import BooleanField, F, Func, Q, QuerySet
from django.db.models.expressions import RawSQL

from accounts.models import Account
from inbox.models import Message, Session, SessionName

MAX_QUERY_LENGTH = 100
SESSION_HITS = 10
MESSAGE_HITS = 30
# How many of the newest text letters the first plan walks before the index takes over: enough for
# a term in one letter out of 170 to fill a page of hits from it alone.
RECENT_WINDOW = 5000
# pg_trgm finds nothing to index in a query shorter than this.
TRIGRAM = 3

# The lexemes of inbox_search_vector() (migration 0009), for the query side: keep them the same.
LATIN_WORD = re.compile(r"[a-z0-9]{1,100}")
WIDE_RUN = re.compile(r"[\u2e80-\u2fff\u3040-\ufeff\uff66-\U0010ffff]+")


@dataclass
class SearchResults:
    query: str
    sessions: list[Session] = field(default_factory=list)
    messages: list[Message] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.sessions and not self.messages

    @property
    def more_messages(self) -> bool:
        return len(self.messages) >= MESSAGE_HITS


def clean_query(raw: str | None) -> str:
    return " ".join((raw or "").split())[:MAX_QUERY_LENGTH]


def search_terms(query: str) -> list[str]:
    """The tsquery terms every text containing `query` has in its search vector: each ASCII word
    as a prefix (the vector holds every suffix of a word, so a word cut at either end matches),
    one character alone, and each pair of adjacent characters of a longer run of Chinese (or
    other wide) characters."""
    terms = [f"'{word}':*" for word in LATIN_WORD.findall(query.lower())]
    for run in WIDE_RUN.findall(query):
        if len(run) == 1:
            terms.append(f"'{run}'")
        else:
            terms.extend(f"'{run[i : i + 2]}'" for i in range(len(run) - 1))
    return list(dict.fromkeys(terms))


def search(user, query: str) -> SearchResults:
    """Sessions and messages matching `query`, newest first; nothing the user may not see.
    Three queries (sessions, the recent window's boundary, recent messages), and a fourth for
    older messages when the recent ones are too few."""
    query = clean_query(query)
    if not query:
        return SearchResults(query="")
    return SearchResults(
        query=query,
        sessions=_matching_sessions(user, query),
        messages=_matching_messages(user, query),
    )


def _visible(queryset: QuerySet, user) -> QuerySet:
    """Rows of the accounts the user works on, as a semi-join on the membership table: the plans
    below keep walking their index in order and drop other accounts' rows as they go."""
    if user.is_superuser:
        return queryset
    return queryset.filter(account__in=Account.objects.visible_to(user).values("pk"))


def _page(queryset: QuerySet, order: tuple[str, ...], limit: int, *related: str) -> list:
    """The first `limit` rows in `order`, with their related rows. The page's primary keys are
    chosen in a subquery first, so the joins run for those rows only, not for every candidate
    the planner expected to be few."""
    chosen = queryset.order_by(*order).values("pk")[:limit]
    return list(
        queryset.model.objects.filter(pk__in=chosen).select_related(*related).order_by(*order)
    )


def _matching_sessions(user, query: str) -> list[Session]:
    # The names are matched in their own table (inbox.SessionName, migration 0018), whose
    # indexes the session row's frequent updates do not rewrite.
    if len(query) >= TRIGRAM:
        # Its trigram indexes serve all three.
        names = SessionName.objects.filter(
            Q(peer_nickname__icontains=query)
            | Q(peer_username__icontains=query)
            | Q(msg_session_id__icontains=query)
        )
    else:
        # User names and session ids are long ASCII ids that one or two characters would match
        # almost all of; a short query is a name (小明), found through the nickname's vector.
        names = _vector_match(
            SessionName.objects.filter(peer_nickname__icontains=query), "peer_nickname", query
        )
    sessions = _visible(Session.objects.filter(pk__in=names.values("session_id")), user)
    return _page(sessions, ("-last_message_at", "-pk"), SESSION_HITS, "account", "assignee")


def _matching_messages(user, query: str) -> list[Message]:
    # Only text is searched: image and app XML would match on markup, not on meaning. The
    # msg_type condition is also the predicate of both search indexes.
    searchable = _visible(
        Message.objects.filter(msg_type=Message.Type.TEXT).exclude(kind=Message.Kind.ACTIVITY),
        user,
    )
    newest_first = ("-created_at", "-pk")
    related = ("session", "session__account", "author")
    hits = searchable.filter(content__icontains=query)
    # The create time of the RECENT_WINDOW-th newest searchable message, read from the index
    # alone. Passed as a value, not a subquery: the planner then knows the walk is a short
    # range of the index, whatever it guesses about the substring condition.
    boundary = list(
        searchable.order_by(*newest_first).values_list("created_at", flat=True)[
            RECENT_WINDOW - 1 : RECENT_WINDOW
        ]
    )
    if not boundary:
        return _page(hits, newest_first, MESSAGE_HITS, *related)
    found = _page(hits.filter(created_at__gte=boundary[0]), newest_first, MESSAGE_HITS, *related)
    if len(found) >= MESSAGE_HITS:
        return found
    older = _vector_match(hits.filter(created_at__lt=boundary[0]), "content", query)
    return found + _page(older, newest_first, MESSAGE_HITS - len(found), *related)


def _vector_match(queryset: QuerySet, field_name: str, query: str) -> QuerySet:
    """Narrow to rows whose search vector has every term of `query` (the GIN indexes of
    migrations 0009 and 0018 serve it). The substring condition stays on the queryset: the
    vector only narrows. Without terms (a query of punctuation), or off PostgreSQL, the
    substring condition alone decides."""
    terms = search_terms(query)
    if not terms or connection.vendor != "postgresql":
        return queryset
    matches = Func(
        Func(F(field_name), function="inbox_search_vector"),
        RawSQL("%s::tsquery", [" & ".join(terms)]),
        arg_joiner=" @@ ",
        template="(%(expressions)s)",
        output_field=BooleanField(),
    )
    return queryset.filter(matches)
