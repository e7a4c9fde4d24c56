"""Notifications: made when something happens that an agent should know about, kept for the
bell, and pushed to the agent's open tabs after commit.

Five kinds (models.Kind): a new conversation in my accounts, a conversation assigned to me, a new
letter in a conversation assigned to me, a mention of me in a note, a snooze of mine ended. Each
agent chooses per kind whether it goes to the bell, and, for those in the bell, whether the
browser shows a notification and plays a sound (preferences; without a row, DEFAULTS). The
choices are copied onto the notification when it is made, so the page needs no second look.

A notification never reveals a conversation of an account its reader has left: it is made only
for members (or superusers), and every read filters by the reader's accounts again.

Live delivery carries no content: the tab hears "notification" (inbox.live) and asks the bell's
poll, which answers from the database under the same rules; without inbox.live the poll alone
brings them, a few seconds later.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from functools import partial, reduce
from operator import or_

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.models import Account
from inbox.live import publish
from inbox.models import Session
from inbox.team.models import NOTIFICATION_TEXT_LENGTH, Kind, Notification, NotificationPreference
from inbox.text import person

log = logging.getLogger(__name__)

Membership = Account.members.through
# The badge counts up to this many unread notifications, then says "99+": the count is an index
# range that stops there, however many an agent leaves unread.
BADGE_LIMIT = 99
# The dropdown shows this many of the newest.
LIST_LENGTH = 30
# One poll brings at most this many new ones to show as browser notifications.
NEW_LIMIT = 5


@dataclass(frozen=True)
class Channels:
    in_app: bool
    browser: bool
    sound: bool


# Without a preference row: everything in the bell; new conversations (every conversation of
# every account one is a member of) without a browser notification, the rest with one; no sound.
DEFAULTS = {
    Kind.NEW_CONVERSATION: Channels(in_app=True, browser=False, sound=False),
    Kind.ASSIGNED: Channels(in_app=True, browser=True, sound=False),
    Kind.NEW_LETTER: Channels(in_app=True, browser=True, sound=False),
    Kind.MENTION: Channels(in_app=True, browser=True, sound=False),
    Kind.SNOOZE_ENDED: Channels(in_app=True, browser=True, sound=False),
}

# The bell's line for each kind (the notification's text follows it).
HEADLINES = {
    Kind.NEW_CONVERSATION: _("New conversation"),
    Kind.ASSIGNED: _("%(actor)s assigned you a conversation"),
    Kind.NEW_LETTER: _("New letter in your conversation"),
    Kind.MENTION: _("%(actor)s mentioned you"),
    Kind.SNOOZE_ENDED: _("Snooze ended"),
}


@dataclass(frozen=True)
class Draft:
    """A notification to make, if its recipient may see the session and wants this kind."""

    recipient_id: int
    kind: str
    session: Session
    text: str
    actor_id: int | None = None
    message_id: int | None = None


def conversation_text(session: Session, detail: str = "") -> str:
    """The notification's line: the conversation's name, then what happened in it."""
    text = f"{session.display_name}: {detail}" if detail else session.display_name
    return _cut(" ".join(text.split()))


def _cut(text: str) -> str:
    if len(text) <= NOTIFICATION_TEXT_LENGTH:
        return text
    return text[: NOTIFICATION_TEXT_LENGTH - 1] + "…"


# --- preferences -----------------------------------------------------------------------------


def preferences(user) -> dict[str, Channels]:
    """Every kind's channels for `user`, defaults filled in (one query)."""
    chosen = {
        row.kind: Channels(row.in_app, row.browser, row.sound)
        for row in NotificationPreference.objects.filter(user=user)
    }
    return {kind: chosen.get(kind, DEFAULTS[kind]) for kind in Kind}


def save_preferences(user, channels: dict[str, Channels]) -> None:
    """Store the user's choice for every kind given (a browser notification or a sound only
    comes with the bell)."""
    with transaction.atomic():
        for kind, choice in channels.items():
            NotificationPreference.objects.update_or_create(
                user=user,
                kind=kind,
                defaults={
                    "in_app": choice.in_app,
                    "browser": choice.in_app and choice.browser,
                    "sound": choice.in_app and choice.sound,
                },
            )


