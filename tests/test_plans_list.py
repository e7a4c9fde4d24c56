"""The session list, its tabs, load-more, the counts and thread paging read through their
indexes on PostgreSQL: at a size where a sequential scan would otherwise win, no request reads
inbox_session or inbox_message whole, and each page query uses the index meant for it."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts.models import Account
from inbox import browse
from inbox.models import Message, Session

pytestmark = pytest.mark.postgres

SESSIONS = 30_000
BIG_THREAD = 12_000


@pytest.fixture
def big_inbox(db):
    """Three accounts (50/30/20% of the sessions), a member of all three, a member of one, a
    superuser; sessions in every status, half assigned (to each of them); one thread of 12,000
    letters and two letters in each other session. Inserted in SQL (the triggers count them),
    then ANALYZEd."""
    users = get_user_model()
    accounts = [
        Account.objects.create(name=f"Shop {n}", app_id=f"wx_plan_{n}", token="t") for n in range(3)
    ]
    agent = users.objects.create_user("agent")
    solo = users.objects.create_user("solo")
    admin = users.objects.create_superuser("admin")
    for account in accounts:
        account.members.add(agent)
    accounts[1].members.add(solo)
    ids = [account.pk for account in accounts]
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO inbox_session (msg_session_id, peer_username, peer_nickname, my_username,
                last_message_at, last_message_preview, last_message_type, unread_count,
                updated_at, status, created_at, account_id, assignee_id)
            SELECT 's' || i, 'v2_p' || i || '@finder', '', '', now() - i * interval '7 minutes',
                '你好', 1, CASE WHEN mod(i, 3) = 0 THEN 2 ELSE 0 END,
                now() - interval '1 day',
                (ARRAY['open', 'open', 'open', 'pending', 'resolved', 'resolved', 'snoozed'])
                    [1 + mod(i, 7)],
                now(),
                (%s::bigint[])[
                    CASE WHEN mod(i, 10) < 5 THEN 1 WHEN mod(i, 10) < 8 THEN 2 ELSE 3 END],
                (ARRAY[%s, NULL, %s, NULL, %s, NULL]::integer[])[1 + mod(i, 6)]
            FROM generate_series(1, %s) AS i
            """,
            [ids, agent.pk, solo.pk, admin.pk, SESSIONS],
        )
        cursor.execute(
            """
            INSERT INTO inbox_message (kind, new_msg_id, seq, msg_type, is_sender, from_username,
                to_username, content, created_at, msg_source, ext_info, title, parse_error,
                stored_at, delivery, delivery_error, attachment, activity, image_url,
                image_error, updated_at, account_id, session_id, maybe_delivered, requeues,
                activity_detail)
            SELECT 'letter', 10000000 + row_number() OVER (), k, 1, mod(k, 4) = 0, '', '', '你好',
                s.last_message_at - k * interval '1 minute', '', '', '', '', now(), 'received',
                '', '', '', '', '', now() - interval '1 day', s.account_id, s.id, false, 0, ''
            FROM inbox_session s
            CROSS JOIN LATERAL generate_series(
                1, CASE WHEN s.msg_session_id = 's1' THEN %s ELSE 2 END) AS k
            """,
            [BIG_THREAD],
        )
        cursor.execute("ANALYZE inbox_session; ANALYZE inbox_message; ANALYZE inbox_sessioncounter")
    return {"accounts": accounts, "agent": agent, "solo": solo, "admin": admin}


def plans(captured) -> list[str]:
    """EXPLAIN of every SELECT a request ran (the SQL as it was sent, values inlined)."""
    out = []
    with connection.cursor() as cursor:
        for query in captured:
            if not query["sql"].lstrip().upper().startswith("SELECT"):
                continue
            cursor.execute("EXPLAIN " + query["sql"])
            out.append("\n".join(row[0] for row in cursor.fetchall()))
    return out


def assert_no_full_reads(all_plans: list[str]) -> None:
    for plan in all_plans:
        assert not re.search(r"Seq Scan on inbox_(session|message)\b", plan), plan


def request_plans(client, user, url, params=None, **headers) -> list[str]:
    client.force_login(user)
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url, params or {}, **headers)
    assert response.status_code in (200, 204)
    return plans(captured)


