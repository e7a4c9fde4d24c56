"""Replying and the team's workflow through the inbox's pages: composer, notes, image replies,
retry, status and snooze, assignment, canned replies and the sidebar's views. Sends go to the
sandbox over HTTP; queued tasks run eagerly when a test executes its on-commit callbacks."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import pytest
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from django.utils import timezone, translation

from accounts.models import Account
from accounts.sandbox import PEERS
from accounts.sandbox_media import png_bytes
from inbox import services
from inbox.browse import to_micros
from inbox.models import CannedReply, Message, Session
from inbox.sync import sync_account
from tests.conftest import SANDBOX_APP_ID

SEND_PATH = "/finder/postPrivateLetter"
PNG = png_bytes(8, 6, "reply")
HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def colleague(synced: Account) -> User:
    user = User.objects.create_user("wang.wu", password="pw", first_name="王五")
    synced.members.add(user)
    return user


@pytest.fixture
def session(synced) -> Session:
    """王小明's conversation: open, unassigned, with letters both ways."""
    return Session.objects.get(peer_username=PEERS[1].username)


@pytest.fixture
def image_replies(settings, tmp_path):
    settings.PUBLIC_BASE_URL = "https://inbox.example.com"
    settings.MEDIA_ROOT = tmp_path


def failed_reply(session: Session, author: User, sandbox, fault: str = "token_expired") -> Message:
    """A reply the upstream refused (token_expired) or took without answering (drop)."""
    sandbox.inject(fault, path=SEND_PATH)
    reply = services.compose_reply(session, author, "稍等，我查一下。", uuid.uuid4())
    assert services.deliver_reply(reply.pk).delivery == Message.Delivery.FAILED
    reply.refresh_from_db()
    return reply


def compose_data(text: str = "好的，今天给您换。", **extra) -> dict:
    return {"kind": "reply", "text": text, "client_token": str(uuid.uuid4()), **extra}


def write_requests(session: Session, member: User, sandbox) -> dict[str, tuple[str, dict]]:
    """Every write URL with a valid body: name → (url, data)."""
    reply = failed_reply(session, member, sandbox)
    return {
        "compose": (reverse("inbox:compose", args=[session.pk]), compose_data()),
        "note": (
            reverse("inbox:compose", args=[session.pk]),
            compose_data("老顾客", kind="note"),
        ),
        "send_image": (
            reverse("inbox:send_image", args=[session.pk]),
            {"client_token": str(uuid.uuid4())},
        ),
        "set_status": (reverse("inbox:set_status", args=[session.pk]), {"status": "resolved"}),
        "snooze": (
            reverse("inbox:set_status", args=[session.pk]),
            {"status": "snoozed", "snooze": "hour"},
        ),
        "assign": (reverse("inbox:assign", args=[session.pk]), {"assignee": str(member.pk)}),
        "retry": (reverse("inbox:retry", args=[reply.pk]), {}),
    }


WRITES = ["compose", "note", "send_image", "set_status", "snooze", "assign", "retry"]


def post(client, url: str, data: dict, *, htmx: bool = False):
    if "client_token" in data and url.endswith("/image/"):
        data = {**data, "image": SimpleUploadedFile("photo.png", PNG, "image/png")}
    return client.post(url, data, **(HTMX if htmx else {}))


def state(session: Session) -> tuple:
    """What a write could change: every message, and the session's workflow fields."""
    session.refresh_from_db()
    messages = list(
        Message.objects.order_by("pk").values_list("pk", "delivery", "kind", "updated_at")
    )
    return messages, session.status, session.snoozed_until, session.assignee_id


# --- access --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", WRITES)
def test_signed_out_writes_go_to_sign_in_and_change_nothing(
    client, session, member, sandbox, image_replies, name
):
    url, data = write_requests(session, member, sandbox)[name]
    before = state(session)
    response = post(client, url, data)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login") + "?next=")
    assert state(session) == before