def _channels_for(drafts: list[Draft]) -> dict[tuple[int, str], Channels]:
    rows = NotificationPreference.objects.filter(
        user_id__in={d.recipient_id for d in drafts}, kind__in={d.kind for d in drafts}
    )
    return {(row.user_id, row.kind): Channels(row.in_app, row.browser, row.sound) for row in rows}


# --- making them -----------------------------------------------------------------------------


def notify(drafts: Iterable[Draft], *, members_checked: bool = False) -> list[Notification]:
    """Make these notifications, each if its recipient is active and may see the session's
    account (skipped when the caller read them from the members already) and wants the kind in
    the bell; publish them to the recipients' tabs after commit. A few queries, whatever the
    number."""
    drafts = list(drafts)
    if not drafts:
        return []
    if not members_checked:
        drafts = _to_members(drafts)
    channels = _channels_for(drafts) if drafts else {}
    now = timezone.now()
    rows = []
    for draft in drafts:
        choice = channels.get((draft.recipient_id, draft.kind), DEFAULTS[draft.kind])
        if not choice.in_app:
            continue
        rows.append(
            Notification(
                recipient_id=draft.recipient_id,
                kind=draft.kind,
                account_id=draft.session.account_id,
                session_id=draft.session.pk,
                message_id=draft.message_id,
                actor_id=draft.actor_id,
                text=_cut(draft.text),
                browser=choice.browser,
                sound=choice.sound,
                created_at=now,
            )
        )
    Notification.objects.bulk_create(rows)
    publish_after_commit(rows)
    return rows


def _to_members(drafts: list[Draft]) -> list[Draft]:
    """The drafts whose recipient is active and a member of the session's account, or a
    superuser (two queries)."""
    user_ids = {d.recipient_id for d in drafts}
    superusers = set(
        get_user_model()
        .objects.filter(pk__in=user_ids, is_active=True, is_superuser=True)
        .values_list("pk", flat=True)
    )
    members = set(
        Membership.objects.filter(
            user_id__in=user_ids,
            user__is_active=True,
            account_id__in={d.session.account_id for d in drafts},
        ).values_list("account_id", "user_id")
    )
    return [
        d
        for d in drafts
        if d.recipient_id in superusers or (d.session.account_id, d.recipient_id) in members
    ]


def notify_members(account_id: int, kind: str, items: list[tuple[Session, str]]) -> int:
    """Tell every active member of the account about each (session, text), as their preferences
    for `kind` say: one INSERT … SELECT over the members, however many sessions and members,
    and one publish to those who got one. Returns how many notifications it made."""
    if not items:
        return 0
    default = DEFAULTS[kind]
    table = Notification._meta.db_table
    values = ", ".join(["(%s, %s)"] * len(items))
    sql = f"""
        INSERT INTO {table}
            (recipient_id, kind, account_id, session_id, text, browser, sound, created_at)
        SELECT m.user_id, %s, m.account_id, v.column1, v.column2,
               COALESCE(p.browser, %s), COALESCE(p.sound, %s), %s
        FROM (VALUES {values}) AS v
        JOIN {Membership._meta.db_table} m ON m.account_id = %s
        JOIN {get_user_model()._meta.db_table} u ON u.id = m.user_id AND u.is_active
        LEFT JOIN {NotificationPreference._meta.db_table} p
            ON p.user_id = m.user_id AND p.kind = %s
        WHERE COALESCE(p.in_app, %s)
        RETURNING recipient_id
    """
    params = [kind, default.browser, default.sound, timezone.now()]
    for session, text in items:
        params += [session.pk, _cut(text)]
    params += [account_id, kind, default.in_app]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        made = cursor.fetchall()
    recipients = sorted({row[0] for row in made})
    if recipients:
        transaction.on_commit(partial(_publish, recipients, kind))
    return len(made)


def account_members(account_id: int, *, exclude: Iterable[int] = ()) -> list[int]:
    """The active members of an account (one query)."""
    return list(
        Membership.objects.filter(account_id=account_id, user__is_active=True)
        .exclude(user_id__in=list(exclude))
        .order_by("user_id")
        .values_list("user_id", flat=True)
    )


