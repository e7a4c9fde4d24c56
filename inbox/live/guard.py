""" "Someone replied since": no double answers by accident.

The composer carries the thread's "seen up to" marker, the id of the newest message the agent
had on screen (static/inbox/live.js keeps it current as letters arrive). A reply posted with a
marker is held back when a reply the agent has not seen went out since: another agent's (even
one still sending), or one written on the phone (synced in, no author). The agent is asked first
and sends anyway by confirming. Their own replies, internal notes, activity lines and the
customer's letters never hold a reply back.
"""

from __future__ import annotations

from datetime import datetime

from django.db.models import Q
from django.utils import timezone
from django.utils.text import Truncator
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from inbox.models import Message, Session
from inbox.text import person, type_label

PREVIEW_CHARS = 60


class BadMarker(ValueError):
    pass


def parse_marker(value: str | None) -> int | None:
    """The posted marker: empty (a form without one is not guarded) or a message id."""
    if not value:
        return None
    if not value.isdigit() or len(value) > 19:
        raise BadMarker(value)
    return int(value)


def unseen_reply(session: Session, user, seen_up_to: int) -> Message | None:
    """The newest reply to this conversation after the marker that `user` did not write; one
    query on the session's messages (a conversation's own few rows past the marker)."""
    return (
        session.messages.filter(pk__gt=seen_up_to, kind=Message.Kind.LETTER, is_sender=True)
        .exclude(author_id=user.pk)
        # A reply that failed for good never reached the customer.
        .exclude(Q(delivery=Message.Delivery.FAILED) & Q(maybe_delivered=False))
        .select_related("author")
        .order_by("-pk")
        .first()
    )


def reply_to_confirm(session: Session, user, post) -> Message | None:
    """The reply this post must be confirmed against, or None to send it. Raises BadMarker."""
    seen_up_to = parse_marker(post.get("seen_up_to"))
    if seen_up_to is None or post.get("confirm") == "1":
        return None
    return unseen_reply(session, user, seen_up_to)


def describe(reply: Message, now: datetime | None = None) -> str:
    """'王芳 replied 20 s ago: “…”'"""
    name = person(reply.author) if reply.author_id else _("Someone on the phone")
    if reply.msg_type == Message.Type.TEXT:
        text = Truncator(" ".join(reply.content.split())).chars(PREVIEW_CHARS)
    else:
        text = type_label(reply.msg_type)
    return _("%(name)s replied %(ago)s: “%(text)s”") % {
        "name": name,
        "ago": ago(reply.created_at, now or timezone.now()),
        "text": text,
    }


def ago(when: datetime, now: datetime) -> str:
    seconds = max(0, int((now - when).total_seconds()))
    if seconds < 60:
        return ngettext("%(count)d second ago", "%(count)d seconds ago", seconds) % {
            "count": seconds
        }
    minutes = seconds // 60
    if minutes < 60:
        return ngettext("%(count)d minute ago", "%(count)d minutes ago", minutes) % {
            "count": minutes
        }
    hours = minutes // 60
    return ngettext("%(count)d hour ago", "%(count)d hours ago", hours) % {"count": hours}