@pytest.mark.parametrize("name", WRITES)
@pytest.mark.parametrize("htmx", [False, True])
def test_a_non_member_gets_404_on_every_write_and_changes_nothing(
    client,
    session,
    member,
    outsider,
    sandbox,
    image_replies,
    django_capture_on_commit_callbacks,
    name,
    htmx,
):
    url, data = write_requests(session, member, sandbox)[name]
    client.force_login(outsider)
    before = state(session)
    with django_capture_on_commit_callbacks() as callbacks:
        response = post(client, url, data, htmx=htmx)
    assert response.status_code == 404
    assert state(session) == before
    assert not callbacks


@pytest.mark.parametrize(
    "url", ["/sessions/abc/compose/", "/sessions/1.5/status/", "/messages/x/retry/"]
)
def test_ids_that_are_not_numbers_are_404(member_client, url):
    assert member_client.post(url, {"status": "open"}).status_code == 404


@pytest.mark.parametrize("name", WRITES)
def test_writes_refuse_get_with_405(member_client, session, member, sandbox, name):
    url, _ = write_requests(session, member, sandbox)[name]
    assert member_client.get(url).status_code == 405


@pytest.mark.parametrize("name", WRITES)
def test_a_member_writes_without_javascript_and_is_sent_back_to_the_thread(
    member_client, session, member, sandbox, image_replies, django_capture_on_commit_callbacks, name
):
    url, data = write_requests(session, member, sandbox)[name]
    with django_capture_on_commit_callbacks(execute=True):
        response = post(member_client, url, data)
    assert response.status_code == 302
    assert response["Location"].startswith(session.get_absolute_url())


@pytest.mark.parametrize(
    ("name", "markers"),
    [
        ("compose", ['id="thread-footer"', "delivery-sending", 'data-upsert="own"']),
        ("note", ['id="thread-footer"', 'class="note"', "老顾客"]),
        ("send_image", ['id="attach-', 'class="reply-image"', "delivery-sending"]),
        ("set_status", ['id="thread-header-', "status-resolved", 'class="activity-line"']),
        ("snooze", ['id="thread-header-', "status-snoozed", 'class="activity-line"']),
        ("assign", ['id="thread-header-', "Assigned to 李四", 'class="activity-line"']),
        ("retry", ['id="message-', "delivery-sending"]),
    ],
)
def test_htmx_writes_answer_with_just_their_fragments(
    member_client, session, member, sandbox, image_replies, name, markers
):
    url, data = write_requests(session, member, sandbox)[name]
    response = post(member_client, url, data, htmx=True)
    html = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in html
    for marker in markers:
        assert marker in html, marker


def test_writes_need_the_csrf_token_that_htmx_sends_in_a_header(session, member):
    client = Client(enforce_csrf_checks=True)
    client.force_login(member)
    page = client.get(session.get_absolute_url())
    token = page.cookies["csrftoken"].value
    url = reverse("inbox:set_status", args=[session.pk])
    assert client.post(url, {"status": "pending"}, **HTMX).status_code == 403
    session.refresh_from_db()
    assert session.status == Session.Status.OPEN
    answer = client.post(url, {"status": "pending"}, HTTP_X_CSRFTOKEN=token, **HTMX)
    assert answer.status_code == 200
    session.refresh_from_db()
    assert session.status == Session.Status.PENDING
    # The page hands htmx the token in <body hx-headers>.
    assert 'hx-headers=\'{"x-csrftoken": "' in page.content.decode()


def test_a_superuser_who_is_no_member_may_reply_and_take_the_session(client, session):
    admin = User.objects.create_superuser("root", password="pw")
    client.force_login(admin)
    reply = client.post(reverse("inbox:compose", args=[session.pk]), compose_data(), **HTMX)
    assert reply.status_code == 200
    taken = client.post(reverse("inbox:assign", args=[session.pk]), {"assignee": admin.pk}, **HTMX)
    assert taken.status_code == 200
    session.refresh_from_db()
    assert session.assignee == admin


# --- replying ------------------------------------------------------------------------------------


