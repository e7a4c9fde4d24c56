"""Echoes: a reply sent from here comes back through sync as an outgoing letter. Its row must
take the letter's NewMsgId and upstream fields, not become a second message, and a letter that
only looks like it (the same text sent from the phone) must stay a letter of its own. Sync calls
these inside each page's transaction (inbox.sync._insert_new_messages)."""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta

from django.db.models import Q
from django.utils import timezone

from accounts.models import Account
from inbox.models import Message, Session
from inbox.payloads import Letter
from inbox.reports import facts


def adopt_echoes(new: list[tuple[Session, Letter]]) -> list[tuple[Session, Letter]]:
    """Match unknown outgoing letters to replies composed here that have no NewMsgId yet: the
    echo is that reply, so the reply row takes its NewMsgId and turns sent, and no second row is
    made. Returns the letters that are really new.

    Only a reply whose send may have gone out can have an echo: one a worker has claimed (its
    send is in flight, or its worker died mid-call), or one that failed without an answer
    (maybe_delivered). And only a letter written after the claim (less ECHO_CLOCK_SKEW) can be
    it. Anything else with the same text, sent from the phone or an older letter delivered again,
    is another letter: a reply still waiting for its worker stays sending and is sent. Same
    session, type and text, earliest claim first. The candidates are locked, so a worker
    recording the send's answer meanwhile waits for this page (see services._mark_sent)."""
    outgoing_sessions = {session.pk for session, letter in new if letter.is_sender}
    if not outgoing_sessions:
        return new
    pending: dict[tuple, list[Message]] = defaultdict(list)
    for reply in (
        Message.objects.select_for_update()
        .filter(
            Q(delivery=Message.Delivery.SENDING)
            | Q(delivery=Message.Delivery.FAILED, maybe_delivered=True),
            session_id__in=outgoing_sessions,
            kind=Message.Kind.LETTER,
            is_sender=True,
            new_msg_id__isnull=True,
            send_started_at__isnull=False,
        )
        .order_by("send_started_at", "pk")
    ):
        pending[_echo_key(reply.session_id, reply.msg_type, reply.content)].append(reply)
    if not pending:
        return new
    adopted, really_new = [], []
    for session, letter in new:
        replies = pending.get(_echo_key(session.pk, letter.msg_type, letter.content))
        reply = _sent_before(replies, letter) if letter.is_sender and replies else None
        if reply is None:
            really_new.append((session, letter))
            continue
        replies.remove(reply)
        for name, value in upstream_values(letter).items():
            setattr(reply, name, value)
        reply.delivery = Message.Delivery.SENT
        reply.delivery_error = ""
        reply.maybe_delivered = False
        reply.updated_at = timezone.now()
        adopted.append(reply)
    Message.objects.bulk_update(
        adopted,
        [*ECHO_FIELDS, "new_msg_id", "delivery", "delivery_error", "maybe_delivered", "updated_at"],
    )
    facts.replies_sent(adopted)
    return really_new


# An echo's CreateTime is the upstream's clock (in whole seconds), a claim time is ours: how far
# behind the claim an echo of that send may still seem to be written.
ECHO_CLOCK_SKEW = timedelta(seconds=60)
# A send still "in flight" after this long belongs to a worker that died mid-call
# (services.fail_stuck_sends). The upstream writes the letter while the send's request is open,
# so an echo is never later than this after its claim: a later same-text letter (a picture sent
# from the phone days after a send that never arrived) is another letter.
STUCK_SEND_AFTER = timedelta(minutes=5)


def _sent_before(replies: list[Message], letter: Letter) -> Message | None:
    """The earliest-claimed reply whose send was open when `letter` was written."""
    return next(
        (
            reply
            for reply in replies
            if reply.send_started_at - ECHO_CLOCK_SKEW
            <= letter.created_at
            <= reply.send_started_at + STUCK_SEND_AFTER + ECHO_CLOCK_SKEW
        ),
        None,
    )


def fill_sent_replies(account: Account, echoes: list[Letter]) -> None:
    """Echoes of replies that were sent from here (and so already have their NewMsgId): the
    reply row gains what the upstream knows about it. Nothing else changes."""
    if not echoes:
        return
    by_id = {letter.new_msg_id: letter for letter in echoes}
    replies = list(Message.objects.filter(account=account, new_msg_id__in=by_id, raw__isnull=True))
    for reply in replies:
        for name, value in upstream_values(by_id[reply.new_msg_id]).items():
            setattr(reply, name, value)
    Message.objects.bulk_update(replies, ECHO_FIELDS)


def _echo_key(session_id: int, msg_type: int, content: str) -> tuple:
    # An image reply's echo carries the upstream's XML, not our file: match images on type alone.
    return (session_id, msg_type, content.strip() if msg_type == Message.Type.TEXT else "")


# What the upstream knows about a letter that a reply composed here does not.
ECHO_FIELDS = (
    "msg_id",
    "msg_seq",
    "seq",
    "from_username",
    "to_username",
    "msg_source",
    "ext_info",
    "sub_type",
    "sync_key_type",
    "item_type",
    "upstream_status",
    "img_status",
    "raw",
    "parse_error",
)


def upstream_values(letter: Letter) -> dict:
    return {name: getattr(letter, name) for name in ("new_msg_id", *ECHO_FIELDS)}
