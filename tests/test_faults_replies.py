"""Fault injection for replies: the real client against the sandbox upstream over HTTP, a broker
that refuses connections, a worker process killed in the middle of a send, answers that say
nothing clear, and a same-text letter sent from the phone. Whatever happens, no reply is lost
(each ends sent, or failed with Retry), none goes out twice (counted in what the sandbox took),
and none is marked sent that the upstream does not hold."""

from __future__ import annotations

import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from celery import Celery
from celery.contrib.testing.app import setup_default_app
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connections
from django.urls import reverse

from accounts.models import Account
from accounts.sandbox import EXAMPLE_SESSION, PEERS, start_sandbox
from accounts.sandbox_media import png_bytes
from inbox import services, tasks
from inbox.models import Message, Session
from inbox.sync import sync_account
from tests.test_worker import World, wait_until

SEND_PATH = "/finder/postPrivateLetter"
HTMX = {"HTTP_HX_REQUEST": "true"}
# Port 1 on loopback: nothing listens there, so every connection is refused at once.
UNREACHABLE_BROKER = "redis://127.0.0.1:1/0"


@contextmanager
def broker_down() -> Iterator[Celery]:
    """The app's tasks published for real (not run inline) to a Redis that cannot be reached: a
    kombu connection error, as when the broker is down."""
    app = Celery("inbox-broker-down", set_as_current=False)
    app.config_from_object("django.conf:settings", namespace="CELERY")
    # Celery prefers CELERY_BROKER_URL from the environment to broker_url; the write URL wins.
    app.conf.broker_url = app.conf.broker_write_url = UNREACHABLE_BROKER
    app.conf.broker_transport_options = {}
    app.conf.task_always_eager = False
    with setup_default_app(app):  # puts the app that was current back afterwards
        app.set_current()
        app.set_default()
        yield app


@pytest.fixture
def agent(account):
    user = get_user_model().objects.create_user("li.si", password="pw", first_name="李四")
    account.members.add(user)
    return user


@pytest.fixture
def session(account) -> Session:
    sync_account(account)
    return Session.objects.get(account=account, msg_session_id=EXAMPLE_SESSION)


def outgoing_letters(sandbox, app_id: str) -> list[dict]:
    return [item for item in sandbox.accounts[app_id].letters if item["content"]["isSender"]]


def assert_no_reply_lost_doubled_or_falsely_sent(
    sandbox, account: Account, *, other_letters: set[int] = frozenset()
) -> None:
    """Every reply written here is settled (sent, or failed for a person to retry); the upstream
    took each at most once; a reply marked sent is a letter the upstream holds, with its text;
    one failed as not delivered is not there at all. `other_letters`: NewMsgIds of outgoing
    letters that did not come from here (sent from the phone)."""
    taken = {
        item["content"]["msg"]["NewMsgId"]: item["content"]["msg"]["Content"]["string"]
        for item in outgoing_letters(sandbox, account.app_id)
        if item["content"]["msg"]["NewMsgId"] not in other_letters
    }
    replies = Message.objects.filter(account=account, kind=Message.Kind.LETTER).exclude(
        client_token=None
    )
    assert replies.exists()
    for reply in replies:
        assert reply.delivery in (Message.Delivery.SENT, Message.Delivery.FAILED), reply.content
        copies = [new_msg_id for new_msg_id, text in taken.items() if text == reply.content]
        assert len(copies) <= 1, f"{reply.content!r} was sent {len(copies)} times"
        if reply.delivery == Message.Delivery.SENT:
            assert copies == [reply.new_msg_id], f"{reply.content!r} is marked sent but is not"
        elif not reply.maybe_delivered:
            assert copies == [], f"{reply.content!r} failed as not sent, but it was"