def test_the_composer_carries_a_fresh_client_token_each_time(member_client, session):
    tokens = set()
    for _ in range(2):
        html = member_client.get(session.get_absolute_url()).content.decode()
        start = html.index('name="client_token" value="') + len('name="client_token" value="')
        tokens.add(uuid.UUID(html[start : start + 36]))
    assert len(tokens) == 2
    assert f'action="{reverse("inbox:compose", args=[session.pk])}"' in html
    assert 'method="post"' in html


def test_a_reply_is_sending_then_sent_at_the_sandbox_and_stays_one_row_after_sync(
    member_client, session, sandbox, synced, django_capture_on_commit_callbacks
):
    url = reverse("inbox:compose", args=[session.pk])
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = member_client.post(url, compose_data("好的，今天给您换。"), **HTMX)
        html = response.content.decode()
        # Answered before the send ran: the bubble is greyed, with who wrote it and when.
        reply = Message.objects.get(session=session, content="好的，今天给您换。")
        assert reply.delivery == Message.Delivery.SENDING
    assert len(callbacks) == 1
    assert f'id="message-{reply.pk}"' in html
    assert "delivery-sending" in html and "Sending…" in html
    assert '<span class="message-author">李四</span>' in html
    assert "just now" in html
    # The fresh composer is empty and has a new token.
    assert "autofocus></textarea>" in html

    reply.refresh_from_db()
    assert reply.delivery == Message.Delivery.SENT and reply.new_msg_id
    [call] = sandbox.calls_to(SEND_PATH)
    assert call["body"]["content"] == "好的，今天给您换。"

    # The thread's poll swaps the bubble to sent.
    since = to_micros(timezone.now() - timedelta(minutes=1))
    poll = member_client.get(
        reverse("inbox:thread_poll", args=[session.pk]), {"since": since, "tail": "1"}, **HTMX
    ).content.decode()
    assert f'id="message-{reply.pk}"' in poll and "delivery-sent" in poll

    before = Message.objects.count()
    result = sync_account(synced)
    assert result.new_messages == 0
    assert Message.objects.count() == before
    assert Message.objects.filter(session=session, content="好的，今天给您换。").count() == 1
    reply.refresh_from_db()
    assert reply.raw is not None and reply.delivery == Message.Delivery.SENT
    # Sends show as the bubble's author and time, not as a separate activity line.
    assert not session.messages.filter(kind=Message.Kind.ACTIVITY).exists()


def test_a_double_post_of_one_form_makes_one_reply_and_one_upstream_call(
    member_client, session, sandbox, django_capture_on_commit_callbacks
):
    url = reverse("inbox:compose", args=[session.pk])
    data = compose_data("只发一次")
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        first = member_client.post(url, data, **HTMX)
        second = member_client.post(url, data)  # the browser's "resend form" without htmx
    assert first.status_code == 200 and second.status_code == 302
    assert len(callbacks) == 1
    assert Message.objects.filter(content="只发一次").count() == 1
    assert len(sandbox.calls_to(SEND_PATH)) == 1


