"""@mentions in internal notes.

The syntax is `@username`: an @ that does not follow a letter, digit or dot (so an e-mail
address is no mention), then a user name of a member of the conversation's account, compared
without regard to case, and ending where the name does: at the end of the text, a space, any
punctuation but a dot inside a name, or a Chinese character ("@li.si你好" names li.si). The
composer's suggestion list (static/inbox/team.js) inserts exactly that. A name that is no
member's is plain text: it is not highlighted and nobody is notified.

Mentions are stored (models.Mention) when the note is saved; the thread highlights the stored
ones, so a mention stays what it was even if the member later leaves.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from html import escape

from django.contrib.auth import get_user_model
from django.db.models import Q, QuerySet
from django.utils.safestring import SafeString, mark_safe

from inbox.models import Message
from inbox.team import notifications
from inbox.team.models import Kind, Mention
from inbox.text import linkify, person

# Characters of a user name as Django allows them (letters, digits, @ . + - _), less the @.
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.+-")
# The composer's suggestion list offers at most this many members.
SUGGESTIONS = 20


@dataclass(frozen=True)
class Span:
    start: int  # the @
    end: int
    username: str  # as stored (its case)


def find(text: str, usernames: Iterable[str]) -> list[Span]:
    """The mentions of these user names in `text`, in order. Linear in the text: each @ looks
    at most at the longest name's length of characters."""
    by_lower = {name.lower(): name for name in usernames if name}
    if not by_lower or "@" not in text:
        return []
    longest = max(len(name) for name in by_lower)
    spans = []
    position = text.find("@")
    while position >= 0:
        if position == 0 or text[position - 1] not in _NAME_CHARS:
            span = _name_at(text, position + 1, by_lower, longest)
            if span is not None:
                spans.append(span)
                position = text.find("@", span.end)
                continue
        position = text.find("@", position + 1)
    return spans


def _name_at(text: str, start: int, by_lower: dict[str, str], longest: int) -> Span | None:
    """The longest member name that starts at `start` and ends at a name boundary."""
    run = start
    while run < len(text) and run - start < longest and text[run] in _NAME_CHARS:
        run += 1
    for end in range(run, start, -1):
        name = by_lower.get(text[start:end].lower())
        if name is not None and _ends_name(text, end):
            return Span(start - 1, end, name)
    return None


def _ends_name(text: str, end: int) -> bool:
    if end >= len(text):
        return True
    following = text[end]
    if following == ".":
        # A full stop after the name ends the sentence; a dot and more name is another name.
        return end + 1 >= len(text) or text[end + 1] not in _NAME_CHARS
    return following not in _NAME_CHARS and following != "@"


def members_of(account_id: int) -> QuerySet:
    """The account's active members: who may be mentioned in its notes."""
    return get_user_model().objects.filter(finder_accounts=account_id, is_active=True)


def record(note: Message, author) -> list[int]:
    """Store the note's mentions of the account's members and notify them (not the author,
    who knows). Returns the mentioned user ids. Called in the note's transaction."""
    if "@" not in note.content:
        return []
    members = {user.get_username(): user for user in members_of(note.account_id)}
    spans = find(note.content, members)
    mentioned = list(dict.fromkeys(members[span.username].pk for span in spans))
    if not mentioned:
        return []
    Mention.objects.bulk_create([Mention(message=note, user_id=pk) for pk in mentioned])
    excerpt = " ".join(note.content.split())
    notifications.notify(
        (
            notifications.Draft(
                recipient_id=pk,
                kind=Kind.MENTION,
                session=note.session,
                text=notifications.conversation_text(note.session, excerpt),
                actor_id=author.pk,
                message_id=note.pk,
            )
            for pk in mentioned
            if pk != author.pk
        ),
        members_checked=True,
    )
    return mentioned


def mentioned_names(message_ids: list[int]) -> dict[int, set[str]]:
    """The user names each of these notes mentions (one query)."""
    names: dict[int, set[str]] = defaultdict(set)
    if message_ids:
        for message_id, username in Mention.objects.filter(message_id__in=message_ids).values_list(
            "message_id", "user__username"
        ):
            names[message_id].add(username)
    return names


def highlight(text: str, usernames: Iterable[str]) -> SafeString:
    """The note's text as linkify makes it, with the mentions of these names marked."""
    spans = find(text, usernames)
    if not spans:
        return linkify(text)
    parts = []
    position = 0
    for span in spans:
        parts.append(linkify(text[position : span.start]))
        parts.append(f'<span class="mention">{escape(text[span.start : span.end])}</span>')
        position = span.end
    parts.append(linkify(text[position:]))
    return mark_safe("".join(parts))


def suggestions(account_id: int, query: str) -> list[dict[str, str]]:
    """Members of the account whose user name or name contains `query`, for the composer."""
    members = members_of(account_id)
    query = query.strip()
    if query:
        members = members.filter(
            Q(username__icontains=query)
            | Q(first_name__icontains=query)
            | Q(last_name__icontains=query)
        )
    return [
        {"username": user.get_username(), "name": person(user)}
        for user in members.order_by("username")[:SUGGESTIONS]
    ]
