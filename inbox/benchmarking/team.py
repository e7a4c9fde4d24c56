"""Notifications in the benchmark data set, for the bell's probes: every benchmark agent has one
for every fifth conversation (kinds in turn, half of them read), so the timing agent's bell
holds ~20,000 notifications of which ~10,000 unread, ~140,000 rows in all. Put in set-based (one
INSERT … SELECT) and only when the agents have none yet, so a rerun changes nothing."""

from __future__ import annotations

from django.db import connection
from django.utils import timezone

from inbox.benchmarking.dataset import TIMING_AGENT
from inbox.models import Session
from inbox.team.models import Kind, Notification

AGENTS = "bench-agent-"
# What the timing agent has once this module's notifications are in: one per fifth session.
PER_AGENT = 15_000


def ensure_notifications() -> None:
    """Put in the notifications the agents do not have yet (the build's own assignments made a
    few already); a second call finds them all there and inserts nothing."""
    if Notification.objects.filter(recipient__username=TIMING_AGENT).count() >= PER_AGENT:
        return
    # The kinds in turn along the session ids.
    kind = "CASE (s.id / 10) %% 5 {} END".format(
        " ".join(f"WHEN {number} THEN '{kind.value}'" for number, kind in enumerate(Kind))
    )
    table = Notification._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO {table}
                (recipient_id, kind, account_id, session_id, text, browser, sound, created_at,
                 read_at)
            SELECT u.id, {kind}, s.account_id, s.id,
                   s.peer_nickname || ': ' || s.last_message_preview, true, false,
                   s.last_message_at, CASE WHEN s.id %% 20 < 10 THEN s.last_message_at END
            FROM {Session._meta.db_table} s CROSS JOIN auth_user u
            WHERE s.id %% 5 = 0 AND u.username LIKE %s
              AND NOT EXISTS (
                SELECT 1 FROM {table} n WHERE n.recipient_id = u.id AND n.session_id = s.id
              )
            ORDER BY s.last_message_at, s.id
            """,
            [f"{AGENTS}%"],
        )
        if connection.vendor == "postgresql":
            cursor.execute(f"ANALYZE {table}")


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