def test_notes_are_kept_and_never_reach_the_upstream(
    member_client, session, sandbox, synced, django_capture_on_commit_callbacks
):
    url = reverse("inbox:compose", args=[session.pk])
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = member_client.post(url, compose_data("客户是老顾客", kind="note"), **HTMX)
    html = response.content.decode()
    note = Message.objects.get(content="客户是老顾客")
    assert note.kind == Message.Kind.NOTE and note.delivery == Message.Delivery.RECEIVED
    assert not callbacks
    # The fresh composer stays in note mode.
    assert 'class="composer is-note"' in html
    assert 'value="note" checked' in html
    sync_account(synced)
    assert sandbox.calls_to(SEND_PATH) == []
    assert all("老顾客" not in str(call["body"]) for call in sandbox.calls)


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ({"text": ""}, "Write something before sending."),
        ({"text": "  \n  "}, "Write something before sending."),
        (
            {"text": "长" * (services.MAX_REPLY_LENGTH + 1)},
            "A reply can be at most 1000 characters; this one has 1001.",
        ),
        ({"kind": "note", "text": ""}, "Write something before saving the note."),
        ({"kind": "note", "text": "x" * 10_001}, "A note can be at most 10000 characters."),
        ({"client_token": ""}, "This form is out of date."),
        ({"client_token": "not-a-uuid"}, "This form is out of date."),
        ({"kind": "broadcast"}, "Select a valid choice."),
    ],
)
@pytest.mark.parametrize("htmx", [True, False])
def test_a_refused_composer_post_says_why_keeps_the_text_and_queues_nothing(
    member_client, session, sandbox, django_capture_on_commit_callbacks, data, error, htmx
):
    before = state(session)
    body = {**compose_data("x"), **data}
    with django_capture_on_commit_callbacks() as callbacks:
        response = post(member_client, reverse("inbox:compose", args=[session.pk]), body, htmx=htmx)
    html = response.content.decode()
    assert response.status_code == 400
    assert error in html
    assert 'aria-invalid="true"' in html
    if len(body["text"]) < 50:
        assert f">{body['text']}</textarea>" in html
    assert ("<html" in html) is not htmx
    assert not callbacks
    assert state(session) == before
    assert sandbox.calls_to(SEND_PATH) == []


def test_the_reply_limit_is_said_in_chinese_too(member_client, session):
    response = member_client.post(
        reverse("inbox:compose", args=[session.pk]),
        compose_data("长" * 1001),
        HTTP_ACCEPT_LANGUAGE="zh-CN",
        **HTMX,
    )
    assert "回复最多 1000 个字符，当前有 1001 个。" in response.content.decode()


# --- retry ---------------------------------------------------------------------------------------


def test_a_failed_reply_shows_why_and_retry_sends_it_once(
    member_client, session, member, sandbox, django_capture_on_commit_callbacks
):
    reply = failed_reply(session, member, sandbox)
    html = member_client.get(session.get_absolute_url()).content.decode()
    assert "不可用或已过期" in html  # the upstream's reason
    retry_url = reverse("inbox:retry", args=[reply.pk])
    assert f'hx-post="{retry_url}"' in html
    assert "hx-confirm" not in html.split(f'id="message-{reply.pk}"')[1].split("</article>")[0]

    with django_capture_on_commit_callbacks(execute=True):
        response = member_client.post(retry_url, **HTMX)
    assert response.status_code == 200
    assert "delivery-sending" in response.content.decode()
    reply.refresh_from_db()
    assert reply.delivery == Message.Delivery.SENT
    assert len(sandbox.calls_to(SEND_PATH)) == 2  # the refused one, and the retry

    # A second click (a stale button) shows the reply as it is and sends nothing.
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        again = member_client.post(retry_url, **HTMX)
    assert again.status_code == 200 and "delivery-sent" in again.content.decode()
    assert not callbacks
    assert len(sandbox.calls_to(SEND_PATH)) == 2


@pytest.mark.parametrize("worker_language", ["en", "zh-hans"])
def test_retrying_a_reply_that_may_have_been_delivered_asks_first(
    member_client, session, member, sandbox, worker_language
):
    with translation.override(worker_language):
        reply = failed_reply(session, member, sandbox, fault="drop")
    html = member_client.get(session.get_absolute_url()).content.decode()
    bubble = html.split(f'id="message-{reply.pk}"')[1].split("</article>")[0]
    assert 'hx-confirm="The upstream may have delivered this letter already.' in bubble
    assert "Send again" in bubble


def test_a_send_interrupted_by_a_dead_worker_also_asks_before_retrying(
    member_client, session, member
):
    reply = services.compose_reply(session, member, "在的", uuid.uuid4())
    Message.objects.filter(pk=reply.pk).update(
        send_started_at=timezone.now() - services.STUCK_SEND_AFTER - timedelta(seconds=1)
    )
    services.fail_stuck_sends()
    html = member_client.get(session.get_absolute_url()).content.decode()
    bubble = html.split(f'id="message-{reply.pk}"')[1].split("</article>")[0]
    assert "hx-confirm" in bubble