# --- broker down during compose -----------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_reply_composed_while_the_broker_is_down_is_kept_and_sent_once_when_it_is_back(
    client, session, agent, sandbox, settings, caplog
):
    client.force_login(agent)
    url = reverse("inbox:compose", args=[session.pk])
    data = {"kind": "reply", "text": "稍等，马上为您处理。", "client_token": str(uuid.uuid4())}

    with broker_down():
        response = client.post(url, data, **HTMX)

    assert response.status_code == 200
    reply = Message.objects.get(client_token=data["client_token"])
    assert reply.delivery == Message.Delivery.SENDING and reply.send_started_at is None
    assert "could not be queued" in caplog.text
    assert sandbox.calls_to(SEND_PATH) == []

    # The broker is back (tasks run inline again). Beat's sweep, on its next tick after the wait:
    settings.REPLY_REQUEUE_AFTER_SECONDS = 0
    assert tasks.requeue_unclaimed_replies() == 1
    assert tasks.requeue_unclaimed_replies() == 0

    reply.refresh_from_db()
    assert reply.delivery == Message.Delivery.SENT
    assert len(sandbox.calls_to(SEND_PATH)) == 1
    sync_account(session.account)
    assert_no_reply_lost_doubled_or_falsely_sent(sandbox, session.account)


@pytest.mark.django_db(transaction=True)
def test_a_retry_that_cannot_be_queued_is_sent_once_by_the_sweep(
    client, session, agent, sandbox, settings, caplog
):
    sandbox.inject("token_expired", path=SEND_PATH)
    reply = services.compose_reply(session, agent, "请查收发票。", uuid.uuid4())
    reply.refresh_from_db()
    assert reply.delivery == Message.Delivery.FAILED and not reply.maybe_delivered
    client.force_login(agent)

    with broker_down():
        response = client.post(reverse("inbox:retry", args=[reply.pk]), **HTMX)

    assert response.status_code == 200
    reply.refresh_from_db()
    assert reply.delivery == Message.Delivery.SENDING
    settings.REPLY_REQUEUE_AFTER_SECONDS = 0
    tasks.requeue_unclaimed_replies()
    reply.refresh_from_db()
    assert reply.delivery == Message.Delivery.SENT
    assert len(sandbox.calls_to(SEND_PATH)) == 2  # the refused attempt, then the one that went
    assert_no_reply_lost_doubled_or_falsely_sent(sandbox, session.account)


# --- answers that say nothing clear -------------------------------------------------------------


def test_garbage_answers_and_a_same_text_letter_from_the_phone_lose_and_double_nothing(
    client, session, agent, account, sandbox, django_capture_on_commit_callbacks
):
    faults = ["taken_empty", "taken_not_json", "taken_http_502", "drop", "token_expired", None]
    replies = []
    for n, fault in enumerate(faults):
        if fault:
            sandbox.inject(fault, path=SEND_PATH)
        with django_capture_on_commit_callbacks(execute=True):
            replies.append(services.compose_reply(session, agent, f"第 {n} 条回复", uuid.uuid4()))
    # Written on the phone, with the text of a reply that is still waiting for its worker.
    waiting = services.compose_reply(session, agent, "好的，收到", uuid.uuid4())
    phone = sandbox.add_letter(
        account.app_id, "好的，收到", peer=PEERS[0], msg_session_id=EXAMPLE_SESSION, is_sender=True
    )
    # Before the echoes come: each unclear answer shows Retry, which asks before sending again.
    client.force_login(agent)
    page = client.get(session.get_absolute_url()).content.decode()
    for reply in replies[:4]:
        bubble = page.split(f'id="message-{reply.pk}"')[1].split("</article>")[0]
        assert "hx-confirm" in bubble and "may have been delivered" in bubble

    sync_account(account)

    waiting.refresh_from_db()
    assert waiting.delivery == Message.Delivery.SENDING
    states = {}
    for reply in replies:
        reply.refresh_from_db()
        states[reply.content] = (reply.delivery, reply.maybe_delivered)
    assert states == {
        "第 0 条回复": ("sent", False),  # settled by its echo
        "第 1 条回复": ("sent", False),
        "第 2 条回复": ("sent", False),
        "第 3 条回复": ("sent", False),
        "第 4 条回复": ("failed", False),  # refused: not delivered, Retry sends without asking
        "第 5 条回复": ("sent", False),
    }

    services.deliver_reply(waiting.pk)
    sync_account(account)
    waiting.refresh_from_db()
    phone_id = phone["content"]["msg"]["NewMsgId"]
    assert waiting.delivery == Message.Delivery.SENT and waiting.new_msg_id != phone_id
    assert session.messages.filter(content="好的，收到").count() == 2
    assert len(sandbox.calls_to(SEND_PATH)) == len(faults) + 1
    assert_no_reply_lost_doubled_or_falsely_sent(sandbox, account, other_letters={phone_id})


