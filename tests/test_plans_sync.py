"""Sync's per-page lookups stay index probes when the planner's statistics predate a big import
(PostgreSQL): the NewMsgId check is written so that no statistics can turn it into a scan of the
account's letters, and sync analyses the session and message tables once they have outgrown
their statistics."""

from __future__ import annotations

import psycopg
import pytest
from django.db import connection

from accounts.models import Account
from inbox import bulk, table_statistics
from inbox.models import Message, Session

pytestmark = pytest.mark.postgres

LETTERS = 20_000


def _analyze(*tables: str) -> None:
    with connection.cursor() as cursor:
        for table in tables:
            cursor.execute(f"ANALYZE {table}")


def _flush_table_counters() -> None:
    # PostgreSQL 15 publishes a backend's table counters at most once a second; tests ask now.
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_force_next_flush()")
        cursor.execute("SELECT 1")


def _account_with_letters(app_id: str, letters: int) -> Account:
    """An account with `letters` letters in one session: one made through the ORM (its defaults),
    copied in SQL with NewMsgIds 1, 2, 3, …"""
    account = Account.objects.create(name=app_id, app_id=app_id, token="t")
    session = Session.objects.create(
        account=account, msg_session_id=f"{app_id}@findermsg", last_message_at="2024-01-24T08:00Z"
    )
    template = Message.objects.create(
        account=account, session=session, content="你好", created_at=session.last_message_at, raw={}
    )
    columns = [
        field.column
        for field in Message._meta.concrete_fields
        if field.column not in ("id", "new_msg_id", "client_token")
    ]
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO inbox_message ({', '.join(columns)}, new_msg_id) "
            f"SELECT {', '.join(columns)}, n - 9223372036854775808 FROM inbox_message "
            "CROSS JOIN generate_series(1, %s) AS n WHERE id = %s",
            [letters, template.pk],
        )
    template.delete()
    return account


def test_the_new_msg_id_check_probes_the_unique_index_whatever_the_statistics(transactional_db):
    # Statistics taken when another account held every letter: the new account has "no rows".
    _account_with_letters("wx_before", 2_000)
    _analyze("inbox_message")
    account = _account_with_letters("wx_backfilled", LETTERS)
    wanted = [Message._meta.get_field("new_msg_id").get_prep_value(n) for n in (5, 7, 10**7)]

    with connection.cursor() as cursor:
        cursor.execute(
            "EXPLAIN (ANALYZE, COSTS OFF) "
            + bulk._PROBE_LETTERS.format(table="inbox_message").replace("%b", "%s"),
            [wanted, account.pk],
        )
        plan = "\n".join(row[0] for row in cursor.fetchall())

    assert "inbox_message_unique_new_msg_id" in plan
    assert "new_msg_id = k.new_msg_id" in plan.split("Index Cond:")[1].splitlines()[0]
    assert "Rows Removed by Filter" not in plan and "Seq Scan on inbox_message" not in plan
    assert bulk.known_letters(account.pk, [5, 7, 10**7]) == {5: True, 7: True}


def test_known_letters_finds_the_stored_ones_and_says_where_they_came_from(transactional_db):
    account = _account_with_letters("wx_known", 3)
    stored = Message.objects.filter(account=account).order_by("pk")
    Message.objects.filter(pk=stored[0].pk).update(raw=None)  # a reply composed here
    ids = list(stored.values_list("new_msg_id", flat=True))

    assert bulk.known_letters(account.pk, [*ids, 424242]) == {
        ids[0]: False,
        ids[1]: True,
        ids[2]: True,
    }


def test_sync_analyses_a_table_that_outgrew_its_statistics_once(transactional_db):
    _analyze("inbox_session", "inbox_message")
    _account_with_letters("wx_growing", LETTERS)
    _flush_table_counters()

    assert table_statistics.refresh_if_stale() == ["inbox_message"]
    _flush_table_counters()
    assert table_statistics.refresh_if_stale() == []
    with connection.cursor() as cursor:
        cursor.execute("SELECT reltuples FROM pg_class WHERE relname = 'inbox_message'")
        assert cursor.fetchone()[0] >= LETTERS


def test_a_table_another_worker_is_analysing_is_left_to_it(transactional_db):
    _analyze("inbox_session", "inbox_message")
    _account_with_letters("wx_busy", LETTERS)
    _flush_table_counters()
    other = psycopg.connect(**connection.get_connection_params(), autocommit=True)
    try:
        other.execute(
            "SELECT pg_advisory_lock(%s, hashtext('inbox_message'))", [table_statistics.LOCK_SPACE]
        )
        assert table_statistics.refresh_if_stale() == []
    finally:
        other.close()

    _flush_table_counters()
    assert table_statistics.refresh_if_stale() == ["inbox_message"]


def test_statistics_are_never_refreshed_inside_a_transaction(db):
    _account_with_letters("wx_atomic", 2_000)

    assert table_statistics.refresh_if_stale() == []
