"""Notifications in the benchmark data set, for the bell's probes: every benchmark agent has one
for every fifth conversation (kinds in turn, half of them read), so the timing agent's bell
holds ~20,000 notifications of which ~10,000 unread, ~140,000 rows in all. Put in set-based (one
INSERT … SELECT) and only when the agents have none yet, so a rerun changes nothing."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db import connection
from django.utils import timezone

from inbox.models import Session
from inbox.team.models import Kind, Notification

AGENTS = "bench-agent-"


def ensure_notifications() -> None:
    agents = get_user_model().objects.filter(username__startswith=AGENTS)
    if Notification.objects.filter(recipient__in=agents).exists():
        return
    # The kinds in turn along the session ids.
    kind = "CASE (s.id / 10) %% 5 {} END".format(
        " ".join(f"WHEN {number} THEN '{kind.value}'" for number, kind in enumerate(Kind))
    )
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO {Notification._meta.db_table}
                (recipient_id, kind, account_id, session_id, text, browser, sound, created_at,
                 read_at)
            SELECT u.id, {kind}, s.account_id, s.id,
                   s.peer_nickname || ': ' || s.last_message_preview, true, false,
                   s.last_message_at, CASE WHEN s.id %% 20 < 10 THEN s.last_message_at END
            FROM {Session._meta.db_table} s CROSS JOIN auth_user u
            WHERE s.id %% 5 = 0 AND u.username LIKE %s
            ORDER BY s.last_message_at, s.id
            """,
            [f"{AGENTS}%"],
        )
        if connection.vendor == "postgresql":
            cursor.execute(f"ANALYZE {Notification._meta.db_table}")


def newest_id(user) -> int:
    return (
        Notification.objects.filter(recipient=user)
        .order_by("-id")
        .values_list("pk", flat=True)
        .first()
        or 0
    )


def add_notifications(user, count: int) -> None:
    """`count` new unread notifications for `user` (what sync or a colleague would make)."""
    sessions = list(Session.objects.order_by("-last_message_at")[:count])
    Notification.objects.bulk_create(
        Notification(
            recipient=user,
            kind=Kind.ASSIGNED,
            account_id=session.account_id,
            session=session,
            text=session.display_name,
            browser=True,
            created_at=timezone.now(),
        )
        for session in sessions
    )
