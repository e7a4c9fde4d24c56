"""A hostile letter cannot stall the inbox: every text path that renders a thread, a poll or a
search result runs in linear time and escapes what it shows.

Each letter here is about a megabyte, comes in through the sandbox upstream and a real sync, and
is rendered by the real views. On the code before inbox/text.py, the recall and system-notice
cases took minutes to hours (a quadratic, for whitespace cubic, regular expression), and a URL
ending in many brackets was quadratic too; now each thread renders in milliseconds. The bound
below is generous because the test machine is slow and shared."""

from __future__ import annotations

import time
import uuid

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from accounts.sandbox import PEERS
from inbox import services
from inbox.models import Message, Session
from inbox.sync import sync_account
from inbox.text import highlight, linkify
from tests.conftest import SANDBOX_APP_ID

MEGABYTE = 1_000_000
SECONDS = 2.0

HOSTILE_TEXTS = {
    "angle brackets": "<" * MEGABYTE,
    "a script tag repeated": "<script>alert(1)</script>" * (MEGABYTE // 25),
    "one endless URL": "http://" + "a" * MEGABYTE,
    "URL starts without end": "http://" * (MEGABYTE // 7),
    "a URL closed by a million brackets": "https://x.test/"
    + "(" * (MEGABYTE // 2)
    + ")" * (MEGABYTE // 2)
    + ".",
    "URL then sentence punctuation": "https://x.test/a" + ".,;:!?" * (MEGABYTE // 6),
    "double quotes": '"' * MEGABYTE,
    "ampersands": "&" * MEGABYTE,
    "line breaks": "\r\n" * (MEGABYTE // 2),
    "nested quotes": "「“‘" * (MEGABYTE // 6) + "’”」" * (MEGABYTE // 6),
    "spaces then a link": " " * MEGABYTE + "http://a.test",
}
HOSTILE_NOTICES = {
    "replacemsg then whitespace": "<replacemsg>" + " " * MEGABYTE + "x",
    "replacemsg repeated": "<replacemsg>" * (MEGABYTE // 12),
    "replacemsg and CDATA repeated": "<replacemsg><![CDATA[" * (MEGABYTE // 21),
    "unclosed CDATA then whitespace": "<replacemsg><![CDATA[" + "\n" * MEGABYTE + "]]",
    "angle brackets": "<" * MEGABYTE,
    "a closed replacemsg of a megabyte": "<replacemsg><![CDATA[<b>"
    + "撤" * MEGABYTE
    + "]]></replacemsg>",
}


@pytest.fixture
def superuser_client(client, synced):
    """A superuser sees the most: the raw payload of letters that could not be read."""
    user = get_user_model().objects.create_superuser("root", password="pw")
    client.force_login(user)
    return client


def deliver(sandbox, account, content: str, msg_type: int) -> Session:
    """The letter comes in as a viewer's would: through the upstream and a real sync pass."""
    sandbox.add_letter(SANDBOX_APP_ID, content, msg_type=msg_type, peer=PEERS[2])
    sync_account(account)
    return Session.objects.get(account=account, peer_username=PEERS[2].username)


def open_thread(client, session: Session) -> tuple[str, float]:
    started = time.perf_counter()
    response = client.get(session.get_absolute_url(), HTTP_HX_REQUEST="true")
    elapsed = time.perf_counter() - started
    assert response.status_code == 200
    return response.content.decode(), elapsed


def last_message(session: Session) -> Message:
    return session.messages.order_by("-created_at", "-pk").first()


@pytest.mark.parametrize("content", HOSTILE_TEXTS.values(), ids=HOSTILE_TEXTS.keys())
def test_a_megabyte_of_hostile_text_renders_quickly_and_escaped(
    superuser_client, synced, sandbox, content
):
    session = deliver(sandbox, synced, content, Message.Type.TEXT)
    html, elapsed = open_thread(superuser_client, session)
    assert elapsed < SECONDS
    assert "<script>alert" not in html
    assert "<<" not in html


@pytest.mark.parametrize("msg_type", [Message.Type.SYSTEM, Message.Type.RECALL])
@pytest.mark.parametrize("content", HOSTILE_NOTICES.values(), ids=HOSTILE_NOTICES.keys())
def test_a_megabyte_system_notice_or_recall_renders_quickly_and_escaped(
    superuser_client, synced, sandbox, content, msg_type
):
    session = deliver(sandbox, synced, content, msg_type)
    html, elapsed = open_thread(superuser_client, session)
    assert elapsed < SECONDS
    assert "<<" not in html
    assert "<replacemsg>" not in html and "<b>" not in html
    assert f'id="message-{last_message(session).pk}" class="system-line"' in html


@pytest.mark.parametrize(
    ("msg_type", "content"),
    [
        (Message.Type.IMAGE, '<msg><img cdnthumburl="' + '"<' * (MEGABYTE // 2) + "/></msg>"),
        (Message.Type.IMAGE, "<msg>" + "<img>" * (MEGABYTE // 5)),
        (Message.Type.APP, "<msg><appmsg><title>" + "<" * MEGABYTE + "</title></appmsg></msg>"),
        (Message.Type.APP, "<msg>" + "<appmsg>" * (MEGABYTE // 8)),
        (9999, "<script>" * (MEGABYTE // 8)),
    ],
    ids=["image attribute", "image nesting", "app title", "app nesting", "unknown type"],
)
def test_megabyte_xml_letters_that_cannot_be_read_render_quickly_with_their_raw_payload_escaped(
    superuser_client, synced, sandbox, msg_type, content
):
    session = deliver(sandbox, synced, content, msg_type)
    message = last_message(session)
    html, elapsed = open_thread(superuser_client, session)
    assert elapsed < SECONDS
    assert "<<" not in html and "<script>" not in html
    if message.parse_error:
        # The superuser's raw payload holds the whole megabyte, escaped.
        assert "Show the raw payload" in html
        assert html.count("&lt;") >= MEGABYTE // 8


def test_a_note_at_its_longest_with_hostile_links_renders_quickly_and_escaped(
    superuser_client, synced, sandbox
):
    session = deliver(sandbox, synced, "你好", Message.Type.TEXT)
    author = get_user_model().objects.get(username="root")
    length = services.MAX_NOTE_LENGTH
    services.add_note(session, author, "http://x/" + "(" * (length // 2 - 9) + ")", uuid.uuid4())
    services.add_note(session, author, "<img onerror=x>" * (length // 15), uuid.uuid4())
    html, elapsed = open_thread(superuser_client, session)
    assert elapsed < SECONDS
    assert "<img onerror" not in html


def test_the_thread_poll_renders_a_hostile_notice_quickly(superuser_client, synced, sandbox):
    session = deliver(
        sandbox, synced, "<replacemsg>" + "\t" * MEGABYTE + "撤回", Message.Type.RECALL
    )
    started = time.perf_counter()
    response = superuser_client.get(reverse("inbox:thread_poll", args=[session.pk]), {"since": "0"})
    assert time.perf_counter() - started < SECONDS
    assert response.status_code == 200
    assert "A message was recalled." in response.content.decode()


def test_a_search_hit_deep_in_a_megabyte_letter_is_highlighted_quickly(
    superuser_client, synced, sandbox
):
    deliver(sandbox, synced, "<" * MEGABYTE + "发货İstanbul" + "a" * MEGABYTE, Message.Type.TEXT)
    started = time.perf_counter()
    response = superuser_client.get(reverse("inbox:search"), {"q": "发货İstanbul"})
    assert time.perf_counter() - started < SECONDS
    html = response.content.decode()
    assert "&lt;&lt;<mark>发货İstanbul</mark>aaa" in html
    assert "<<" not in html


# --- the text functions on their own, with inputs that defeat backtracking --------------------


@pytest.mark.parametrize(
    "text",
    [
        "https://x.test/" + "(" * MEGABYTE + ")" * MEGABYTE + ")",
        "http://" * MEGABYTE,
        "Http://" + "é" * MEGABYTE,
        "<" * MEGABYTE,
    ],
    ids=["brackets", "schemes", "non-ASCII URL", "angle brackets"],
)
def test_linkify_is_linear(text):
    started = time.perf_counter()
    html = linkify(text)
    assert time.perf_counter() - started < SECONDS
    assert "<<" not in html


@pytest.mark.parametrize(
    ("text", "query"),
    [
        ("a" * MEGABYTE, "a" * 99 + "b"),
        ("İ" * MEGABYTE, "i̇" * 50),
        ("ß" * MEGABYTE + "x", "ss" * 50 + "x"),
    ],
    ids=["near misses", "expanding capital I", "expanding sharp s"],
)
def test_highlight_is_linear(text, query):
    started = time.perf_counter()
    highlight(text, query)
    assert time.perf_counter() - started < SECONDS


# --- search highlighting when case changes a string's length (defect 10) -----------------------


def test_search_marks_the_match_even_after_letters_whose_lower_case_is_longer(
    superuser_client, synced, sandbox
):
    # "İ".lower() is two code points: positions found in the lower-cased text used to land
    # beside the match in the original.
    deliver(sandbox, synced, "İİİ İstanbul 的订单已经发货了", Message.Type.TEXT)
    for query, marked in [("发货", "发货"), ("İstanbul", "İstanbul"), ("订单", "订单")]:
        html = superuser_client.get(reverse("inbox:search"), {"q": query}).content.decode()
        assert f"<mark>{marked}</mark>" in html


@pytest.mark.parametrize(
    ("text", "query", "snippet"),
    [
        ("İstanbul'da kargo", "İSTANBUL", "<mark>İstanbul</mark>&#x27;da kargo"),
        ("xİİ 发货", "发货", "xİİ <mark>发货</mark>"),
        ("Fußball-Straße 5", "STRASSE", "Fußball-<mark>Straße</mark> 5"),
        ("Fußball-Straße 5", "ß", "Fu<mark>ß</mark>ball-Straße 5"),
        ("请问什么时候发货？", "发货", "请问什么时候<mark>发货</mark>？"),
        ("<b>İ</b>发货", "发货", "&lt;b&gt;İ&lt;/b&gt;<mark>发货</mark>"),
    ],
)
def test_highlight_marks_exactly_the_matched_characters_of_the_original(text, query, snippet):
    assert highlight(text, query) == snippet
