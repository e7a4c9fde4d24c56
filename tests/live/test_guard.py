"""The "someone replied since" guard: a reply posted with the thread's "seen up to" marker is
held back, with a question, when another agent's reply or a phone reply came after it."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from inbox import services
from inbox.live import guard
from inbox.models import Message
from tests.live.conftest import HTMX


def newest_pk(session) -> int:
    return session.messages.order_by("-pk").values_list("pk", flat=True).first()


def post_reply(client, session, text="好的，马上处理", htmx=True, **fields):
    data = {"kind": "reply", "text": text, "client_token": str(uuid.uuid4()), **fields}
    return client.post(reverse("inbox:compose", args=[session.pk]), data, **(HTMX if htmx else {}))


def replies_by(session, user) -> int:
    return session.messages.filter(kind=Message.Kind.LETTER, author=user).count()


def phone_reply(session, text="手机上回复了") -> Message:
    """A reply written on the phone, synced in: sent by the account, no author."""
    return Message.objects.create(
        account_id=session.account_id,
        session=session,
        is_sender=True,
        from_username=session.my_username,
        to_username=session.peer_username,
        content=text,
        created_at=timezone.now() - timedelta(seconds=20),
    )


@pytest.mark.django_db
def test_another_agents_reply_since_the_marker_asks_first(
    member, colleague, session, member_client
):
    seen = newest_pk(session)
    services.compose_reply(session, colleague, "我来回复：已经发货了", uuid.uuid4())
    response = post_reply(member_client, session, seen_up_to=seen)
    assert response.status_code == 200
    html = response.content.decode()
    assert "王芳 replied 0 seconds ago: “我来回复：已经发货了” Send anyway?" in html
    assert 'name="confirm" value="1"' in html
    assert ">好的，马上处理</textarea>" in html  # the text is kept
    assert replies_by(session, member) == 0


@pytest.mark.django_db
def test_confirming_sends(member, colleague, session, member_client):
    seen = newest_pk(session)
    services.compose_reply(session, colleague, "已经发货了", uuid.uuid4())
    response = post_reply(member_client, session, seen_up_to=seen, confirm="1")
    assert response.status_code == 200
    assert replies_by(session, member) == 1


@pytest.mark.django_db
def test_a_phone_reply_since_the_marker_asks_first(member, session, member_client):
    seen = newest_pk(session)
    phone_reply(session)
    html = post_reply(member_client, session, seen_up_to=seen).content.decode()
    assert "Someone on the phone replied 20 seconds ago: “手机上回复了”" in html
    assert replies_by(session, member) == 0


@pytest.mark.django_db
def test_own_replies_customer_letters_and_notes_never_hold_a_reply_back(
    member, colleague, session, member_client
):
    seen = newest_pk(session)
    services.compose_reply(session, member, "我自己的回复", uuid.uuid4())
    services.add_note(session, colleague, "内部备注", uuid.uuid4())
    Message.objects.create(
        account_id=session.account_id,
        session=session,
        content="顾客又来信了",
        created_at=timezone.now(),
    )
    assert post_reply(member_client, session, seen_up_to=seen).status_code == 200
    assert replies_by(session, member) == 2


@pytest.mark.django_db
def test_a_reply_seen_before_posting_does_not_ask(member, colleague, session, member_client):
    services.compose_reply(session, colleague, "已经发货了", uuid.uuid4())
    post_reply(member_client, session, seen_up_to=newest_pk(session))
    assert replies_by(session, member) == 1


@pytest.mark.django_db
def test_a_reply_that_failed_for_good_does_not_ask(member, colleague, session, member_client):
    seen = newest_pk(session)
    reply = services.compose_reply(session, colleague, "发送失败的", uuid.uuid4())
    Message.objects.filter(pk=reply.pk).update(delivery=Message.Delivery.FAILED)
    post_reply(member_client, session, seen_up_to=seen)
    assert replies_by(session, member) == 1


@pytest.mark.django_db
def test_notes_are_never_guarded(member, colleague, session, member_client):
    seen = newest_pk(session)
    services.compose_reply(session, colleague, "已经发货了", uuid.uuid4())
    data = {"kind": "note", "text": "备注", "client_token": str(uuid.uuid4()), "seen_up_to": seen}
    member_client.post(reverse("inbox:compose", args=[session.pk]), data, **HTMX)
    assert session.messages.filter(kind=Message.Kind.NOTE, author=member).count() == 1


@pytest.mark.django_db
def test_without_javascript_the_question_is_the_whole_page_409(
    member, colleague, session, member_client
):
    seen = newest_pk(session)
    services.compose_reply(session, colleague, "已经发货了", uuid.uuid4())
    response = post_reply(member_client, session, htmx=False, seen_up_to=seen)
    assert response.status_code == 409
    assert "Send anyway" in response.content.decode()
    assert replies_by(session, member) == 0


@pytest.mark.django_db
def test_a_bad_marker_is_400(member, session, member_client):
    assert post_reply(member_client, session, seen_up_to="12abc").status_code == 400
    assert replies_by(session, member) == 0


@pytest.mark.django_db
def test_a_form_without_a_marker_is_not_guarded(member, colleague, session, member_client):
    services.compose_reply(session, colleague, "已经发货了", uuid.uuid4())
    post_reply(member_client, session)
    assert replies_by(session, member) == 1


@pytest.mark.django_db
def test_the_guard_costs_one_query(member, colleague, session, django_assert_num_queries):
    seen = newest_pk(session)
    services.compose_reply(session, colleague, "已经发货了", uuid.uuid4())
    with django_assert_num_queries(1):
        found = guard.unseen_reply(session, member, seen)
    assert found.content == "已经发货了"


@pytest.mark.django_db
def test_an_outsider_cannot_post_or_probe(outsider, session, client):
    client.force_login(outsider)
    assert post_reply(client, session, seen_up_to=1).status_code == 404


@pytest.mark.django_db
def test_the_thread_page_carries_the_marker(member_client, session):
    html = member_client.get(session.get_absolute_url()).content.decode()
    assert f'name="seen_up_to" data-seen-up-to value="{newest_pk(session)}"' in html
