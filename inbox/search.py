"""The one search box: sessions by the peer's nickname, user name or session id, and letters and
notes by their text. Substring matches (`icontains`), so Chinese, which has no spaces between
words, is found by any phrase; on PostgreSQL trigram GIN indexes on UPPER(column) serve exactly
the `UPPER(col) LIKE UPPER(%q%)` that Django writes for icontains (migration 0003)."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db.models import Q

from inbox import browse
from inbox.models import Message, Session

MAX_QUERY_LENGTH = 100
SESSION_HITS = 10
MESSAGE_HITS = 30


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


def search(user, query: str) -> SearchResults:
    """Two queries, each limited, newest first; nothing the user may not see."""
    query = clean_query(query)
    if not query:
        return SearchResults(query="")
    sessions = list(
        browse.visible_sessions(user)
        .filter(
            Q(peer_nickname__icontains=query)
            | Q(peer_username__icontains=query)
            | Q(msg_session_id__icontains=query)
        )
        .select_related("account", "assignee")
        .order_by("-last_message_at", "-pk")[:SESSION_HITS]
    )
    messages = list(
        browse.visible_messages(user)
        # Only text is searched: image and app XML would match on markup, not on meaning.
        .filter(msg_type=Message.Type.TEXT, content__icontains=query)
        .exclude(kind=Message.Kind.ACTIVITY)
        .select_related("session", "session__account", "author")
        .order_by("-created_at", "-pk")[:MESSAGE_HITS]
    )
    return SearchResults(query=query, sessions=sessions, messages=messages)