def test_only_replies_written_here_can_be_retried(member_client, session, member):
    letter = session.messages.filter(is_sender=False).first()
    note = services.add_note(session, member, "备注", uuid.uuid4())
    for message in (letter, note):
        url = reverse("inbox:retry", args=[message.pk])
        assert member_client.post(url, **HTMX).status_code == 400


# --- image replies -------------------------------------------------------------------------------


def test_without_a_public_base_url_the_attach_button_is_off_and_says_why(
    member_client, session, settings
):
    settings.PUBLIC_BASE_URL = ""
    html = member_client.get(session.get_absolute_url()).content.decode()
    assert "Image replies are off: PUBLIC_BASE_URL is not set." in html
    assert 'class="icon-button attach-button" disabled' in html
    assert 'name="image"' not in html
    response = member_client.post(
        reverse("inbox:send_image", args=[session.pk]),
        {"client_token": str(uuid.uuid4()), "image": SimpleUploadedFile("a.png", PNG)},
        **HTMX,
    )
    assert response.status_code == 400
    assert "PUBLIC_BASE_URL is not set" in response.content.decode()


def test_an_image_reply_is_sent_by_its_public_url(
    member_client, session, sandbox, image_replies, django_capture_on_commit_callbacks
):
    html = member_client.get(session.get_absolute_url()).content.decode()
    assert 'enctype="multipart/form-data"' in html and 'name="image"' in html
    with django_capture_on_commit_callbacks(execute=True):
        response = member_client.post(
            reverse("inbox:send_image", args=[session.pk]),
            {"client_token": str(uuid.uuid4()), "image": SimpleUploadedFile("x.png", PNG)},
            **HTMX,
        )
    assert response.status_code == 200
    reply = Message.objects.get(session=session, msg_type=Message.Type.IMAGE, author__isnull=False)
    assert f'src="{reply.attachment.url}"' in response.content.decode()
    reply.refresh_from_db()
    assert reply.delivery == Message.Delivery.SENT
    [call] = sandbox.calls_to("/finder/postPrivateLetterImg")
    assert call["body"]["imgUrl"] == "https://inbox.example.com" + reply.attachment.url


@pytest.mark.parametrize(
    ("upload", "error"),
    [
        (SimpleUploadedFile("cat.png", b"<?php echo 1; ?>", "image/png"), "Only PNG, JPEG"),
        (None, "Choose an image to send."),
    ],
)
def test_a_refused_image_says_why_and_queues_nothing(
    member_client, session, image_replies, django_capture_on_commit_callbacks, upload, error
):
    data = {"client_token": str(uuid.uuid4())}
    if upload:
        data["image"] = upload
    with django_capture_on_commit_callbacks() as callbacks:
        response = member_client.post(reverse("inbox:send_image", args=[session.pk]), data, **HTMX)
    html = response.content.decode()
    assert response.status_code == 400
    assert error in html
    assert f'id="composer-error-{session.pk}"' in html and 'hx-swap-oob="true"' in html
    assert not callbacks
    assert not Message.objects.filter(msg_type=Message.Type.IMAGE, author__isnull=False).exists()


# --- status and snooze ---------------------------------------------------------------------------


def post_status(client, session, **data):
    return client.post(reverse("inbox:set_status", args=[session.pk]), data, **HTMX)


def test_resolving_shows_in_the_header_the_row_and_an_activity_line(member_client, session):
    response = post_status(member_client, session, status="resolved")
    html = response.content.decode()
    session.refresh_from_db()
    assert session.status == Session.Status.RESOLVED
    assert f'id="thread-header-{session.pk}"' in html
    assert '<span class="status status-resolved">Resolved' in html
    assert "李四 resolved this conversation" in html
    assert 'data-upsert="append"' in html
    assert 'hx-swap-oob="beforeend:#live-sink"' in html and f'id="session-{session.pk}"' in html
    # The header now offers to reopen it.
    assert 'name="status" value="open"' in html and "Reopen" in html