def replace_unread_letter_notices(pairs: Iterable[tuple[int, int]]) -> None:
    """A new letter in an assigned conversation replaces that agent's unread notification of the
    one before: the bell shows the conversation once, with its newest letter (one DELETE)."""
    pairs = list(pairs)
    if not pairs:
        return
    Notification.objects.filter(
        reduce(or_, (Q(recipient_id=user, session_id=session) for user, session in pairs)),
        kind=Kind.NEW_LETTER,
        read_at__isnull=True,
    ).delete()


def publish_after_commit(rows: list[Notification]) -> None:
    """Tell the recipients' open tabs, once the rows are committed, that the bell has news. The
    event names the kind only; the tab asks the bell's poll for the rest."""
    by_kind: dict[str, set[int]] = defaultdict(set)
    for row in rows:
        by_kind[row.kind].add(row.recipient_id)
    for kind, user_ids in by_kind.items():
        transaction.on_commit(partial(_publish, sorted(user_ids), kind))


def _publish(user_ids: list[int], kind: str) -> None:
    try:
        publish.to_users(user_ids, event="notification", data={"kind": kind})
    except Exception:
        # Committed already; the poll brings them a few seconds later.
        log.exception("could not publish notifications to users %s", user_ids)


# --- reading them ----------------------------------------------------------------------------


def visible(user) -> QuerySet[Notification]:
    """The user's notifications about accounts they may see now."""
    rows = Notification.objects.filter(recipient=user)
    if user.is_superuser:
        return rows
    return rows.filter(account_id__in=Membership.objects.filter(user=user).values("account_id"))


def unread_ids(user) -> list[int]:
    """The newest unread notifications' ids, at most BADGE_LIMIT + 1 (one index range)."""
    return list(
        visible(user)
        .filter(read_at__isnull=True)
        .order_by("-id")
        .values_list("pk", flat=True)[: BADGE_LIMIT + 1]
    )


def badge(count: int) -> str:
    return f"{BADGE_LIMIT}+" if count > BADGE_LIMIT else str(count) if count else ""


def newer_than(user, after: int) -> list[Notification]:
    """Unread notifications newer than `after` that ask for a browser notification or a sound:
    what a tab shows as they arrive."""
    return list(
        visible(user)
        .filter(read_at__isnull=True, pk__gt=after)
        .filter(Q(browser=True) | Q(sound=True))
        .select_related("actor")
        .order_by("-id")[:NEW_LIMIT]
    )


def recent(user) -> list[Notification]:
    """The dropdown's notifications, newest first."""
    return list(visible(user).select_related("actor").order_by("-id")[:LIST_LENGTH])


def headline(notification: Notification) -> str:
    """The bell's line for a notification, in the reader's language."""
    actor = person(notification.actor) or str(_("System"))
    return str(HEADLINES[notification.kind]) % {"actor": actor}


def mark_all_read(user, now: datetime | None = None) -> int:
    return (
        Notification.objects.filter(recipient=user, read_at__isnull=True)
        .order_by()
        .update(read_at=now or timezone.now())
    )


def mark_session_read(user, session_id: int, now: datetime | None = None) -> int:
    """Opening a conversation from a notification reads the user's notifications about it."""
    return Notification.objects.filter(
        recipient=user, session_id=session_id, read_at__isnull=True
    ).update(read_at=now or timezone.now())


def prune(keep: int | None = None) -> int:
    """Keep each user's newest `keep` notifications (TEAM_NOTIFICATIONS_KEPT) and delete the
    rest: the bell shows the newest thirty and counts to 99, so older ones are never seen again.
    Run by beat once a day; per user one index range and one DELETE. Returns how many went."""
    keep = keep or settings.TEAM_NOTIFICATIONS_KEPT
    deleted = 0
    for user_id in get_user_model().objects.order_by("pk").values_list("pk", flat=True):
        mine = Notification.objects.filter(recipient_id=user_id)
        oldest_kept = list(mine.order_by("-id").values_list("pk", flat=True)[keep - 1 : keep])
        if oldest_kept:
            deleted += mine.filter(pk__lt=oldest_kept[0]).delete()[0]
    return deleted