# --- the echo arrives while the send is still in flight -----------------------------------------


def send_in_background(message_id: int) -> threading.Thread:
    """deliver_reply in a thread of its own, as a worker would run it."""

    def run() -> None:
        try:
            services.deliver_reply(message_id)
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


@pytest.mark.django_db(transaction=True)
def compose_unsent(session: Session, agent, text: str) -> Message:
    """A reply saved while the broker is down: stored as sending, its task not yet run."""
    with broker_down():
        return services.compose_reply(session, agent, text, uuid.uuid4())


@pytest.mark.django_db(transaction=True)
def test_an_echo_synced_before_the_send_answers_is_the_reply(session, agent, account, sandbox):
    reply = compose_unsent(session, agent, "这一条在路上。")
    sandbox.inject("taken_hang", path=SEND_PATH, seconds=1.5)
    thread = send_in_background(reply.pk)
    wait_until(lambda: sandbox.calls_to(SEND_PATH), 10, "the send under way")

    sync_account(account)  # the upstream already holds the letter; its answer is late

    reply.refresh_from_db()
    assert reply.delivery == Message.Delivery.SENT and reply.new_msg_id
    thread.join(timeout=10)
    reply.refresh_from_db()
    assert reply.delivery == Message.Delivery.SENT
    assert session.messages.filter(content="这一条在路上。").count() == 1
    assert_no_reply_lost_doubled_or_falsely_sent(sandbox, account)


@pytest.mark.django_db(transaction=True)
def test_a_phone_letter_taken_for_the_echo_gets_its_own_row_when_the_answer_says_otherwise(
    session, agent, account, sandbox
):
    # The same text typed on the phone just before the worker claimed the reply: within the clock
    # skew allowance, so sync takes it for the echo while the send is in flight.
    phone = sandbox.add_letter(
        account.app_id, "好的", peer=PEERS[0], msg_session_id=EXAMPLE_SESSION, is_sender=True
    )
    reply = compose_unsent(session, agent, "好的")
    sandbox.inject("taken_hang", path=SEND_PATH, seconds=1.5)
    thread = send_in_background(reply.pk)
    wait_until(lambda: sandbox.calls_to(SEND_PATH), 10, "the send under way")
    sync_account(account)

    thread.join(timeout=10)

    reply.refresh_from_db()
    phone_id = phone["content"]["msg"]["NewMsgId"]
    [sent_id] = [
        item["content"]["msg"]["NewMsgId"]
        for item in outgoing_letters(sandbox, account.app_id)
        if item["content"]["msg"]["Content"]["string"] == "好的"
        and item["content"]["msg"]["NewMsgId"] != phone_id
    ]
    assert reply.delivery == Message.Delivery.SENT and reply.new_msg_id == sent_id
    own_row = Message.objects.get(account=account, new_msg_id=phone_id)
    assert own_row.client_token is None and own_row.content == "好的"
    assert session.messages.filter(content="好的").count() == 2
    assert_no_reply_lost_doubled_or_falsely_sent(sandbox, account, other_letters={phone_id})


# --- a worker killed in the middle of a send ------------------------------------------------------

KILL_APP_ID = "wx_crash_test"  # the account World creates


def shell(world: World, code: str) -> str:
    """Run Python in the app's own settings against the world's database and broker."""
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "--no-imports", "-c", code],
        cwd=settings.BASE_DIR,
        env=world.env,
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return result.stdout.strip()