def test_setting_the_status_it_already_has_changes_nothing(member_client, session):
    response = post_status(member_client, session, status="open")
    assert response.status_code == 200
    assert "activity-line" not in response.content.decode()
    assert not session.messages.filter(kind=Message.Kind.ACTIVITY).exists()


def local(moment: datetime) -> datetime:
    return timezone.localtime(moment, timezone.get_default_timezone())


@pytest.mark.parametrize("preset", ["hour", "tomorrow", "next_week"])
def test_snooze_presets_are_times_in_the_inbox_time_zone(member_client, session, preset):
    now = local(timezone.now())
    response = post_status(member_client, session, status="snoozed", snooze=preset)
    assert response.status_code == 200
    session.refresh_from_db()
    until = local(session.snoozed_until)
    assert session.status == Session.Status.SNOOZED
    if preset == "hour":
        assert timedelta(minutes=59) < until - now <= timedelta(hours=1, seconds=5)
    elif preset == "tomorrow":
        assert until.date() == (now + timedelta(days=1)).date()
        assert (until.hour, until.minute) == (9, 0)
    else:
        assert until.weekday() == 0 and (until.hour, until.minute) == (9, 0)
        assert timedelta(0) < until - now <= timedelta(days=7)
    assert "李四 snoozed this conversation" in response.content.decode()
    assert "until " in response.content.decode()


def test_snoozing_until_a_chosen_time_reads_it_in_the_inbox_time_zone(member_client, session):
    wanted = (local(timezone.now()) + timedelta(days=2)).replace(
        hour=14, minute=30, second=0, microsecond=0
    )
    response = post_status(
        member_client, session, status="snoozed", until=wanted.strftime("%Y-%m-%dT%H:%M")
    )
    assert response.status_code == 200
    session.refresh_from_db()
    assert session.snoozed_until == wanted


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ({"status": "closed"}, "Select a valid choice."),
        ({"status": ""}, "This field is required."),
        ({"status": "snoozed"}, "Choose until when to snooze it."),
        ({"status": "snoozed", "until": "2020-01-01T09:00"}, "Choose a time in the future."),
        ({"status": "snoozed", "until": "next tuesday"}, "Enter a valid date/time."),
        ({"status": "snoozed", "snooze": "forever"}, "Select a valid choice."),
    ],
)
@pytest.mark.parametrize("htmx", [True, False])
def test_a_bad_status_or_snooze_is_refused_with_nothing_changed(
    member_client, session, data, error, htmx
):
    before = state(session)
    response = member_client.post(
        reverse("inbox:set_status", args=[session.pk]), data, **(HTMX if htmx else {})
    )
    assert response.status_code == 400
    html = response.content.decode()
    assert error in html
    assert 'class="action-error" role="alert"' in html
    assert state(session) == before


def test_a_new_letter_reopens_a_resolved_session_and_the_thread_poll_shows_it(
    member_client, session, sandbox, synced
):
    post_status(member_client, session, status="resolved")
    since = to_micros(timezone.now() - timedelta(seconds=1))
    sandbox.add_letter(SANDBOX_APP_ID, "还有一个问题", peer=PEERS[1])
    sync_account(synced)
    poll = member_client.get(
        reverse("inbox:thread_poll", args=[session.pk]), {"since": since, "tail": "1"}, **HTMX
    ).content.decode()
    assert (
        f'<header id="thread-header-{session.pk}" class="thread-head" hx-swap-oob="true">' in poll
    )
    assert '<span class="status status-open">Open' in poll
    assert "还有一个问题" in poll


# --- assignment ----------------------------------------------------------------------------------


def post_assign(client, session, assignee, **headers):
    return client.post(
        reverse("inbox:assign", args=[session.pk]), {"assignee": assignee}, **HTMX, **headers
    )


