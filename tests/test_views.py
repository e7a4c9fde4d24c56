"""The inbox's pages, fragments and polls: who may see what, what each answers, and that hostile
letters stay text."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.urls import reverse
from django.utils import timezone

from accounts.models import Account
from accounts.sandbox import PEERS, Peer
from inbox import services
from inbox.browse import to_micros
from inbox.models import Message, Session
from inbox.sync import sync_account
from tests.conftest import SANDBOX_APP_ID


def session_of(nickname_peer: Peer) -> Session:
    return Session.objects.get(peer_username=nickname_peer.username)


def image_message() -> Message:
    return Message.objects.filter(msg_type=Message.Type.IMAGE).order_by("pk").first()


def urls(session: Session, image: Message) -> dict[str, tuple[str, str]]:
    """Every inbox URL: name → (method, url)."""
    return {
        "index": ("get", reverse("inbox:index")),
        "sessions_poll": ("get", reverse("inbox:sessions_poll") + "?since=0"),
        "search": ("get", reverse("inbox:search") + "?q=%E4%BF%9D%E6%B8%A9"),
        "thread": ("get", session.get_absolute_url()),
        "thread_poll": ("get", reverse("inbox:thread_poll", args=[session.pk]) + "?since=0"),
        "image": ("get", reverse("inbox:image", args=[image.pk])),
        "load_image": ("post", reverse("inbox:load_image", args=[image.pk])),
    }


ALL_URLS = ["index", "sessions_poll", "search", "thread", "thread_poll", "image", "load_image"]
SESSION_URLS = ["thread", "thread_poll", "image", "load_image"]


# --- access -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ALL_URLS)
def test_signed_out_visitors_are_sent_to_sign_in(client, synced, name):
    method, url = urls(session_of(PEERS[1]), image_message())[name]
    response = getattr(client, method)(url)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login") + "?next=")


@pytest.mark.parametrize("name", SESSION_URLS)
@pytest.mark.parametrize("htmx", [False, True])
def test_a_session_of_another_account_is_404_everywhere(client, synced, outsider, name, htmx):
    client.force_login(outsider)
    method, url = urls(session_of(PEERS[1]), image_message())[name]
    headers = {"HTTP_HX_REQUEST": "true"} if htmx else {}
    assert getattr(client, method)(url, **headers).status_code == 404


def test_lists_polls_and_search_show_an_outsider_nothing_of_the_account(client, synced, outsider):
    client.force_login(outsider)
    index = client.get(reverse("inbox:index"))
    assert index.status_code == 200
    assert not index.context["sessions"]
    found = client.get(reverse("inbox:search"), {"q": "保温杯"})
    assert found.context["results"].empty
    assert client.get(reverse("inbox:sessions_poll"), {"since": "0"}).status_code == 204
    account = Account.objects.get(app_id=SANDBOX_APP_ID)
    assert client.get(reverse("inbox:index"), {"account": account.pk}).status_code == 404


def test_a_superuser_sees_every_account(client, synced):
    admin = User.objects.create_superuser("root", password="pw")
    client.force_login(admin)
    response = client.get(session_of(PEERS[1]).get_absolute_url())
    assert response.status_code == 200


@pytest.mark.parametrize("name", ["index", "sessions_poll", "search", "thread", "thread_poll"])
def test_a_member_gets_each_page(member_client, name):
    method, url = urls(session_of(PEERS[1]), image_message())[name]
    response = getattr(member_client, method)(url)
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("name", "marker"),
    [
        ("index", 'id="list-pane"'),
        ("search", 'id="list-body"'),
        ("thread", 'id="thread"'),
        ("image", 'id="image-'),
        ("load_image", 'id="image-'),
    ],
)
def test_htmx_requests_get_just_the_fragment(member_client, name, marker):
    method, url = urls(session_of(PEERS[1]), image_message())[name]
    response = getattr(member_client, method)(url, HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert response.status_code == 200
    assert marker in html
    assert "<html" not in html


def test_a_back_button_restore_gets_the_whole_page(member_client):
    url = session_of(PEERS[1]).get_absolute_url()
    response = member_client.get(
        url, HTTP_HX_REQUEST="true", HTTP_HX_HISTORY_RESTORE_REQUEST="true"
    )
    assert "<html" in response.content.decode()
    assert response.headers["Vary"].count("HX-Request") == 1


@pytest.mark.parametrize(
    ("name", "wrong"),
    [
        ("index", "post"),
        ("sessions_poll", "post"),
        ("search", "post"),
        ("thread", "post"),
        ("thread_poll", "delete"),
        ("image", "post"),
        ("load_image", "get"),
    ],
)
def test_wrong_method_is_405(member_client, name, wrong):
    _, url = urls(session_of(PEERS[1]), image_message())[name]
    assert getattr(member_client, wrong)(url).status_code == 405


@pytest.mark.parametrize(
    "query",
    [
        {"since": "yesterday"},
        {"since": "²"},
        {"since": "0", "top": "x.y"},
        {"since": "0", "top": "1.²"},
        {"since": "0", "view": "zzz"},
        {"since": "0", "account": "²"},
    ],
)
def test_polls_refuse_cursors_they_did_not_write(member_client, query):
    assert member_client.get(reverse("inbox:sessions_poll"), query).status_code == 400


@pytest.mark.parametrize(
    "query", [{"before": "nonsense"}, {"view": "nope"}, {"account": "999"}, {"before": "².1"}]
)
def test_the_list_refuses_bad_parameters_with_404(member_client, query):
    assert member_client.get(reverse("inbox:index"), query).status_code == 404


@pytest.mark.parametrize("name", ["before", "after", "around"])
def test_a_thread_refuses_an_anchor_that_is_not_a_number(member_client, name):
    url = session_of(PEERS[1]).get_absolute_url()
    assert member_client.get(url, {name: "²"}).status_code == 404


def test_a_message_of_another_session_is_no_anchor(member_client):
    other = Message.objects.exclude(session=session_of(PEERS[1])).first()
    url = session_of(PEERS[1]).get_absolute_url()
    assert member_client.get(url, {"around": other.pk}).status_code == 404


# --- hostile text -------------------------------------------------------------------------------


def add_and_sync(sandbox, account: Account, text: str, peer: Peer | None = None) -> Message:
    """A viewer writes (at the sandbox) and the letter is synced."""
    item = sandbox.add_letter(account.app_id, text, peer=peer or PEERS[1])
    sync_account(account)
    return Message.objects.get(account=account, new_msg_id=item["content"]["msg"]["NewMsgId"])


def test_a_script_letter_is_shown_as_text(member_client, synced, sandbox):
    message = add_and_sync(
        sandbox, synced, "<script>alert('x')</script>\n<img src=x onerror=alert(1)>"
    )
    html = member_client.get(message.session.get_absolute_url()).content.decode()
    assert "<script>alert" not in html
    assert "<img src=x" not in html
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;<br>&lt;img src=x" in html
    # The session list's preview is escaped too.
    index = member_client.get(reverse("inbox:index")).content.decode()
    assert "<script>alert" not in index


def test_only_http_links_become_links(member_client, synced, sandbox):
    message = add_and_sync(
        sandbox,
        synced,
        'javascript:alert(1) <a href="javascript:alert(2)">x</a> '
        'see https://ok.example/a?b=1&c=2, and http://x.example/"onmouseover=alert(3)',
    )
    html = member_client.get(message.session.get_absolute_url()).content.decode()
    assert 'href="javascript:' not in html
    assert "<a href=&quot;" not in html.split(f'id="message-{message.pk}"')[0]
    assert '<a href="https://ok.example/a?b=1&amp;c=2" target="_blank"' in html
    assert '<a href="http://x.example/" target="_blank"' in html
    assert "onmouseover=alert(3)" in html  # still there, as text


def test_search_highlights_safely(member_client, synced, sandbox):
    add_and_sync(sandbox, synced, "订单<b>加急</b>请尽快处理")
    html = member_client.get(reverse("inbox:search"), {"q": "<b>加急"}).content.decode()
    assert "<mark>&lt;b&gt;加急</mark>&lt;/b&gt;请尽快处理" in html
    assert 'value="&lt;b&gt;加急"' in html


# --- the thread ---------------------------------------------------------------------------------


def test_messages_render_by_type(member_client, synced):
    admin = User.objects.create_superuser("root", password="pw")
    html_by_peer = {
        peer.nickname: member_client.get(session_of(peer).get_absolute_url()).content.decode()
        for peer in PEERS[1:]
    }
    assert "160×120" in html_by_peer["王小明"]  # the image card's dimensions
    assert "Load image" in html_by_peer["王小明"]
    assert 'data-aspect-ratio="160 / 120"' in html_by_peer["王小明"]
    assert "shared a Channels video" in html_by_peer["Lily 🌸"]
    assert "Spring collection 春季新品" in html_by_peer["Lily 🌸"]
    assert "[Voice]" in html_by_peer["陈阿姨的花店"]
    assert "[Sticker]" in html_by_peer["陈阿姨的花店"]
    assert "[message type 9999]" in html_by_peer["Tom Zhang"]
    assert 'class="system-line"' in html_by_peer["Tom Zhang"]
    assert "618 活动说明" in html_by_peer["Tom Zhang"]

    broken = Message.objects.filter(msg_type=Message.Type.TEXT).first()
    Message.objects.filter(pk=broken.pk).update(parse_error="CreateTime missing")
    url = broken.session.get_absolute_url()
    staff_view = member_client.get(url).content.decode()
    assert "could not be read" in staff_view
    assert "Show the raw payload" not in staff_view
    member_client.force_login(admin)
    admin_view = member_client.get(url).content.decode()
    assert "Show the raw payload" in admin_view
    assert "CreateTime missing" in admin_view


def test_notes_and_activity_lines_have_their_own_look(member_client, synced, member):
    session = session_of(PEERS[1])
    services.add_note(session, member, "客户是老顾客，可以优先处理", uuid.uuid4())
    services.set_status(session, Session.Status.RESOLVED, member)
    html = member_client.get(session.get_absolute_url()).content.decode()
    assert 'class="note"' in html
    assert "客户是老顾客" in html
    assert 'class="activity-line"' in html
    assert "李四 resolved this conversation" in html


def test_opening_a_thread_in_the_inbox_reads_it_for_everyone(member_client, synced):
    session = session_of(PEERS[4])
    assert session.unread_count > 0
    before = session.updated_at
    member_client.get(session.get_absolute_url(), HTTP_HX_REQUEST="true")
    session.refresh_from_db()
    assert session.unread_count == 0
    assert session.updated_at > before


def test_a_plain_get_of_a_thread_reads_nothing_until_the_pages_own_poll(member_client, synced):
    # A link from another site is a plain GET (it cannot send HX-Request): no state changes.
    session = session_of(PEERS[4])
    unread = session.unread_count
    assert unread > 0
    page = member_client.get(session.get_absolute_url())
    assert page.status_code == 200
    session.refresh_from_db()
    assert session.unread_count == unread
    since = page.context["thread_since"]
    poll_url = reverse("inbox:thread_poll", args=[session.pk])
    member_client.get(poll_url, {"since": since, "seen": "1"})
    session.refresh_from_db()
    assert session.unread_count == unread
    # The page's first poll from a visible tab (inbox.js, an htmx request) reads it.
    member_client.get(poll_url, {"since": since, "seen": "1"}, HTTP_HX_REQUEST="true")
    session.refresh_from_db()
    assert session.unread_count == 0


@pytest.mark.parametrize(
    ("name", "params", "status"),
    [
        ("inbox:sessions_poll", {"since": "0", "account": "9" * 25}, 400),
        ("inbox:sessions_poll", {"since": "0", "account": str(2**63)}, 400),
        ("inbox:sessions_poll", {"since": "0", "top": f"1.{'9' * 25}"}, 400),
        ("inbox:index", {"before": f"1.{'9' * 25}"}, 404),
        ("inbox:thread", {"before": "9" * 25}, 404),
        ("inbox:thread", {"around": str(2**63)}, 404),
    ],
)
def test_ids_beyond_the_databases_range_are_refused_not_a_server_error(
    member_client, synced, name, params, status
):
    args = [session_of(PEERS[4]).pk] if name == "inbox:thread" else []
    for headers in ({}, {"HTTP_HX_REQUEST": "true"}):
        response = member_client.get(reverse(name, args=args), params, **headers)
        assert response.status_code == status


def test_a_long_thread_shows_the_newest_fifty_and_pages_back_by_keyset(
    member_client, synced, sandbox
):
    for n in range(60):
        sandbox.add_letter(SANDBOX_APP_ID, f"第 {n} 封", peer=PEERS[1])
    sync_account(synced)
    session = session_of(PEERS[1])
    page = member_client.get(session.get_absolute_url())
    shown = page.context["page"].messages
    assert len(shown) == 50
    assert shown[-1].content == "第 59 封"
    assert page.context["page"].has_older
    older = member_client.get(
        session.get_absolute_url(), {"before": shown[0].pk}, HTTP_HX_REQUEST="true"
    )
    # The fragment is one partial whose messages are built in Python (no included template
    # reports a context), so read the ids from the HTML.
    older_ids = [int(pk) for pk in re.findall(r'id="message-(\d+)"', older.content.decode())]
    assert older_ids == list(
        session.messages.order_by("created_at", "seq", "pk").values_list("pk", flat=True)[
            : session.messages.count() - 50
        ]
    )
    assert 'id="load-older"' not in older.content.decode()


def test_a_search_hit_opens_its_thread_around_the_message(member_client, synced, sandbox):
    first = add_and_sync(sandbox, synced, "很久以前的那句话", PEERS[1])
    for n in range(60):
        sandbox.add_letter(SANDBOX_APP_ID, f"后来的第 {n} 封", peer=PEERS[1])
    sync_account(synced)
    results = member_client.get(reverse("inbox:search"), {"q": "很久以前"}).content.decode()
    link = f"{first.session.get_absolute_url()}?around={first.pk}"
    assert link in results
    html = member_client.get(link).content.decode()
    assert f'id="message-{first.pk}"' in html
    assert f'data-focus="message-{first.pk}"' in html
    assert 'id="load-newer"' in html


def test_the_session_list_pages_by_keyset(member_client, synced, sandbox):
    for n in range(55):
        sandbox.add_letter(SANDBOX_APP_ID, "hi", peer=Peer(f"v2_peer{n}@finder", f"peer {n}"))
    sync_account(synced)
    first = member_client.get(reverse("inbox:index"))
    assert len(first.context["sessions"]) == 50
    cursor = first.context["next_cursor"]
    rest = member_client.get(reverse("inbox:index"), {"before": cursor}, HTTP_HX_REQUEST="true")
    # The fragment is rows only (rendered by a tag, so no template context to read): its ids.
    shown = {int(pk) for pk in re.findall(r'id="session-(\d+)"', rest.content.decode())}
    seen = {s.pk for s in first.context["sessions"]} | shown
    assert len(seen) == Session.objects.count()
    assert 'id="sessions-more"' not in rest.content.decode()


def test_the_unread_view_lists_only_unread_sessions(member_client, synced):
    session_of(PEERS[1])
    Session.objects.filter(pk=session_of(PEERS[1]).pk).update(unread_count=0)
    response = member_client.get(reverse("inbox:index"), {"view": "unread"})
    shown = {s.pk for s in response.context["sessions"]}
    assert session_of(PEERS[1]).pk not in shown
    assert shown == set(Session.objects.filter(unread_count__gt=0).values_list("pk", flat=True))


# --- live ---------------------------------------------------------------------------------------


def poll_thread(client, session, since, **extra):
    return client.get(
        reverse("inbox:thread_poll", args=[session.pk]),
        {"since": since, "tail": "1", **extra},
        HTTP_HX_REQUEST="true",
    )


def test_thread_poll_answers_204_when_nothing_changed(
    member_client, synced, django_assert_max_num_queries
):
    session = session_of(PEERS[1])
    member_client.get(session.get_absolute_url())
    # Everything happened a while ago, longer than the poll's look-back window.
    an_hour_ago = timezone.now() - timedelta(hours=1)
    Message.objects.update(updated_at=an_hour_ago)
    Session.objects.update(updated_at=an_hour_ago)
    first = poll_thread(member_client, session, "0")
    assert first.status_code == 200
    since = first.context["thread_since"]
    assert since == to_micros(an_hour_ago)
    # Two of these are the sign-in session and its user; the poll itself runs one.
    with django_assert_max_num_queries(3):
        response = poll_thread(member_client, session, since)
    assert response.status_code == 204


def test_a_new_letter_is_appended_by_the_thread_poll(member_client, synced, sandbox):
    session = session_of(PEERS[1])
    member_client.get(session.get_absolute_url())
    since = to_micros(session.messages.latest("updated_at").updated_at)
    message = add_and_sync(sandbox, synced, "刚刚到的新消息", PEERS[1])
    response = poll_thread(member_client, session, since, seen="1")
    html = response.content.decode()
    assert f'hx-swap-oob="beforeend:#messages-{session.pk}" data-upsert="append"' in html
    assert f'id="message-{message.pk}"' in html
    assert "刚刚到的新消息" in html
    assert 'id="thread-poller"' in html
    # A visible tab read it.
    session.refresh_from_db()
    assert session.unread_count == 0


def test_the_session_poll_moves_sessions_with_news_to_the_top(member_client, synced, sandbox):
    index = member_client.get(reverse("inbox:index"))
    since, top = index.context["poll_since"], index.context["poll_top"]
    message = add_and_sync(sandbox, synced, "再问一下", PEERS[3])
    response = member_client.get(
        reverse("inbox:sessions_poll"), {"since": since, "top": top}, HTTP_HX_REQUEST="true"
    )
    html = response.content.decode()
    assert 'hx-swap-oob="afterbegin:#session-list" data-upsert="move"' in html
    assert f'id="session-{message.session_id}"' in html
    assert "再问一下" in html
    assert 'id="nav" class="sidebar"' in html  # counts follow
    assert 'id="unread-total"' in html


def test_images_load_through_the_task_and_the_picture_is_kept(
    member_client, synced, sandbox, django_capture_on_commit_callbacks
):
    image = image_message()
    url = reverse("inbox:load_image", args=[image.pk])
    with django_capture_on_commit_callbacks(execute=True):
        member_client.post(url, HTTP_HX_REQUEST="true")
    # The card polls until the task has stored the picture; it shows our copy, not the URL.
    card = reverse("inbox:image", args=[image.pk])
    html = member_client.get(card, HTTP_HX_REQUEST="true").content.decode()
    image.refresh_from_db()
    assert image.image_url.startswith(sandbox.base_url + "/_sandbox/files/")
    assert image.image_url_expires_at is not None
    assert f"/messages/{image.pk}/picture/full/?v=" in html
    assert image.image_url not in html
    with django_capture_on_commit_callbacks(execute=True):
        member_client.post(url, HTTP_HX_REQUEST="true")
    assert len(sandbox.calls_to("/message/downloadImage")) == 1


def test_an_image_the_upstream_refuses_shows_why_and_offers_a_retry(
    member_client, synced, sandbox, django_capture_on_commit_callbacks
):
    sandbox.inject("ret_500", path="/message/downloadImage", times=3)
    image = image_message()
    with django_capture_on_commit_callbacks(execute=True):
        member_client.post(reverse("inbox:load_image", args=[image.pk]), HTTP_HX_REQUEST="true")
    card = reverse("inbox:image", args=[image.pk])
    html = member_client.get(card, HTTP_HX_REQUEST="true").content.decode()
    assert "could not be loaded" in html
    assert "Try again" in html


def test_load_image_without_javascript_returns_to_the_thread(member_client, synced):
    image = image_message()
    response = member_client.post(reverse("inbox:load_image", args=[image.pk]))
    assert response.status_code == 302
    assert response["Location"].endswith(f"?around={image.pk}")


# --- language -------------------------------------------------------------------------------------


def test_the_language_follows_the_browser_and_the_switcher(member_client):
    chinese = member_client.get(reverse("inbox:index"), HTTP_ACCEPT_LANGUAGE="zh-CN,zh;q=0.9")
    assert "全部会话" in chinese.content.decode()
    member_client.post(reverse("set_language"), {"language": "en", "next": "/"})
    english = member_client.get(reverse("inbox:index"), HTTP_ACCEPT_LANGUAGE="zh-CN,zh;q=0.9")
    assert "All conversations" in english.content.decode()


def test_the_sign_in_page_is_the_sites_own(client):
    html = client.get(reverse("login"), HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    assert "登录" in html
    assert "inbox.css" in html
