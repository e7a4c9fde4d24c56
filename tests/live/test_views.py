"""The live endpoints: heartbeat (no query with a fresh token), who is viewing and typing,
availability in the switch and the assignee picker, closing a tab, the events stream."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from inbox.live import presence, tokens, views
from tests.live.conftest import HTMX

pytestmark = pytest.mark.usefixtures("live_store")

HEARTBEAT = reverse("inbox:live:heartbeat")
TAB_A, TAB_B = "tab-aaaaaaaa", "tab-bbbbbbbb"


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def thread_token(client: Client, session) -> str:
    """The token the thread page gives its header line, as a tab reads it."""
    html = client.get(session.get_absolute_url()).content.decode()
    marker = f'id="live-viewers-{session.pk}" class="live-viewers" data-live-thread="'
    start = html.index(marker) + len(marker)
    return html[start : html.index('"', start)]


def tab_token(client: Client) -> str:
    html = client.get(reverse("inbox:index")).content.decode()
    start = html.index('id="live" hidden data-token="') + len('id="live" hidden data-token="')
    return html[start : html.index('"', start)]


def beat(client: Client, token: str, tab: str = TAB_A, **flags):
    data = {"token": token, "tab": tab, **{name: "1" for name, on in flags.items() if on}}
    return client.post(HEARTBEAT, data)


def test_a_tab_heartbeat_costs_no_query_and_makes_the_agent_online(
    member, django_assert_num_queries
):
    client = signed_in(member)
    token = tab_token(client)
    # Coming online may hand the agent waiting work (the team's auto-assignment): not measured.
    beat(client, token, TAB_B, active=True)
    with django_assert_num_queries(0):
        response = beat(client, token, active=True)
    assert response.status_code == 204
    assert presence.availability([member.pk]) == {member.pk: "online"}


def test_coming_online_offers_the_agent_waiting_conversations(member, monkeypatch):
    offered = []
    monkeypatch.setattr(views, "agent_available", offered.append)
    client = signed_in(member)
    token = tab_token(client)
    beat(client, token, active=True)
    beat(client, token, TAB_B, active=True)
    assert offered == [member.pk]


def test_a_thread_heartbeat_answers_who_else_is_viewing_and_typing(
    member, colleague, session, django_assert_num_queries
):
    mine, theirs = signed_in(member), signed_in(colleague)
    my_token, their_token = thread_token(mine, session), thread_token(theirs, session)
    assert beat(mine, my_token).content == b""
    beat(theirs, their_token, TAB_B, typing=True)
    with django_assert_num_queries(0):
        response = beat(mine, my_token)
    assert response.status_code == 200
    assert response.content.decode() == '<span class="live-viewer is-typing">王芳 is typing…</span>'
    beat(theirs, their_token, TAB_B)
    assert (
        beat(mine, my_token).content.decode() == '<span class="live-viewer">王芳 is viewing</span>'
    )


def test_names_in_the_viewers_line_are_escaped(member, colleague, session):
    colleague.first_name = "<img src=x onerror=alert(1)>"
    colleague.save()
    mine, theirs = signed_in(member), signed_in(colleague)
    beat(theirs, thread_token(theirs, session), TAB_B)
    html = beat(mine, thread_token(mine, session)).content.decode()
    assert "<img" not in html
    assert "&lt;img src=x onerror=alert(1)&gt; is viewing" in html


def test_a_token_is_refused_from_another_browser_session(member, session):
    token = thread_token(signed_in(member), session)
    stranger = signed_in(member)  # the same user signed in elsewhere: another session cookie
    assert beat(stranger, token).status_code == 403
    assert beat(Client(), token).status_code == 403
    assert presence.viewers(session.pk) == []


def test_a_forged_token_is_refused(member):
    client = signed_in(member)
    assert beat(client, tab_token(client) + "x").status_code == 403


def test_bad_heartbeats_are_400(member):
    client = signed_in(member)
    token = tab_token(client)
    assert client.post(HEARTBEAT, {"token": token, "tab": "no"}).status_code == 400
    assert client.post(HEARTBEAT, {"tab": TAB_A}).status_code == 400
    assert client.get(HEARTBEAT).status_code == 405


def test_a_stale_token_is_checked_against_the_session_and_renewed(
    member, session, settings, django_assert_max_num_queries
):
    client = signed_in(member)
    token = thread_token(client, session)
    beat(client, token, TAB_B, active=True)
    settings.LIVE_TOKEN_SECONDS = -1  # every token is stale now
    with django_assert_max_num_queries(3):  # session, user, membership
        response = beat(client, token)
    assert response.status_code == 200
    renewed = tokens.read(client.get(HEARTBEAT).wsgi_request, response["X-Live-Token"])
    assert (renewed.user_id, renewed.session_id) == (member.pk, session.pk)


def test_a_stale_token_of_a_conversation_no_longer_visible_is_refused(member, session, settings):
    client = signed_in(member)
    token = thread_token(client, session)
    session.account.members.remove(member)
    assert beat(client, token).status_code == 200  # fresh: trusted for LIVE_TOKEN_SECONDS
    settings.LIVE_TOKEN_SECONDS = -1
    assert beat(client, token).status_code == 403


def test_an_outsider_learns_nothing_about_a_conversation(outsider, member, session):
    """No page gives an outsider a token for it, and a token made for them is refused once
    checked."""
    beat(signed_in(member), thread_token(signed_in(member), session))
    client = signed_in(outsider)
    assert client.get(session.get_absolute_url()).status_code == 404
    request = client.get(reverse("inbox:index")).wsgi_request
    forged = tokens.issue(request, outsider, session.pk)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("django.conf.settings.LIVE_TOKEN_SECONDS", -1)
        response = beat(client, forged)
    assert response.status_code == 403
    assert b"is viewing" not in response.content


def test_closing_a_tab_takes_it_offline_and_out_of_the_conversation(member, session):
    client = signed_in(member)
    token = thread_token(client, session)
    beat(client, token)
    assert presence.viewers(session.pk)
    response = client.post(reverse("inbox:live:close"), {"token": token, "tab": TAB_A})
    assert response.status_code == 204
    assert presence.viewers(session.pk) == []
    assert presence.availability([member.pk]) == {member.pk: "offline"}


def test_the_switch_sets_the_availability(member, member_client):
    url = reverse("inbox:live:status")
    assert member_client.post(url, {"status": "busy"}, **HTMX).status_code == 204
    assert presence.chosen_status(member.pk) == "busy"
    assert member_client.post(url, {"status": "away"}).status_code == 302  # without JavaScript
    assert presence.chosen_status(member.pk) == "away"
    assert member_client.post(url, {"status": "offline"}).status_code == 400
    assert member_client.get(url).status_code == 405
    html = member_client.get(reverse("inbox:index")).content.decode()
    assert '<option value="away" selected>Away</option>' in html


def test_the_switch_needs_a_signed_in_user(client):
    response = client.post(reverse("inbox:live:status"), {"status": "busy"})
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_the_assignee_picker_shows_each_members_availability(
    member, colleague, session, member_client
):
    presence.heartbeat(colleague.pk, "王芳", TAB_B, active=True)
    html = member_client.get(session.get_absolute_url()).content.decode()
    assert (
        f'<option value="{colleague.pk}" data-availability="online">王芳 · Online</option>' in html
    )
    presence.set_status(colleague.pk, "busy")
    html = member_client.get(session.get_absolute_url()).content.decode()
    assert "王芳 · Busy" in html


def test_the_events_endpoint_answers_204_under_wsgi(member_client):
    response = member_client.get(reverse("inbox:live:events"))
    assert response.status_code == 204


def test_admins_user_list_shows_availability(admin_client, member, colleague):
    presence.heartbeat(member.pk, "李四", TAB_A, active=True)
    presence.heartbeat(colleague.pk, "王芳", TAB_B, active=True)
    presence.set_status(colleague.pk, "busy")
    html = admin_client.get(reverse("admin:auth_user_changelist")).content.decode()
    assert '<td class="field-availability">Online</td>' in html
    assert '<td class="field-availability">Busy</td>' in html
    assert '<td class="field-availability">Offline</td>' in html  # the admin, no inbox tab