def test_the_header_offers_the_members_and_assign_to_me(member_client, session, colleague):
    html = member_client.get(session.get_absolute_url()).content.decode()
    # Each member with their availability (inbox.live): nobody has a tab open here.
    option = f'<option value="{colleague.pk}" data-availability="offline">王五 · Offline</option>'
    assert option in html
    assert "李四 (me) · Offline" in html
    assert '<option value="" selected>Unassigned</option>' in html
    assert "Assign to me" in html


def test_assigning_unassigning_and_taking_leave_activity_lines(
    member_client, session, member, colleague
):
    html = post_assign(member_client, session, colleague.pk).content.decode()
    assert "Assigned to 王五" in html
    assert "李四 assigned this conversation: 王五" in html
    assert 'class="tag tag-assignee" title="Assignee">王五' in html  # the list row
    html = post_assign(member_client, session, "").content.decode()
    assert "李四 unassigned this conversation" in html
    html = post_assign(member_client, session, member.pk).content.decode()
    assert "Assigned to 李四" in html
    assert "Assign to me" not in html
    session.refresh_from_db()
    assert session.assignee == member
    assert list(
        session.messages.filter(kind=Message.Kind.ACTIVITY)
        .order_by("pk")
        .values_list("activity", flat=True)
    ) == ["assigned", "unassigned", "assigned"]


@pytest.mark.parametrize("assignee", ["999999", "abc", "1.5", "-1", "outsider"])
@pytest.mark.parametrize("htmx", [True, False])
def test_an_assignee_who_is_not_a_member_is_a_form_error(
    member_client, session, outsider, assignee, htmx
):
    if assignee == "outsider":
        assignee = str(outsider.pk)
    before = state(session)
    response = member_client.post(
        reverse("inbox:assign", args=[session.pk]),
        {"assignee": assignee},
        **(HTMX if htmx else {}),
    )
    assert response.status_code == 400
    assert "Choose a member of this account." in response.content.decode()
    assert state(session) == before


def test_an_inactive_member_cannot_be_assigned(member_client, session, colleague):
    colleague.is_active = False
    colleague.save(update_fields=["is_active"])
    assert post_assign(member_client, session, colleague.pk).status_code == 400


# --- the sidebar's views ----------------------------------------------------------------------


def test_mine_unassigned_and_status_views_with_counts(member_client, session, member, colleague):
    other = Session.objects.get(peer_username=PEERS[2].username)
    services.assign(session, member, member)
    services.assign(other, colleague, member)
    services.set_status(other, Session.Status.RESOLVED, member)
    total = Session.objects.count()

    page = member_client.get(reverse("inbox:index"))
    counts = {link["label"]: link["count"] for link in page.context["view_links"]}
    statuses = {link["label"]: link["count"] for link in page.context["status_links"]}
    assert counts == {
        "All conversations": total,
        "Unread": Session.objects.filter(unread_count__gt=0).count(),
        "Mine": 1,
        "Unassigned": total - 2,
    }
    assert statuses == {"Open": total - 1, "Pending": 0, "Resolved": 1, "Snoozed": 0}
    html = page.content.decode()
    assert 'id="nav-status"' in html

    def listed(view: str) -> set[int]:
        response = member_client.get(reverse("inbox:index"), {"view": view})
        return {s.pk for s in response.context["sessions"]}

    assert listed("mine") == {session.pk}
    assert listed("resolved") == {other.pk}
    assert other.pk not in listed("unassigned") and session.pk not in listed("unassigned")
    assert other.pk not in listed("open")
    # A resolved session still shows under All, tagged as such.
    assert other.pk in listed("all")
    row = html.split(f'id="session-{other.pk}"')[1].split("</a>")[0]
    assert '<span class="tag status status-resolved">Resolved</span>' in row
    assert '<span class="tag tag-assignee" title="Assignee">王五</span>' in row


# --- canned replies ------------------------------------------------------------------------------


