"""The bell reads through its indexes on PostgreSQL: with 200,000 notifications, a few users'
count, newest unread and dropdown are each an index range, never a scan of the table, also
for a user with few notifications among many."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.db import connection

from accounts.models import Account
from inbox.team import notifications
from inbox.team.models import Notification

pytestmark = pytest.mark.postgres

NOTIFICATIONS = 200_000


@pytest.fixture
def crowded_bells(db):
    """Eight busy agents sharing 200,000 notifications (a third unread) over two accounts; a
    newcomer with three."""
    users = get_user_model()
    accounts = [
        Account.objects.create(name=f"Shop {n}", app_id=f"wx_bell_{n}", token="t") for n in range(2)
    ]
    busy = [users.objects.create_user(f"busy{n}") for n in range(8)]
    newcomer = users.objects.create_user("newcomer")
    for account in accounts:
        account.members.add(*busy, newcomer)
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO inbox_session (msg_session_id, peer_username, peer_nickname, my_username,
                last_message_at, last_message_preview, last_message_type, unread_count,
                updated_at, status, created_at, account_id)
            SELECT 's' || i, '', '', '', now(), '', 1, 0, now(), 'open', now(),
                   (%s::bigint[])[1 + mod(i, 2)]
            FROM generate_series(1, 1000) AS i
            """,
            [[account.pk for account in accounts]],
        )
        cursor.execute(
            """
            INSERT INTO team_notification (recipient_id, kind, account_id, session_id, text,
                browser, sound, created_at, read_at)
            SELECT (%s::integer[])[1 + mod(i, 8)], 'new_conversation', s.account_id, s.id, 'x',
                   true, false, now(), CASE WHEN mod(i, 3) = 0 THEN NULL ELSE now() END
            FROM generate_series(1, %s) AS i
            JOIN inbox_session s ON s.msg_session_id = 's' || (1 + mod(i, 1000))
            """,
            [[user.pk for user in busy], NOTIFICATIONS],
        )
        cursor.execute("ANALYZE team_notification")
    session = Notification.objects.first().session
    Notification.objects.bulk_create(
        Notification(
            recipient=newcomer, kind="assigned", account_id=session.account_id, session=session
        )
        for _ in range(3)
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE team_notification")
    return busy[0], newcomer


def plan(queryset) -> str:
    sql, params = queryset.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN {sql}", params)
        return "\n".join(row[0] for row in cursor.fetchall())


@pytest.mark.parametrize("who", [0, 1], ids=["busy agent", "newcomer"])
def test_the_bell_reads_index_ranges(crowded_bells, who):
    user = crowded_bells[who]
    queries = {
        "count": notifications.visible(user)
        .filter(read_at__isnull=True)
        .order_by("-id")
        .values_list("pk", flat=True)[: notifications.BADGE_LIMIT + 1],
        "dropdown": notifications.visible(user).select_related("actor").order_by("-id")[:30],
        "new": notifications.visible(user)
        .filter(read_at__isnull=True, pk__gt=NOTIFICATIONS // 2)
        .order_by("-id")[:5],
    }
    for name, queryset in queries.items():
        explained = plan(queryset)
        assert "Seq Scan on team_notification" not in explained, (name, explained)
        assert "team_notification" in explained and "Index" in explained, (name, explained)
