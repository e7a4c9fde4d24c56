"""The list filtered by labels reads through indexes on PostgreSQL, at a size where a sequential
scan would otherwise win: a common label walks the view's own index and probes each session's
labels on the unique (session, label) index; a rare one reads its few sessions from the label's
index. First page and deep down, one label or two."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.urls import reverse

from accounts.models import Account
from inbox import browse
from inbox.labels.models import Label
from inbox.models import Session
from tests.test_plans_list import assert_no_full_reads, request_plans

pytestmark = pytest.mark.postgres


SESSIONS = 30_000


@pytest.fixture
def labelled(db):
    """Three accounts (50/30/20% of 30,000 sessions in every status, half assigned), an agent
    in all three; a shared label on ~30% of the sessions, one on ~0.5%, one of the first
    account on ~10% of its sessions. Inserted in SQL (the triggers count them), ANALYZEd."""
    accounts = [
        Account.objects.create(name=f"Shop {n}", app_id=f"wx_label_plan_{n}", token="t")
        for n in range(3)
    ]
    agent = get_user_model().objects.create_user("agent")
    for account in accounts:
        account.members.add(agent)
    common = Label.objects.create(name="常见")
    rare = Label.objects.create(name="罕见")
    own = Label.objects.create(name="自己的", account=accounts[0])
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO inbox_session (msg_session_id, peer_username, peer_nickname, my_username,
                last_message_at, last_message_preview, last_message_type, unread_count,
                updated_at, status, created_at, account_id, assignee_id)
            SELECT 's' || i, 'v2_p' || i || '@finder', '', '', now() - i * interval '7 minutes',
                '你好', 1, CASE WHEN mod(i, 3) = 0 THEN 2 ELSE 0 END, now() - interval '1 day',
                (ARRAY['open', 'open', 'open', 'pending', 'resolved', 'resolved', 'snoozed'])
                    [1 + mod(i, 7)],
                now(),
                (%s::bigint[])[
                    CASE WHEN mod(i, 10) < 5 THEN 1 WHEN mod(i, 10) < 8 THEN 2 ELSE 3 END],
                CASE WHEN mod(i, 2) = 0 THEN %s END
            FROM generate_series(1, %s) AS i
            """,
            [[a.pk for a in accounts], agent.pk, SESSIONS],
        )
        for label, per_mille in [(common, 300), (rare, 5), (own, 100)]:
            cursor.execute(
                """
                INSERT INTO labels_sessionlabel (session_id, label_id, account_id, added_at)
                SELECT id, %s, account_id, now() FROM inbox_session
                WHERE (id * 2654435761) %% 1000 < %s
                  AND (%s::bigint IS NULL OR account_id = %s::bigint)
                """,
                [label.pk, per_mille, label.account_id, label.account_id],
            )
        cursor.execute(
            "ANALYZE inbox_session; ANALYZE labels_sessionlabel; ANALYZE labels_labelcounter"
        )
    return {"accounts": accounts, "agent": agent, "common": common, "rare": rare, "own": own}


def deep_cursor(label: Label, depth: int = 2000) -> str:
    ordered = Session.objects.filter(label_links__label=label).order_by("-last_message_at", "-pk")
    total = ordered.count()
    return browse.session_key(ordered[min(depth, total - 1)])


def assert_no_full_label_reads(all_plans: list[str]) -> None:
    assert_no_full_reads(all_plans)
    for plan in all_plans:
        assert not re.search(r"Seq Scan on labels_sessionlabel\b", plan), plan


@pytest.mark.parametrize("view", ["all", "open", "unassigned"])
def test_a_common_label_walks_the_views_index_and_probes_each_session(client, labelled, view):
    index = reverse("inbox:index")
    label = labelled["common"]
    for params, headers in [
        ({"label": label.pk, "view": view}, {}),
        ({"label": label.pk, "view": view}, {"HTTP_HX_REQUEST": "true"}),
        (
            {"label": label.pk, "view": view, "before": deep_cursor(label)},
            {"HTTP_HX_REQUEST": "true"},
        ),
    ]:
        all_plans = request_plans(client, labelled["agent"], index, params, **headers)
        assert_no_full_label_reads(all_plans)
        text = "\n".join(all_plans)
        assert "labels_sessionlabel_unique_session_label" in text, text
        assert re.search(r"inbox_session_\w+_latest", text), text


def test_a_rare_label_reads_its_sessions_from_the_labels_index(client, labelled):
    index = reverse("inbox:index")
    label = labelled["rare"]
    for params in [{"label": label.pk}, {"label": label.pk, "before": deep_cursor(label, 100)}]:
        all_plans = request_plans(client, labelled["agent"], index, params, HTTP_HX_REQUEST="true")
        assert_no_full_label_reads(all_plans)
        assert "labels_sessionlabel_by_label" in "\n".join(all_plans)


def test_two_labels_and_an_accounts_own_label(client, labelled):
    index = reverse("inbox:index")
    agent = labelled["agent"]
    for params in [
        {"label": [labelled["common"].pk, labelled["own"].pk]},
        {"label": [labelled["common"].pk, labelled["rare"].pk]},
        {"label": labelled["own"].pk, "account": labelled["accounts"][0].pk},
    ]:
        all_plans = request_plans(client, agent, index, params, HTTP_HX_REQUEST="true")
        assert_no_full_label_reads(all_plans)


def test_the_sidebar_reads_the_counters_not_the_labels_sessions(client, labelled):
    all_plans = request_plans(client, labelled["agent"], reverse("inbox:index"))
    assert_no_full_label_reads(all_plans)
    sidebar = next(plan for plan in all_plans if "labels_labelcounter" in plan)
    assert "labels_sessionlabel" not in sidebar
