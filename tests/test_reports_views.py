"""The report page: who sees what, filters in the URL, the htmx fragment, CSV exports, escaping,
and a fixed number of queries."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse
from django.utils import timezone

from accounts.models import Account
from inbox import services
from inbox.models import Session
from inbox.payloads import parse_sync_page
from inbox.reports.models import Episode
from inbox.sync import account_lease, store_page

URL = reverse("inbox:reports")


def store(account: Account, items: list[dict], key_buff: str) -> None:
    account.refresh_from_db(fields=["key_buff"])
    page = parse_sync_page({"list": items, "keyBuff": key_buff})
    with account_lease(account) as lease:
        store_page(account, page, lease_token=lease, expected=account.key_buff)


@pytest.fixture
def worked(synced, member, make_item):
    """Today: two conversations in the member's account, one answered from the phone and
    resolved by the member, one answered by the member."""
    now = int(timezone.now().timestamp())
    store(
        synced,
        [
            make_item(content__msgSessionId="r1@findermsg", content__msg__CreateTime=now - 600),
            make_item(
                content__msgSessionId="r1@findermsg",
                content__isSender=1,
                content__msg__CreateTime=now - 540,
            ),
            make_item(content__msgSessionId="r2@findermsg", content__msg__CreateTime=now - 300),
        ],
        "report-1",
    )
    first = Session.objects.get(account=synced, msg_session_id="r1@findermsg")
    services.set_status(first, "resolved", member)
    second = Session.objects.get(account=synced, msg_session_id="r2@findermsg")
    services._mark_sent(services.compose_reply(second, member, "马上发货", uuid.uuid4()), 10**15)
    return synced


def test_the_report_shows_todays_figures_to_a_member(member_client, worked):
    response = member_client.get(URL, {"range": "today"})
    assert response.status_code == 200
    cards = {card.label: card.value for card in response.context["report"].cards}
    opened_today = Episode.objects.filter(
        account=worked, opened_at__gte=response.context["report"].period.start
    ).count()
    assert cards["New conversations"] == str(opened_today)
    assert int(cards["Replies sent"]) >= 2
    assert int(cards["Resolved"]) == 1
    content = response.content.decode()
    assert "data-report=" in content and "&quot;heatmap&quot;" in content
    assert 'data-chart="heatmap"' in content


def test_the_inbox_sidebar_links_to_the_reports(member_client, worked):
    assert f'href="{URL}"' in member_client.get("/").content.decode()


def test_a_non_members_account_is_not_found(client, worked, outsider):
    other = Account.objects.create(name="Other", app_id="wx_other_shop", token="t")
    other.members.add(outsider)
    client.force_login(outsider)
    assert client.get(URL, {"account": worked.pk}).status_code == 404
    assert client.get(URL, {"account": other.pk}).status_code == 200


def test_members_see_their_accounts_only_and_superusers_all(client, worked, outsider, member):
    client.force_login(outsider)
    response = client.get(URL, {"range": "today"})
    assert response.context["report"].cards[2].value == "0"  # no replies in no accounts
    boss = get_user_model().objects.create_superuser("boss", password="x")
    client.force_login(boss)
    response = client.get(URL, {"range": "today"})
    assert int(response.context["report"].cards[2].value) >= 2


def test_an_agent_outside_the_users_accounts_is_not_found(member_client, worked, outsider):
    assert member_client.get(URL, {"agent": outsider.pk}).status_code == 404


def test_the_agent_filter_keeps_the_agents_own_replies(member_client, worked, member):
    response = member_client.get(URL, {"range": "today", "agent": member.pk})
    assert response.status_code == 200
    cards = {card.label: card.value for card in response.context["report"].cards}
    assert cards["Replies sent"] == "1" and cards["Resolved"] == "1"


def test_bad_filters_get_a_clear_error(member_client, worked):
    response = member_client.get(
        URL, {"range": "custom", "start": "2026-03-05", "end": "2026-03-01"}
    )
    assert response.status_code == 400
    assert "The last day comes before the first." in response.content.decode()
    assert member_client.get(URL, {"range": "custom", "start": "nope"}).status_code == 400
    assert member_client.get(URL, {"range": "decade"}).status_code == 400


def test_htmx_gets_only_the_figures(member_client, worked):
    response = member_client.get(URL, {"range": "7d"}, headers={"HX-Request": "true"})
    content = response.content.decode()
    assert content.lstrip().startswith('<section id="report-figures"')
    assert "report-filters" not in content and "<html" not in content


def test_a_table_exports_as_csv_with_a_bom(member_client, worked):
    response = member_client.get(URL, {"range": "today", "export": "accounts"})
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert "attachment" in response["Content-Disposition"]
    body = b"".join(response.streaming_content)
    assert body.startswith("\ufeff".encode())
    rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
    assert rows[0][:5] == [
        "Account",
        "New conversations",
        "Incoming letters",
        "Replies sent",
        "Resolved",
    ]
    assert rows[1][0] == worked.name


@pytest.mark.parametrize("table", ["overview", "agents", "volume", "first_response", "heatmap"])
def test_every_table_exports(member_client, worked, table):
    response = member_client.get(URL, {"range": "7d", "export": table})
    assert response.status_code == 200
    assert b"".join(response.streaming_content).startswith("\ufeff".encode())


def test_an_unknown_table_is_not_found(member_client, worked):
    assert member_client.get(URL, {"export": "secrets"}).status_code == 404


def test_the_conversations_csv_lists_each_conversation(member_client, worked, member):
    response = member_client.get(URL, {"range": "today", "export": "conversations"})
    body = b"".join(response.streaming_content).decode("utf-8")
    assert body.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(body.lstrip("\ufeff"))))
    assert rows[0] == [
        "Session",
        "Account",
        "Viewer",
        "Opened",
        "First response",
        "First responder",
        "Resolved",
        "Resolver",
        "Agent",
        "Letters",
        "Replies",
    ]
    by_session = {row[0]: row for row in rows[1:]}
    assert by_session["r1@findermsg"][5] == "The account (phone)"
    assert by_session["r1@findermsg"][7] == member.get_full_name()
    assert by_session["r2@findermsg"][5] == member.get_full_name()


def test_the_conversations_csv_pages_through_many(member_client, worked, monkeypatch):
    from inbox.reports import views

    monkeypatch.setattr(views, "CONVERSATIONS_PAGE", 2)
    response = member_client.get(URL, {"range": "today", "export": "conversations"})
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode("utf-8-sig"))))
    opened = Episode.objects.filter(
        account=worked, opened_at__gte=timezone.now() - timedelta(days=2)
    )
    assert len(rows) - 1 == opened.count() >= 3
    assert len({row[0] for row in rows[1:]}) == len(rows) - 1


def test_names_are_escaped(member_client, worked):
    Account.objects.filter(pk=worked.pk).update(name="<script>alert(1)</script>")
    content = member_client.get(URL).content.decode()
    assert "<script>alert(1)</script>" not in content
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in content


def test_business_hours_mode_answers(member_client, worked):
    response = member_client.get(URL, {"range": "30d", "time": "business"})
    assert response.status_code == 200 and response.context["report"].business


def test_the_report_reads_a_fixed_number_of_queries(
    member_client, worked, make_item, django_assert_max_num_queries
):
    member_client.get(URL, {"range": "30d"})
    with django_assert_max_num_queries(18) as first:
        member_client.get(URL, {"range": "30d"})
    now = int(timezone.now().timestamp())
    store(
        worked,
        [
            make_item(content__msgSessionId=f"more{n}@findermsg", content__msg__CreateTime=now - n)
            for n in range(20)
        ],
        "report-more",
    )
    with django_assert_max_num_queries(len(first.captured_queries)):
        member_client.get(URL, {"range": "30d"})


def test_signed_out_visitors_go_to_the_sign_in_page(client, db):
    assert client.get(URL).status_code == 302
    assert client.post(URL).status_code == 405


@pytest.mark.postgres
def test_figures_summarised_by_postgresql_equal_the_python_ones(worked, member, make_item):
    from inbox.reports import figures, tables

    now = int(timezone.now().timestamp())
    for n in range(12):
        store(
            worked,
            [
                make_item(
                    content__msgSessionId=f"q{n}@findermsg", content__msg__CreateTime=now - 900
                ),
                make_item(
                    content__msgSessionId=f"q{n}@findermsg",
                    content__isSender=1,
                    content__msg__CreateTime=now - 900 + 7 * n * n,
                ),
            ],
            f"equal-{n}",
        )
    scope = figures.Scope((worked.pk,))
    period = tables.default_period("7d")
    samples = figures.read_samples(scope, period)
    in_python = figures.summaries(samples, figures.timed(samples, figures.wall_clock))
    in_database = figures.summaries_in_database(
        scope, period, figures.read_samples(scope, period, rows=False)
    )
    assert in_database == in_python
    assert in_python.totals.first_response.count >= 13
