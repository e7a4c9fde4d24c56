"""@mentions in internal notes: parsing, who may be mentioned, the notification, the highlight,
and the composer's list of members."""

from __future__ import annotations

import uuid

import pytest
from django.contrib.auth.models import User
from django.urls import reverse

from inbox import rendering, services
from inbox.models import Message, Session
from inbox.team import mentions
from inbox.team.models import Kind, Mention, Notification


@pytest.fixture
def colleague(synced):
    user = User.objects.create_user("wang.fang", password="pw", first_name="王芳")
    synced.members.add(user)
    return user


@pytest.fixture
def session(synced) -> Session:
    return Session.objects.filter(account=synced).order_by("pk").first()


def names(text: str, usernames=("li.si", "wang.fang", "li")) -> list[str]:
    return [span.username for span in mentions.find(text, usernames)]


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("@wang.fang 请看一下", ["wang.fang"]),
        ("请 @wang.fang看一下", ["wang.fang"]),  # a Chinese character ends the name
        ("@Wang.Fang, @li.si.", ["wang.fang", "li.si"]),  # any case; punctuation ends it
        ("@li.si你好 @li", ["li.si", "li"]),
        ("@lisa", []),  # a longer name is another name
        ("write to li.si@wang.fang", []),  # an e-mail address is no mention
        ("@@wang.fang", ["wang.fang"]),
        ("@nobody here", []),
        ("@", []),
    ],
)
def test_mentions_are_found_by_user_name(text, found):
    assert names(text) == found


def test_a_hostile_note_is_parsed_in_linear_time():
    text = "@" + "a" * 200_000 + " @li.si"
    assert names(text) == ["li.si"]


def test_a_note_mentioning_a_member_notifies_them_and_stores_the_mention(
    session, member, colleague
):
    note = services.add_note(session, member, "@wang.fang 请跟进 @li.si", uuid.uuid4())
    assert set(Mention.objects.filter(message=note).values_list("user__username", flat=True)) == {
        "wang.fang",
        "li.si",
    }
    # The author knows what they wrote: only the colleague hears of it.
    notice = Notification.objects.get(kind=Kind.MENTION)
    assert (notice.recipient, notice.actor, notice.message) == (colleague, member, note)
    assert notice.text.endswith("@wang.fang 请跟进 @li.si")


def test_a_non_member_cannot_be_mentioned(session, member, outsider):
    note = services.add_note(session, member, "@outsider 你看看", uuid.uuid4())
    assert not Mention.objects.filter(message=note).exists()
    assert not Notification.objects.filter(recipient=outsider).exists()
    html = rendering.render_message(note, rendering.Reader.of(member))
    assert 'class="mention"' not in html
    assert "@outsider 你看看" in html


def test_an_inactive_member_cannot_be_mentioned(session, member, colleague):
    colleague.is_active = False
    colleague.save()
    services.add_note(session, member, "@wang.fang", uuid.uuid4())
    assert not Mention.objects.exists()


def test_a_re_posted_note_notifies_once(session, member, colleague):
    token = uuid.uuid4()
    services.add_note(session, member, "@wang.fang", token)
    services.add_note(session, member, "@wang.fang", token)
    assert Notification.objects.filter(kind=Kind.MENTION).count() == 1


def test_the_thread_highlights_mentions_escaped(session, member, colleague, member_client):
    services.add_note(session, member, "<b>@wang.fang</b> 看 https://example.com/x", uuid.uuid4())
    html = member_client.get(session.get_absolute_url(), HTTP_HX_REQUEST="true").content.decode()
    assert '&lt;b&gt;<span class="mention">@wang.fang</span>&lt;/b&gt;' in html
    assert 'href="https://example.com/x"' in html


def test_mentions_of_a_thread_cost_one_query(
    session, member, colleague, member_client, django_assert_num_queries
):
    for n in range(5):
        services.add_note(session, member, f"@wang.fang {n}", uuid.uuid4())
    notes = list(Message.objects.filter(kind=Message.Kind.NOTE).select_related("author"))
    with django_assert_num_queries(1):
        html = rendering.render_messages(notes, rendering.Reader.of(member))
    assert html.count('class="mention"') == 5


def test_the_composer_offers_the_accounts_members(
    session, member, colleague, outsider, member_client
):
    url = reverse("inbox:team:mention_candidates", args=[session.pk])
    everyone = member_client.get(url).json()["members"]
    assert everyone == [
        {"username": "li.si", "name": "李四"},
        {"username": "wang.fang", "name": "王芳"},
    ]
    assert member_client.get(url, {"q": "王"}).json()["members"] == [
        {"username": "wang.fang", "name": "王芳"}
    ]
    assert member_client.get(url, {"q": "out"}).json()["members"] == []


def test_the_member_list_of_another_accounts_conversation_is_404(session, outsider, client):
    client.force_login(outsider)
    url = reverse("inbox:team:mention_candidates", args=[session.pk])
    assert client.get(url).status_code == 404
    assert client.post(url).status_code == 405


def test_the_composer_knows_where_to_ask(session, member_client):
    html = member_client.get(session.get_absolute_url()).content.decode()
    assert reverse("inbox:team:mention_candidates", args=[session.pk]) in html
