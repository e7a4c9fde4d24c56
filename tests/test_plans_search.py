"""The plans PostgreSQL chooses for search, at a size where reading whole tables would be the
cheap-looking choice without the search indexes: the newest letters are walked through
inbox_message_search_recent, older ones looked up in the GIN index on inbox_search_vector(content),
and no query reads the whole message or session table."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from inbox.models import Message, Session
from inbox.search import RECENT_WINDOW, search

pytestmark = pytest.mark.postgres

LETTERS = 100_000
SESSIONS = 100_000


def clone(model, template, count: int, overrides: dict[str, str]) -> None:
    """`count` copies of the `template` row in one INSERT … SELECT, with `overrides` (SQL over
    n = 1…count) for the columns that must differ: rows in bulk without a Python loop."""
    table = model._meta.db_table
    columns = [f.column for f in model._meta.concrete_fields if not f.primary_key]
    values = [overrides.get(column, connection.ops.quote_name(column)) for column in columns]
    quoted = ", ".join(connection.ops.quote_name(column) for column in columns)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} ({quoted}) "
            f"SELECT {', '.join(values)} FROM {table}, generate_series(1, %s) AS n "
            f"WHERE {table}.id = %s",
            [count, template.pk],
        )


@pytest.fixture
def busy_inbox(synced, member):
    """100,000 letters in 100,000 more sessions of the member's account: 发货 in every other one,
    紫砂壶 in a handful of old ones only. Rows are copied in SQL (the plans, not the ingestion,
    are under test) and the tables analysed, as autovacuum would."""
    start = timezone.now() - timedelta(days=365)
    template_session = Session.objects.filter(account=synced).earliest("pk")
    clone(
        Session,
        template_session,
        SESSIONS,
        {
            "msg_session_id": "'plan-' || n || '@findermsg'",
            "peer_username": "'v2_plan_peer_' || n || '@finder'",
            "peer_nickname": "CASE WHEN n %% 1000 = 0 THEN '小明' ELSE '顾客' END || n",
            "last_message_at": f"'{start.isoformat()}'::timestamptz + n * interval '1 minute'",
        },
    )
    first_session = Session.objects.get(msg_session_id="plan-1@findermsg").pk
    template_message = Message.objects.filter(account=synced, msg_type=1).earliest("pk")
    rare_before = LETTERS - 2 * RECENT_WINDOW
    clone(
        Message,
        template_message,
        LETTERS,
        {
            "session_id": f"{first_session} + n %% {SESSIONS}",
            "new_msg_id": "1000000000000000 + n",
            "kind": "'letter'",
            "content": (
                f"CASE WHEN n %% 5000 = 7 AND n < {rare_before} THEN '请问第' || n || '单的紫砂壶' "
                "WHEN n %% 2 = 1 THEN '第' || n || '单什么时候发货' ELSE '收到了，谢谢 ' || n END"
            ),
            "created_at": f"'{start.isoformat()}'::timestamptz + n * interval '1 minute'",
        },
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE inbox_message")
        cursor.execute("ANALYZE inbox_session")
        cursor.execute("ANALYZE inbox_sessionname")
        # The membership tables too: after other tests' rows come and go, autovacuum can leave
        # them estimated at several accounts per user, and the plans then hash every letter.
        cursor.execute("ANALYZE accounts_account")
        cursor.execute("ANALYZE accounts_account_members")


def plans_of_search(user, query: str) -> list[str]:
    with CaptureQueriesContext(connection) as captured:
        results = search(user, query)
    assert results.messages
    plans = []
    with connection.cursor() as cursor:
        for entry in captured.captured_queries:
            if "inbox_message" in entry["sql"] or "inbox_session" in entry["sql"]:
                cursor.execute(f"EXPLAIN {entry['sql']}")
                plans.append("\n".join(row[0] for row in cursor.fetchall()))
    return plans


def assert_no_table_scan(plans: list[str]) -> None:
    for plan in plans:
        assert "Seq Scan on inbox_message" not in plan, plan
        assert "Seq Scan on inbox_session" not in plan, plan  # inbox_sessionname's too


def test_a_common_term_is_answered_by_walking_the_newest_letters(busy_inbox, member):
    sessions_plan, boundary_plan, recent_plan = plans_of_search(member, "发货")

    assert "Index Only Scan using inbox_message_search_recent" in boundary_plan
    assert "inbox_message_search_recent" in recent_plan
    assert_no_table_scan([sessions_plan, boundary_plan, recent_plan])


def test_a_rare_old_term_is_looked_up_in_the_search_vector_index(busy_inbox, member):
    sessions_plan, boundary_plan, recent_plan, older_plan = plans_of_search(member, "紫砂壶")

    assert "inbox_message_search_recent" in recent_plan
    assert "inbox_message_search_vector" in older_plan
    assert_no_table_scan([sessions_plan, boundary_plan, recent_plan, older_plan])


def test_a_short_nickname_is_found_through_the_nickname_vector(busy_inbox, member):
    with CaptureQueriesContext(connection) as captured:
        results = search(member, "小明")
    assert len(results.sessions) == 10
    sessions_sql = next(q["sql"] for q in captured.captured_queries if "peer_nickname" in q["sql"])
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN {sessions_sql}")
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "inbox_sessionname_nickname_vector" in plan
    assert "Seq Scan on inbox_session" not in plan


def test_a_nickname_is_found_through_the_trigram_indexes(busy_inbox, member):
    with CaptureQueriesContext(connection) as captured:
        results = search(member, "顾客9999")
    assert [s.peer_nickname for s in results.sessions][:1] == ["顾客99999"]
    sessions_sql = next(q["sql"] for q in captured.captured_queries if "peer_nickname" in q["sql"])
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN {sessions_sql}")
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "inbox_sessionname_nickname_trgm" in plan
    assert "Seq Scan on inbox_session" not in plan