# The index each view's page is read from (per account, merged).
VIEW_INDEX = {
    "all": "inbox_session_account_latest",
    "unread": "inbox_session_unread_latest",
    "mine": "inbox_session_mine_latest",
    "unassigned": "inbox_session_nobody_latest",
    "open": "inbox_session_status_latest",
    "pending": "inbox_session_status_latest",
    "resolved": "inbox_session_status_latest",
    "snoozed": "inbox_session_status_latest",
}


def test_every_view_pages_through_its_index_from_the_top_and_deep_down(client, big_inbox):
    index = reverse("inbox:index")
    for who in ["agent", "solo", "admin"]:
        user = big_inbox[who]
        accounts = browse.visible_accounts(user)
        deep = Session.objects.filter(account__in=accounts).order_by("last_message_at", "pk")[100]
        for view, view_index in VIEW_INDEX.items():
            for params, headers in [
                ({"view": view}, {}),
                ({"view": view}, {"HTTP_HX_REQUEST": "true"}),
                ({"view": view, "before": browse.session_key(deep)}, {"HTTP_HX_REQUEST": "true"}),
                ({"view": view, "account": accounts[0].pk}, {}),
            ]:
                all_plans = request_plans(client, user, index, params, **headers)
                assert_no_full_reads(all_plans)
                assert any(view_index in plan for plan in all_plans), (who, params, all_plans)


def test_load_more_reads_no_counts(client, big_inbox):
    client.force_login(big_inbox["agent"])
    deep = Session.objects.order_by("last_message_at", "pk")[100]
    with CaptureQueriesContext(connection) as captured:
        response = client.get(
            reverse("inbox:index"), {"before": browse.session_key(deep)}, HTTP_HX_REQUEST="true"
        )
    assert response.status_code == 200
    assert not any("inbox_sessioncounter" in query["sql"] for query in captured)


def test_the_keyset_cursor_is_an_index_condition(client, big_inbox):
    deep = Session.objects.order_by("last_message_at", "pk")[50]
    all_plans = request_plans(
        client,
        big_inbox["agent"],
        reverse("inbox:index"),
        {"view": "resolved", "before": browse.session_key(deep)},
        HTTP_HX_REQUEST="true",
    )
    page = next(plan for plan in all_plans if "inbox_session_status_latest" in plan)
    assert re.search(r"Index Cond: .*ROW\(last_message_at, id\) < ROW\(", page), page
    assert "Merge Append" in page, page


def test_polls_and_thread_pages_read_through_indexes(client, big_inbox):
    agent = big_inbox["agent"]
    big = Session.objects.get(msg_session_id="s1")
    messages = big.messages.order_by("created_at", "pk")
    deep, middle = messages[100], messages[BIG_THREAD // 2]
    since = browse.to_micros(timezone.now())
    requests = [
        (reverse("inbox:sessions_poll"), {"since": since}, {}),
        (big.get_absolute_url(), {}, {"HTTP_HX_REQUEST": "true"}),
        (big.get_absolute_url(), {}, {}),
        (big.get_absolute_url(), {"before": deep.pk}, {"HTTP_HX_REQUEST": "true"}),
        (big.get_absolute_url(), {"after": middle.pk}, {"HTTP_HX_REQUEST": "true"}),
        (big.get_absolute_url(), {"around": deep.pk}, {"HTTP_HX_REQUEST": "true"}),
        (reverse("inbox:thread_poll", args=[big.pk]), {"since": since, "seen": "1"}, {}),
    ]
    for url, params, headers in requests:
        assert_no_full_reads(request_plans(client, agent, url, params, **headers))

    # Older pages at any depth: one range of the thread index, bounded by a row comparison.
    client.force_login(agent)
    with CaptureQueriesContext(connection) as captured:
        client.get(big.get_absolute_url(), {"before": deep.pk}, HTTP_HX_REQUEST="true")
    page = next(plan for plan in plans(captured) if "inbox_message_thread_position" in plan)
    assert re.search(r"Index Cond: .*ROW\(created_at, COALESCE\(seq, .*\), id\) < ROW\(", page)
    assert "Sort" not in page.split("Index")[0], page
    assert Message.objects.filter(session=big).count() == BIG_THREAD
