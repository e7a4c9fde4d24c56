"""Replies, notes, status and assignment, against the sandbox upstream over HTTP."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from accounts.sandbox import (
    EXAMPLE_ACCOUNT_FINDER,
    EXAMPLE_PEER,
    EXAMPLE_SESSION,
    PEERS,
)
from accounts.sandbox_media import png_bytes
from inbox import services
from inbox.models import Message, Session
from inbox.sync import sync_account
from inbox.tasks import send_reply

SEND_PATH = "/finder/postPrivateLetter"


@pytest.fixture
def agent(db, account):
    user = get_user_model().objects.create_user("li.si", password="pw", first_name="李四")
    account.members.add(user)
    return user


@pytest.fixture
def session(account) -> Session:
    """The example conversation, synced: the peer wrote to the account's Channels identity."""
    sync_account(account)
    return Session.objects.get(account=account, msg_session_id=EXAMPLE_SESSION)


def compose(session, agent, text="您好，已为您安排发货。", token=None) -> Message:
    return services.compose_reply(session, agent, text, token or uuid.uuid4())


def test_reply_is_stored_as_sending_and_queued_after_commit(
    session, agent, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks:
        reply = compose(session, agent)
    assert reply.delivery == Message.Delivery.SENDING
    assert reply.is_sender and reply.author == agent and reply.new_msg_id is None
    assert len(callbacks) == 1
    session.refresh_from_db()
    assert session.last_message_preview == "您好，已为您安排发货。"


def test_sent_reply_reaches_upstream_with_session_identities(session, agent, sandbox):
    reply = compose(session, agent)

    outcome = services.deliver_reply(reply.pk)

    assert outcome.delivery == Message.Delivery.SENT
    [call] = sandbox.calls_to(SEND_PATH)
    assert call["body"] == {
        "appId": session.account.app_id,
        "content": "您好，已为您安排发货。",
        "toUserName": EXAMPLE_PEER,
        "myUserName": session.my_username,
        "msgSessionId": EXAMPLE_SESSION,
    }
    assert session.my_username.endswith("@finder") and session.my_username != EXAMPLE_PEER
    reply.refresh_from_db()
    assert reply.delivery == Message.Delivery.SENT
    assert (
        reply.new_msg_id
        == sandbox.accounts[session.account.app_id].letters[-1]["content"]["msg"]["NewMsgId"]
    )


def test_sync_echo_of_a_sent_reply_merges_into_the_same_row(session, agent, account):
    reply = compose(session, agent)
    services.deliver_reply(reply.pk)
    before = Message.objects.count()

    result = sync_account(account)

    assert result.new_messages == 0
    assert Message.objects.count() == before
    reply.refresh_from_db()
    assert reply.delivery == Message.Delivery.SENT
    assert reply.msg_id is not None and reply.raw["content"]["isSender"] == 1


def test_echo_that_arrives_before_the_answer_becomes_the_reply(session, agent, account, sandbox):
    # The upstream takes the send but the connection drops before it answers.
    sandbox.inject("drop", path=SEND_PATH)
    reply = compose(session, agent)

    assert services.deliver_reply(reply.pk).delivery == Message.Delivery.FAILED
    reply.refresh_from_db()
    assert reply.maybe_delivered and "may have been delivered" in reply.delivery_error

    sync_account(account)

    reply.refresh_from_db()
    assert reply.delivery == Message.Delivery.SENT and reply.new_msg_id
    assert not reply.maybe_delivered
    assert Message.objects.filter(session=session, content=reply.content).count() == 1
    assert len(sandbox.calls_to(SEND_PATH)) == 1


def test_transient_refusal_retries_and_sends_once(session, agent, sandbox):
    sandbox.inject("ret_500", path=SEND_PATH)
    reply = compose(session, agent)

    first = services.deliver_reply(reply.pk, attempt=0)
    assert first.delivery == Message.Delivery.SENDING and first.retry_in
    second = services.deliver_reply(reply.pk, attempt=1)

    assert second.delivery == Message.Delivery.SENT
    assert len(sandbox.calls_to(SEND_PATH)) == 2
    sent = [
        item
        for item in sandbox.accounts[session.account.app_id].letters
        if item["content"]["msg"]["Content"]["string"] == reply.content
    ]
    assert len(sent) == 1


def test_send_task_retries_by_itself_until_sent(session, agent, sandbox, monkeypatch):
    sandbox.inject("ret_500", path=SEND_PATH, times=2)
    reply = compose(session, agent)

    # Eager mode follows the task's own self.retry() calls (skipping the countdowns) only when
    # it does not propagate the Retry exception instead.
    monkeypatch.setitem(send_reply.app.conf, "task_eager_propagates", False)
    send_reply.apply(args=[reply.pk])

    reply.refresh_from_db()
    assert reply.delivery == Message.Delivery.SENT
    assert len(sandbox.calls_to(SEND_PATH)) == 3


def test_rejected_token_fails_the_reply_with_the_reason_and_retry_sends_it(
    session, agent, sandbox, django_capture_on_commit_callbacks
):
    sandbox.inject("token_expired", path=SEND_PATH)
    reply = compose(session, agent)

    assert services.deliver_reply(reply.pk).delivery == Message.Delivery.FAILED
    reply.refresh_from_db()
    assert "不可用或已过期" in reply.delivery_error
    assert session.account.token not in reply.delivery_error

    with django_capture_on_commit_callbacks(execute=True):
        assert services.retry_reply(reply)
    reply.refresh_from_db()
    assert reply.delivery == Message.Delivery.SENT
    assert not services.retry_reply(reply)


def test_unreachable_upstream_is_retried_because_nothing_went_out(session, agent, account):
    account.base_url = "http://127.0.0.1:9/finder/v2/api"  # nothing listens on the discard port
    account.save(update_fields=["base_url"])
    reply = compose(session, agent)

    outcome = services.deliver_reply(reply.pk)

    assert outcome.delivery == Message.Delivery.SENDING and outcome.retry_in
    reply.refresh_from_db()
    assert reply.send_started_at is None and "ConnectionError" in reply.delivery_error


def test_double_submit_makes_one_reply_and_one_upstream_call(
    session, agent, sandbox, django_capture_on_commit_callbacks
):
    token = uuid.uuid4()
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        first = compose(session, agent, token=token)
        second = compose(session, agent, token=token)

    assert first.pk == second.pk
    assert len(callbacks) == 1
    assert len(sandbox.calls_to(SEND_PATH)) == 1


def test_a_duplicate_send_task_sends_nothing(session, agent, sandbox):
    reply = compose(session, agent)

    services.deliver_reply(reply.pk)
    again = services.deliver_reply(reply.pk)

    assert again.delivery == "skipped"
    assert len(sandbox.calls_to(SEND_PATH)) == 1


@pytest.mark.parametrize("text", ["", "   \n ", "长" * (services.MAX_REPLY_LENGTH + 1)])
def test_empty_or_overlong_reply_is_refused_and_nothing_is_queued(
    session, agent, text, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks, pytest.raises(services.ReplyError):
        compose(session, agent, text=text)
    assert not callbacks
    assert not Message.objects.filter(delivery=Message.Delivery.SENDING).exists()


def test_notes_never_reach_the_upstream(session, agent, sandbox, account):
    note = services.add_note(session, agent, "客户是老顾客，可以给九折", uuid.uuid4())
    sync_account(account)

    assert note.kind == Message.Kind.NOTE
    assert sandbox.calls_to(SEND_PATH) == []
    assert all("九折" not in str(call["body"]) for call in sandbox.calls)


def test_new_incoming_letter_reopens_a_resolved_session(session, agent, sandbox, account):
    services.set_status(session, Session.Status.RESOLVED, agent)
    sandbox.add_letter(account.app_id, "还有一个问题", msg_session_id=EXAMPLE_SESSION)

    sync_account(account)

    session.refresh_from_db()
    assert session.status == Session.Status.OPEN
    line = session.messages.filter(kind=Message.Kind.ACTIVITY).latest("pk")
    assert line.activity == Message.Activity.OPENED and line.author is None


def test_redelivered_letter_does_not_reopen_again(session, agent, sandbox, account):
    services.set_status(session, Session.Status.RESOLVED, agent)
    sandbox.add_letter(account.app_id, "还有一个问题", msg_session_id=EXAMPLE_SESSION)
    sync_account(account)
    session.refresh_from_db()
    assert services.set_status(session, Session.Status.RESOLVED, agent)
    sandbox.inject("redeliver", overlap=3)

    sync_account(account)

    session.refresh_from_db()
    assert session.status == Session.Status.RESOLVED
    assert session.messages.filter(activity=Message.Activity.OPENED).count() == 1


def test_snoozed_sessions_whose_time_has_come_reopen_with_an_activity_line(session, agent):
    services.set_status(
        session, Session.Status.SNOOZED, agent, snooze_until=timezone.now() + timedelta(hours=1)
    )

    assert services.reopen_due_snoozed_sessions(timezone.now()) == 0
    assert services.reopen_due_snoozed_sessions(timezone.now() + timedelta(hours=2)) == 1

    session.refresh_from_db()
    assert session.status == Session.Status.OPEN and session.snoozed_until is None
    line = session.messages.filter(kind=Message.Kind.ACTIVITY).latest("pk")
    assert line.activity == Message.Activity.OPENED and line.author is None


def test_a_reposted_note_is_kept_once(session, agent):
    token = uuid.uuid4()
    first = services.add_note(session, agent, "客户是老顾客", token)
    second = services.add_note(session, agent, "客户是老顾客", token)
    assert first.pk == second.pk
    assert session.messages.filter(kind=Message.Kind.NOTE).count() == 1


def test_new_incoming_letter_reopens_a_snoozed_session(session, agent, sandbox, account):
    services.set_status(
        session, Session.Status.SNOOZED, agent, snooze_until=timezone.now() + timedelta(days=1)
    )
    sandbox.add_letter(account.app_id, "在吗", msg_session_id=EXAMPLE_SESSION)

    sync_account(account)

    session.refresh_from_db()
    assert session.status == Session.Status.OPEN and session.snoozed_until is None


def test_own_outgoing_letter_does_not_reopen(session, agent, sandbox, account):
    services.set_status(session, Session.Status.RESOLVED, agent)
    sandbox.add_letter(account.app_id, "感谢惠顾", msg_session_id=EXAMPLE_SESSION, is_sender=True)
    sync_account(account)
    session.refresh_from_db()
    assert session.status == Session.Status.RESOLVED


def test_status_changes_and_assignments_leave_activity_lines(session, agent):
    colleague = get_user_model().objects.create_user("wang", password="pw")
    session.account.members.add(colleague)

    assert services.set_status(session, Session.Status.RESOLVED, agent)
    assert not services.set_status(session, Session.Status.RESOLVED, agent)
    assert services.assign(session, colleague, agent)
    assert services.assign(session, None, agent)

    lines = list(
        session.messages.filter(kind=Message.Kind.ACTIVITY)
        .order_by("pk")
        .values_list("activity", "author__username", "activity_user__username")
    )
    assert lines == [
        ("resolved", "li.si", None),
        ("assigned", "li.si", "wang"),
        ("unassigned", "li.si", None),
    ]


def test_only_members_can_be_assigned(session, agent):
    outsider = get_user_model().objects.create_user("outsider", password="pw")
    with pytest.raises(ValueError):
        services.assign(session, outsider, agent)
    session.refresh_from_db()
    assert session.assignee is None


def test_snoozing_needs_a_future_time(session, agent):
    with pytest.raises(ValueError):
        services.set_status(session, Session.Status.SNOOZED, agent)
    with pytest.raises(ValueError):
        services.set_status(
            session,
            Session.Status.SNOOZED,
            agent,
            snooze_until=timezone.now() - timedelta(minutes=1),
        )


def test_a_send_interrupted_by_a_dead_worker_turns_failed(session, agent):
    reply = compose(session, agent)
    Message.objects.filter(pk=reply.pk).update(
        send_started_at=timezone.now() - services.STUCK_SEND_AFTER - timedelta(seconds=1)
    )

    assert services.fail_stuck_sends() == 1
    reply.refresh_from_db()
    assert reply.delivery == Message.Delivery.FAILED and reply.maybe_delivered


PNG = png_bytes(8, 6, "reply")


@pytest.fixture
def image_replies(settings, tmp_path):
    settings.PUBLIC_BASE_URL = "https://inbox.example.com"
    settings.MEDIA_ROOT = tmp_path


def test_image_reply_is_stored_and_sent_by_its_public_url(
    session, agent, sandbox, image_replies, client
):
    upload = SimpleUploadedFile("../../etc/passwd.png", PNG, content_type="text/plain")
    reply = services.compose_image_reply(session, agent, upload, uuid.uuid4())

    assert services.deliver_reply(reply.pk).delivery == Message.Delivery.SENT
    [call] = sandbox.calls_to("/finder/postPrivateLetterImg")
    assert call["body"]["imgUrl"] == "https://inbox.example.com" + reply.attachment.url
    assert "passwd" not in reply.attachment.name and reply.attachment.name.endswith(".png")
    served = client.get(reply.attachment.url)
    assert served.status_code == 200 and served["Content-Type"] == "image/png"
    assert b"".join(served.streaming_content) == PNG


@pytest.mark.parametrize(
    "content", [b"GIF89a" + b"\0" * 10, b"\xff\xd8\xff\xe0" + b"\0" * 10, b"RIFF\0\0\0\0WEBPVP8 "]
)
def test_image_types_are_recognised_by_their_bytes(content):
    assert services.image_type(content[:16]) in {"gif", "jpg", "webp"}


def test_a_file_that_is_not_an_image_is_refused(session, agent, image_replies):
    upload = SimpleUploadedFile("cat.png", b"<?php system($_GET['c']); ?>", "image/png")
    with pytest.raises(services.ReplyError):
        services.compose_image_reply(session, agent, upload, uuid.uuid4())
    assert not Message.objects.filter(
        msg_type=Message.Type.IMAGE, is_sender=True, author=agent
    ).exists()


def test_image_replies_are_off_without_a_public_base_url(session, agent, settings):
    settings.PUBLIC_BASE_URL = ""
    upload = SimpleUploadedFile("a.png", PNG, "image/png")
    with pytest.raises(services.ReplyError, match="PUBLIC_BASE_URL"):
        services.compose_image_reply(session, agent, upload, uuid.uuid4())


def test_oversized_image_is_refused(session, agent, image_replies, monkeypatch):
    monkeypatch.setattr(services, "MAX_IMAGE_BYTES", 10)
    with pytest.raises(services.ReplyError):
        services.compose_image_reply(
            session, agent, SimpleUploadedFile("a.png", PNG, "image/png"), uuid.uuid4()
        )


def test_reply_image_urls_serve_nothing_else(client, image_replies):
    assert client.get("/media/replies/2026/11/" + "0" * 32 + ".png").status_code == 404
    assert client.get("/media/replies/../../db.sqlite3").status_code == 404


WECHAT_ONLY_SESSION = "ee06e16a186756394a271218d7dd31f65d3d6aa43dc02a1ec23758f588836d53@findermsg"


def test_reply_in_a_session_seen_only_from_the_wechat_id_goes_out_as_the_channels_name(
    session, agent, account, sandbox
):
    # The example's first session holds one letter, sent from the account's wxid_ identity.
    wechat_only = Session.objects.get(account=account, msg_session_id=WECHAT_ONLY_SESSION)
    assert wechat_only.my_username.startswith("wxid_")
    account.own_username = EXAMPLE_ACCOUNT_FINDER  # what "Check connection" learns
    account.save(update_fields=["own_username"])

    services.deliver_reply(compose(wechat_only, agent).pk)

    [call] = sandbox.calls_to(SEND_PATH)
    assert call["body"]["myUserName"] == EXAMPLE_ACCOUNT_FINDER


def test_sync_learns_the_channels_identity_from_the_peers_first_letter(account, sandbox):
    sync_account(account)
    sandbox.add_letter(account.app_id, "你好", peer=PEERS[0], msg_session_id=WECHAT_ONLY_SESSION)

    sync_account(account)

    wechat_only = Session.objects.get(account=account, msg_session_id=WECHAT_ONLY_SESSION)
    assert wechat_only.my_username == EXAMPLE_ACCOUNT_FINDER


# --- replies whose send task went missing (issue 8, defect 2) ---------------------------------


def sweep_at(minutes: float) -> int:
    """Run beat's reply sweep as if `minutes` had passed since now."""
    return services.requeue_unclaimed_replies(timezone.now() + timedelta(minutes=minutes))


def test_a_reply_is_stored_with_the_time_it_was_queued(session, agent):
    before = timezone.now()
    reply = compose(session, agent)
    assert reply.queued_at is not None and before <= reply.queued_at <= timezone.now()
    assert reply.requeues == 0


def test_a_reply_whose_task_was_lost_is_queued_again_and_sent_once(
    session, agent, sandbox, settings, django_capture_on_commit_callbacks
):
    settings.REPLY_REQUEUE_AFTER_SECONDS = 120
    reply = compose(session, agent)  # its on-commit task never runs: lost with the broker

    with django_capture_on_commit_callbacks(execute=True):
        assert sweep_at(1) == 0  # a healthy queue may just be slow
    assert sandbox.calls_to(SEND_PATH) == []
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        assert sweep_at(3) == 1
    assert len(callbacks) == 1

    reply.refresh_from_db()
    assert reply.delivery == Message.Delivery.SENT and reply.requeues == 1
    with django_capture_on_commit_callbacks(execute=True):
        assert sweep_at(10) == 0
    assert len(sandbox.calls_to(SEND_PATH)) == 1


def test_the_sweep_queues_a_reply_again_at_most_once_per_interval(
    session, agent, settings, django_capture_on_commit_callbacks
):
    settings.REPLY_REQUEUE_AFTER_SECONDS = 120
    reply = compose(session, agent)

    with django_capture_on_commit_callbacks() as callbacks:
        assert sweep_at(3) == 1
        # Queued again "now + 3 min": the next minutes' sweeps leave it to that task.
        assert sweep_at(4) == 0
        assert sweep_at(5.5) == 1
    assert len(callbacks) == 2
    reply.refresh_from_db()
    assert reply.requeues == 2 and reply.delivery == Message.Delivery.SENDING


def test_the_sweep_leaves_claimed_and_finished_replies_alone(session, agent, sandbox):
    claimed = compose(session, agent, text="已认领")
    Message.objects.filter(pk=claimed.pk).update(send_started_at=timezone.now())
    sent = compose(session, agent, text="已发送")
    services.deliver_reply(sent.pk)

    assert sweep_at(3) == 0
    claimed.refresh_from_db()
    assert claimed.delivery == Message.Delivery.SENDING and claimed.requeues == 0


def test_a_reply_no_worker_takes_fails_visibly_as_not_sent_and_retry_sends_it(
    session, agent, sandbox, settings, django_capture_on_commit_callbacks
):
    settings.REPLY_REQUEUE_AFTER_SECONDS = 120
    settings.REPLY_MAX_REQUEUES = 2
    reply = compose(session, agent)
    for minutes in (3, 6):  # queued again twice; no worker ever takes it
        with django_capture_on_commit_callbacks():
            assert sweep_at(minutes) == 1

    assert sweep_at(9) == 1

    reply.refresh_from_db()
    assert reply.delivery == Message.Delivery.FAILED
    assert not reply.maybe_delivered and "no worker" in reply.delivery_error
    with django_capture_on_commit_callbacks(execute=True):
        assert services.retry_reply(reply)
    reply.refresh_from_db()
    assert reply.delivery == Message.Delivery.SENT and reply.requeues == 0
    assert len(sandbox.calls_to(SEND_PATH)) == 1


def test_retry_queues_a_reply_that_waited_too_long_for_a_worker(
    session, agent, sandbox, settings, django_capture_on_commit_callbacks
):
    settings.REPLY_REQUEUE_AFTER_SECONDS = 120
    reply = compose(session, agent)
    assert not services.retry_reply(reply)  # just queued: its task is on its way
    Message.objects.filter(pk=reply.pk).update(queued_at=timezone.now() - timedelta(minutes=3))

    with django_capture_on_commit_callbacks(execute=True):
        assert services.retry_reply(reply)

    reply.refresh_from_db()
    assert reply.delivery == Message.Delivery.SENT
    assert len(sandbox.calls_to(SEND_PATH)) == 1


def test_a_send_waiting_for_its_delayed_retry_is_not_queued_again_before_it_is_due(
    session, agent, sandbox, settings
):
    settings.REPLY_REQUEUE_AFTER_SECONDS = 120
    sandbox.inject("ret_500", path=SEND_PATH)
    reply = compose(session, agent)
    outcome = services.deliver_reply(reply.pk, attempt=len(services.SEND_RETRY_DELAYS) - 1)
    assert outcome.retry_in == services.SEND_RETRY_DELAYS[-1]

    # Due in 180 s: the sweep waits for that, then its usual 120 s.
    assert services.requeue_unclaimed_replies(timezone.now() + timedelta(seconds=250)) == 0
    assert services.requeue_unclaimed_replies(timezone.now() + timedelta(seconds=310)) == 1


# --- echoes (defect 3) ------------------------------------------------------------------------


def echo_ids(sandbox, app_id: str, text: str) -> list[int]:
    """The NewMsgIds of the outgoing letters with this text in the sandbox's log."""
    return [
        item["content"]["msg"]["NewMsgId"]
        for item in sandbox.accounts[app_id].letters
        if item["content"]["isSender"] and item["content"]["msg"]["Content"]["string"] == text
    ]


def test_a_same_text_letter_from_the_phone_does_not_settle_a_reply_not_yet_sent(
    session, agent, account, sandbox
):
    reply = compose(session, agent, text="好的")
    phone = sandbox.add_letter(
        account.app_id, "好的", msg_session_id=EXAMPLE_SESSION, peer=PEERS[0], is_sender=True
    )

    sync_account(account)

    reply.refresh_from_db()
    assert reply.delivery == Message.Delivery.SENDING and reply.new_msg_id is None
    phone_id = phone["content"]["msg"]["NewMsgId"]
    assert Message.objects.get(account=account, new_msg_id=phone_id).client_token is None

    assert services.deliver_reply(reply.pk).delivery == Message.Delivery.SENT
    sync_account(account)
    reply.refresh_from_db()
    assert len(sandbox.calls_to(SEND_PATH)) == 1
    assert sorted(echo_ids(sandbox, account.app_id, "好的")) == sorted([phone_id, reply.new_msg_id])
    assert session.messages.filter(content="好的").count() == 2


def test_an_older_letter_with_the_same_text_is_not_taken_for_the_echo(
    session, agent, account, sandbox
):
    older = sandbox.add_letter(
        account.app_id, "好的", msg_session_id=EXAMPLE_SESSION, peer=PEERS[0], is_sender=True
    )
    older["content"]["msg"]["CreateTime"] -= 3600  # written an hour ago, delivered only now
    sandbox.inject("drop", path=SEND_PATH)  # delivered, but the answer is lost
    reply = compose(session, agent, text="好的")
    assert services.deliver_reply(reply.pk).delivery == Message.Delivery.FAILED

    sync_account(account)

    reply.refresh_from_db()
    older_id = older["content"]["msg"]["NewMsgId"]
    [echo_id] = [i for i in echo_ids(sandbox, account.app_id, "好的") if i != older_id]
    assert reply.delivery == Message.Delivery.SENT and reply.new_msg_id == echo_id
    assert Message.objects.get(account=account, new_msg_id=older_id).client_token is None


def test_a_reply_that_failed_as_not_delivered_is_not_settled_by_a_same_text_letter(
    session, agent, account, sandbox
):
    sandbox.inject("token_expired", path=SEND_PATH)
    reply = compose(session, agent, text="好的")
    services.deliver_reply(reply.pk)
    sandbox.add_letter(
        account.app_id, "好的", msg_session_id=EXAMPLE_SESSION, peer=PEERS[0], is_sender=True
    )

    sync_account(account)

    reply.refresh_from_db()
    assert reply.delivery == Message.Delivery.FAILED and reply.new_msg_id is None


def test_a_same_text_letter_long_after_a_maybe_delivered_send_is_another_letter(
    session, agent, account, sandbox
):
    # A send that timed out two days ago without arriving; today the agent writes the same
    # thing from the phone.
    reply = compose(session, agent, text="好的")
    Message.objects.filter(pk=reply.pk).update(
        delivery=Message.Delivery.FAILED,
        maybe_delivered=True,
        send_started_at=timezone.now() - timedelta(days=2),
    )
    phone = sandbox.add_letter(
        account.app_id, "好的", msg_session_id=EXAMPLE_SESSION, peer=PEERS[0], is_sender=True
    )

    sync_account(account)

    reply.refresh_from_db()
    assert reply.delivery == Message.Delivery.FAILED and reply.maybe_delivered
    assert reply.new_msg_id is None
    phone_id = phone["content"]["msg"]["NewMsgId"]
    assert Message.objects.get(account=account, new_msg_id=phone_id).client_token is None


def test_an_echo_matched_to_an_older_reply_goes_to_the_reply_the_upstream_names(
    session, agent, account, sandbox
):
    # An older "好的" failed a minute ago as maybe delivered (it was not); a new "好的" is being
    # sent, and its letter comes in through sync before the send's answer.
    older = compose(session, agent, text="好的")
    Message.objects.filter(pk=older.pk).update(
        delivery=Message.Delivery.FAILED,
        maybe_delivered=True,
        send_started_at=timezone.now() - timedelta(minutes=1),
    )
    newer = compose(session, agent, text="好的")
    Message.objects.filter(pk=newer.pk).update(send_started_at=timezone.now())
    letter = sandbox.add_letter(
        account.app_id, "好的", msg_session_id=EXAMPLE_SESSION, peer=PEERS[0], is_sender=True
    )
    letter_id = letter["content"]["msg"]["NewMsgId"]
    sync_account(account)
    older.refresh_from_db()
    assert older.new_msg_id == letter_id, "the earliest claim took it, as designed"

    newer.refresh_from_db()
    services._mark_sent(newer, letter_id)  # the send's answer: the letter is the newer reply's

    newer.refresh_from_db()
    older.refresh_from_db()
    assert newer.delivery == Message.Delivery.SENT and newer.new_msg_id == letter_id
    assert newer.raw is not None, "the letter's upstream fields came along"
    assert older.delivery == Message.Delivery.FAILED and older.maybe_delivered
    assert older.new_msg_id is None and older.raw is None
    assert session.messages.filter(content="好的").count() == 2, "no reply row was deleted"


# --- answers that say nothing clear (defect 4) --------------------------------------------------


@pytest.mark.parametrize(
    "fault",
    ["taken_empty", "taken_not_json", "taken_http_502", "drop"],
)
def test_an_unclear_answer_after_the_send_was_taken_may_have_delivered_it(
    session, agent, account, sandbox, fault
):
    sandbox.inject(fault, path=SEND_PATH)
    reply = compose(session, agent)

    assert services.deliver_reply(reply.pk).delivery == Message.Delivery.FAILED

    reply.refresh_from_db()
    assert reply.maybe_delivered and "may have been delivered" in reply.delivery_error
    assert account.token not in reply.delivery_error
    sync_account(account)  # the echo settles it
    reply.refresh_from_db()
    assert reply.delivery == Message.Delivery.SENT
    assert len(sandbox.calls_to(SEND_PATH)) == 1


@pytest.mark.parametrize(
    "fault, options",
    [
        ("answer", {"data": {}}),
        ("answer", {"data": {"newMsgId": None}}),
        ("answer", {"data": "ok"}),
        ("invalid_json", {}),
    ],
)
def test_any_answer_that_is_not_a_clear_refusal_counts_as_maybe_delivered(
    session, agent, sandbox, fault, options
):
    sandbox.inject(fault, path=SEND_PATH, **options)
    reply = compose(session, agent)

    services.deliver_reply(reply.pk)

    reply.refresh_from_db()
    assert reply.delivery == Message.Delivery.FAILED and reply.maybe_delivered


def test_a_clear_refusal_is_not_delivered(session, agent, sandbox):
    sandbox.inject("token_expired", path=SEND_PATH)
    reply = compose(session, agent)

    services.deliver_reply(reply.pk)

    reply.refresh_from_db()
    assert reply.delivery == Message.Delivery.FAILED and not reply.maybe_delivered


# --- client tokens (defect 10) ------------------------------------------------------------------


def test_a_client_token_used_in_another_conversation_is_refused(session, agent, account):
    other = Session.objects.filter(account=account).exclude(pk=session.pk).first()
    token = uuid.uuid4()
    compose(session, agent, token=token)

    for write in (
        lambda: services.compose_reply(other, agent, "另一条", token),
        lambda: services.add_note(other, agent, "备注", token),
    ):
        with pytest.raises(services.ReplyError, match="already used in another conversation"):
            write()
    assert Message.objects.filter(client_token=token).count() == 1