def sync(world: World) -> None:
    """`manage.py sync`; its one-line reason on failure is the assertion's message."""
    result = subprocess.run(
        [sys.executable, "manage.py", "sync"],
        cwd=settings.BASE_DIR,
        env=world.env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_mid_send_fails_the_reply_as_maybe_delivered_and_its_echo_settles_it(
    tmp_path,
):
    sandbox = start_sandbox()
    state = sandbox.state
    world = None
    try:
        state.add_account(KILL_APP_ID, "crash-token-1c9f", example=False, script=False)
        state.add_letter(KILL_APP_ID, "请问什么时候发货？", peer=PEERS[1])
        world = World(tmp_path, sandbox.base_url)
        sync(world)
        # The upstream takes the send, then holds the answer far longer than the worker lives.
        state.inject("taken_hang", path=SEND_PATH, seconds=60)
        world.start("worker", "worker", "--concurrency=1")
        reply_id = int(
            shell(
                world,
                "import uuid; from django.contrib.auth import get_user_model; "
                "from inbox import services; from inbox.models import Session; "
                "user = get_user_model().objects.create_user('li.si'); "
                "session = Session.objects.get(); "
                "print(services.compose_reply(session, user, '明天一早发货。', uuid.uuid4()).pk)",
            )
        )
        wait_until(lambda: state.calls_to(SEND_PATH), 60, "the worker sending")

        world.kill("worker")

        row = "SELECT delivery, maybe_delivered, send_started_at IS NOT NULL, new_msg_id FROM "
        row += f"inbox_message WHERE id = {reply_id} AND account_id IN "
        row += "(SELECT id FROM accounts_account WHERE app_id = ?)"
        assert world.query(row)[:3] == ("sending", False, True)  # claimed, never answered
        shell(
            world,
            "from datetime import timedelta; from django.utils import timezone; "
            "from inbox import services; "
            "services.fail_stuck_sends(timezone.now() + services.STUCK_SEND_AFTER "
            "+ timedelta(seconds=1))",
        )
        delivery, maybe_delivered, _, _ = world.query(row)
        assert (delivery, bool(maybe_delivered)) == ("failed", True)  # Retry asks first

        sync(world)  # the echo

        [letter] = outgoing_letters(state, KILL_APP_ID)
        delivery, maybe_delivered, _, new_msg_id = world.query(row)
        assert (delivery, bool(maybe_delivered)) == ("sent", False)
        assert int(new_msg_id) + 2**63 == letter["content"]["msg"]["NewMsgId"]  # stored shifted
        assert letter["content"]["msg"]["Content"]["string"] == "明天一早发货。"
        assert len(state.calls_to(SEND_PATH)) == 1
        copies = world.query(
            "SELECT COUNT(*) FROM inbox_message WHERE content = '明天一早发货。' AND account_id IN "
            "(SELECT id FROM accounts_account WHERE app_id = ?)"
        )
        assert copies == (1,)
    finally:
        if world is not None:
            world.stop_all()
        sandbox.shutdown()


# --- client tokens ------------------------------------------------------------------------------


def test_a_client_token_from_another_accounts_conversation_is_a_400_not_a_500(
    client, session, agent, sandbox, sandbox_server, settings, tmp_path
):
    settings.PUBLIC_BASE_URL = "https://inbox.example.com"
    settings.MEDIA_ROOT = tmp_path
    sandbox.add_account("wx_second_shop", "second-token-77aa")
    second = Account.objects.create(
        name="Second shop",
        app_id="wx_second_shop",
        token="second-token-77aa",
        base_url=sandbox_server.base_url,
    )
    second.members.add(agent)
    sync_account(second)
    theirs = Session.objects.filter(account=second).first()
    token = str(uuid.uuid4())
    services.compose_reply(session, agent, "第一条", uuid.UUID(token))
    client.force_login(agent)

    compose_url = reverse("inbox:compose", args=[theirs.pk])
    posts = [
        (compose_url, {"kind": "reply", "text": "第二条", "client_token": token}),
        (compose_url, {"kind": "note", "text": "备注", "client_token": token}),
        (
            reverse("inbox:send_image", args=[theirs.pk]),
            {"client_token": token, "image": SimpleUploadedFile("a.png", png_bytes(4, 4, "x"))},
        ),
    ]
    for url, data in posts:
        for headers in ({}, HTMX):
            if "image" in data:
                data["image"].seek(0)
            response = client.post(url, data, **headers)
            assert response.status_code == 400, url
            assert "already used in another conversation" in response.content.decode()
    assert Message.objects.filter(client_token=token).count() == 1
    assert not theirs.messages.filter(author=agent).exists()
