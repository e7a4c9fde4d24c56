"""What the team hears from the rest of the inbox: one function per event, called by sync and
inbox.services inside their transactions. Each is a few queries, whatever the number of rows.

Only live letters count: sync also stores history (a new account's backlog, a long outage caught
up), and a conversation that opened last month is no news and waits for nobody. A letter is live
when it was written within TEAM_LIVE_SECONDS.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from inbox.models import Message, Session
from inbox.team import assignment, mentions, notifications
from inbox.team.models import Kind
from inbox.team.notifications import Draft


def letters_stored(
    account_id: int, new_letters: list, created: list[Session], reopened: list[Message]
) -> None:
    """Sync stored a page: `new_letters` ((Session, Letter) pairs), the sessions it `created`
    and the activity lines of those a letter `reopened`. A conversation a live viewer letter
    opened, with nobody assigned, tells the account's members and waits for auto-assignment; a
    live letter in an assigned conversation tells its assignee. No query when nothing is live."""
    cutoff = timezone.now() - timedelta(seconds=settings.TEAM_LIVE_SECONDS)
    # The sessions with a live viewer letter; sync has folded the page into them already, so
    # their preview is their newest letter's.
    live = {
        session.pk: session
        for session, letter in new_letters
        if not letter.is_sender and letter.created_at >= cutoff
    }
    if not live:
        return
    opened_ids = {session.pk for session in created} | {line.session_id for line in reopened}
    opened = [s for s in live.values() if s.pk in opened_ids and s.assignee_id is None]
    assigned = [session for session in live.values() if session.assignee_id]
    if opened:
        _tell_members(account_id, opened)
        assignment.queue_opened(account_id, [session.pk for session in opened])
    if assigned:
        notifications.replace_unread_letter_notices(
            (session.assignee_id, session.pk) for session in assigned
        )
        notifications.notify(
            Draft(
                recipient_id=session.assignee_id,
                kind=Kind.NEW_LETTER,
                session=session,
                text=notifications.conversation_text(session, session.last_message_preview),
            )
            for session in assigned
        )


def _tell_members(account_id: int, opened: list[Session]) -> None:
    notifications.notify_members(
        account_id,
        Kind.NEW_CONVERSATION,
        [
            (session, notifications.conversation_text(session, session.last_message_preview))
            for session in opened
        ],
    )


def assigned(session: Session, assignee, actor) -> None:
    """Someone gave `session` to `assignee` (services.assign): they hear of it unless they did
    it themselves."""
    assigned_in_bulk([session], assignee, actor)


def assigned_in_bulk(sessions: list[Session], assignee, actor) -> None:
    """Someone gave these sessions to `assignee` at once (the list's bulk action): one
    notification each, made in one INSERT, unless they did it themselves."""
    if assignee is None or actor is None or assignee.pk == actor.pk:
        return
    notifications.notify(
        Draft(
            recipient_id=assignee.pk,
            kind=Kind.ASSIGNED,
            session=session,
            text=notifications.conversation_text(session, session.last_message_preview),
            actor_id=actor.pk,
        )
        for session in sessions
    )


def note_added(note: Message, author) -> None:
    """An internal note was saved: the members it mentions hear of it."""
    mentions.record(note, author)


def snoozes_ended(sessions: list[Session]) -> None:
    """These snoozed conversations are open again: their assignee hears of it, or, with nobody
    assigned, whoever snoozed it."""
    unassigned = [session.pk for session in sessions if session.assignee_id is None]
    snoozer = dict(
        Message.objects.filter(
            session_id__in=unassigned,
            kind=Message.Kind.ACTIVITY,
            activity=Message.Activity.SNOOZED,
            author__isnull=False,
        )
        .order_by("session_id", "created_at", "pk")
        .values_list("session_id", "author_id")
        if unassigned
        else ()
    )
    notifications.notify(
        Draft(
            recipient_id=session.assignee_id or snoozer[session.pk],
            kind=Kind.SNOOZE_ENDED,
            session=session,
            text=notifications.conversation_text(session),
        )
        for session in sessions
        if session.assignee_id or session.pk in snoozer
    )