def test_canned_replies_are_the_accounts_own_and_the_global_ones(
    member_client, session, synced, django_assert_max_num_queries
):
    other = Account.objects.create(name="Other shop", app_id="wx_other", token="t")
    CannedReply.objects.create(title="发货", text="今天下单明天发货", account=synced)
    CannedReply.objects.create(title="Greeting", text="您好！", account=None)
    CannedReply.objects.create(title="别家的", text="不该出现", account=other)
    url = reverse("inbox:canned_replies", args=[session.pk])
    with django_assert_max_num_queries(4):
        response = member_client.get(url)
    assert response.json() == {
        "replies": [
            {"title": "Greeting", "text": "您好！"},
            {"title": "发货", "text": "今天下单明天发货"},
        ]
    }
    assert member_client.post(url).status_code == 405


def test_canned_replies_are_404_to_a_non_member_and_need_sign_in(client, session, outsider):
    url = reverse("inbox:canned_replies", args=[session.pk])
    assert client.get(url).status_code == 302
    client.force_login(outsider)
    assert client.get(url).status_code == 404


def test_canned_replies_are_in_admin(admin_client, synced):
    CannedReply.objects.create(title="发货", text="今天下单明天发货", account=synced)
    listing = admin_client.get(reverse("admin:inbox_cannedreply_changelist"), {"q": "发货"})
    assert listing.status_code == 200 and "今天下单明天发货" in listing.content.decode()
    assert admin_client.get(reverse("admin:inbox_cannedreply_add")).status_code == 200


# --- queries -------------------------------------------------------------------------------------


def grow_thread(sandbox, account, session, total: int) -> None:
    for n in range(session.messages.count(), total):
        sandbox.add_letter(SANDBOX_APP_ID, f"第 {n} 封", peer=PEERS[1])
    sync_account(account)


def write_queries(client, session, member, sandbox) -> dict[str, int]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    counts = {}
    for name, (url, data) in write_requests(session, member, sandbox).items():
        if name == "send_image":
            continue
        with CaptureQueriesContext(connection) as captured:
            response = post(client, url, data, htmx=True)
        assert response.status_code == 200, name
        counts[name] = len(captured)
        # Back to where it was, so each write does the same again at the next size.
        Session.objects.filter(pk=session.pk).update(
            status=Session.Status.OPEN, snoozed_until=None, assignee=None
        )
    return counts


def test_write_queries_do_not_grow_with_the_thread(member_client, session, member, sandbox, synced):
    grow_thread(sandbox, synced, session, 5)
    few = write_queries(member_client, session, member, sandbox)
    grow_thread(sandbox, synced, session, 60)
    many = write_queries(member_client, session, member, sandbox)
    assert many == few
    # Sign-in session and user, the access check, the service's statements, the fragments.
    assert max(few.values()) <= 12, few


def test_each_write_stays_within_its_budget(
    member_client, session, member, sandbox, image_replies, django_assert_max_num_queries
):
    requests = write_requests(session, member, sandbox)
    budgets = {
        "compose": 9,
        "note": 8,
        "send_image": 9,
        # + the report facts (inbox/reports/facts.py): timeline state, episode, state upsert.
        "set_status": 12,
        "snooze": 10,
        "assign": 12,
        "retry": 8,
    }
    for name, budget in budgets.items():
        url, data = requests[name]
        with django_assert_max_num_queries(budget):
            assert post(member_client, url, data, htmx=True).status_code == 200


def test_an_assignee_who_left_the_account_is_still_shown_but_cannot_be_chosen_again(
    member_client, session, member, colleague, django_assert_max_num_queries
):
    services.assign(session, colleague, member)
    session.account.members.remove(colleague)
    # (11: the sidebar's labels are one query.)
    with django_assert_max_num_queries(11):
        html = member_client.get(session.get_absolute_url()).content.decode()
    assert f'<option value="{colleague.pk}" selected disabled>王五</option>' in html
    assert post_assign(member_client, session, colleague.pk).status_code == 400
