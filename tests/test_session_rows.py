"""A session list row, rendered in Python: escaped, and saying what the template said."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.urls import reverse

from inbox.models import Session
from inbox.session_rows import render_session_row


def test_a_row_escapes_the_peer_and_the_account_and_links_to_the_thread(member):
    session = Session.objects.order_by("pk").first()
    session.peer_nickname = '<img src=x onerror="alert(1)">&'
    session.account.name = "<b>Shop</b>"
    html = render_session_row(session, list_query="view=unread&account=1", show_account=True)
    assert "<img" not in html and "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;&amp;" in html
    assert "&lt;b&gt;Shop&lt;/b&gt;" in html
    assert f'href="/sessions/{session.pk}/?view=unread&amp;account=1"' in html


def test_a_row_shows_unread_status_assignee_and_which_one_is_open(member):
    session = Session.objects.order_by("pk").first()
    assignee = get_user_model().objects.create_user("zs", first_name="张三")
    session.unread_count, session.status, session.assignee = 3, "pending", assignee
    html = render_session_row(session, current_pk=session.pk)
    assert 'class="session-row is-unread"' in html
    assert '<span class="badge" title="3 unread letters">3</span>' in html
    assert '<span class="tag status status-pending">Pending</span>' in html
    assert "张三</span>" in html
    assert 'aria-current="true"' in html
    session.unread_count, session.status, session.assignee = 0, "open", None
    quiet = render_session_row(session)
    assert "badge" not in quiet and "session-tags" not in quiet and "aria-current" not in quiet


def test_the_list_and_its_polls_render_rows_the_same_way(member_client, member):
    session = Session.objects.order_by("-last_message_at", "-pk").first()
    listing = member_client.get(reverse("inbox:index")).content.decode()
    poll = member_client.get(reverse("inbox:sessions_poll"), {"since": "0"}).content.decode()
    row = str(render_session_row(session))
    assert row in listing and row in poll
