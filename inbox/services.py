"""What staff do to conversations: reply, note, change status, assign, read.

Views parse, authorise and call these; each change that touches several rows is one transaction.
Replies are at-most-once towards the upstream: a composed reply is one row (its client token is
unique), and a send is attempted only by whoever claims the row; when the upstream may have taken
a send without answering, the row fails with that said, and sync's echo of the letter settles it.
They are never lost either: a reply whose send task went missing (the broker was down, a worker
died holding it) is queued again by beat's sweep, and fails visibly after a few tries.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.client import UpstreamRejected, UpstreamUnavailable, VideosApiError
from accounts.crypto import TokenDecryptionError
from inbox import queue
from inbox.echoes import ECHO_FIELDS, STUCK_SEND_AFTER
from inbox.models import Message, Session
from inbox.payloads import Letter, parse_item
from inbox.reports import facts
from inbox.suggestions import pairing
from inbox.sync import is_channels_name, message_from_letter, preview_of
from inbox.team import events as team_events

log = logging.getLogger(__name__)

# The upstream documents no limit for a private letter; 1,000 characters is far below what
# WeChat accepts for a text message and above any answer a support desk writes.
MAX_REPLY_LENGTH = 1000
SEND_RETRY_DELAYS = (5, 20, 60, 180)
MAX_NOTE_LENGTH = 10 * MAX_REPLY_LENGTH
# Pictures from a phone are a few MB; the upstream must fetch the file within its timeout.
MAX_IMAGE_BYTES = 5 << 20


class ReplyError(ValueError):
    """The reply cannot be composed; the message says why, for the composer's form."""


@dataclass(frozen=True)
class SendOutcome:
    """What one delivery attempt did; `retry_in` is set when the task should try again."""

    delivery: str
    retry_in: int | None = None


def compose_reply(
    session: Session, author: AbstractBaseUser, text: str, client_token: uuid.UUID
) -> Message:
    """Create the outgoing letter as "sending" and queue its delivery after commit.

    A second call with the same client token (a double click, a re-posted form) returns the
    first row and queues nothing.
    """
    text = text.strip()
    if not text:
        raise ReplyError(_("Write something before sending."))
    if len(text) > MAX_REPLY_LENGTH:
        raise ReplyError(
            _("A reply can be at most %(limit)d characters; this one has %(length)d.")
            % {"limit": MAX_REPLY_LENGTH, "length": len(text)}
        )
    return _create_once(
        session,
        client_token,
        lambda: _queue_reply(
            _outgoing(session, author, client_token, msg_type=Message.Type.TEXT, content=text)
        ),
    )


def image_replies_enabled() -> bool:
    """Image replies need a public URL the upstream can fetch the file from."""
    return bool(settings.PUBLIC_BASE_URL)


def compose_image_reply(
    session: Session, author: AbstractBaseUser, upload: UploadedFile, client_token: uuid.UUID
) -> Message:
    """Store an uploaded picture under MEDIA_ROOT and queue it like a text reply. The file's
    type comes from its first bytes, never from its name or the browser's word for it."""
    if not image_replies_enabled():
        raise ReplyError(_("Image replies are off: PUBLIC_BASE_URL is not set."))
    if upload.size > MAX_IMAGE_BYTES:
        raise ReplyError(
            _("An image can be at most %(limit)d MB.") % {"limit": MAX_IMAGE_BYTES >> 20}
        )
    extension = image_type(upload.read(16))
    upload.seek(0)
    if extension is None:
        raise ReplyError(_("Only PNG, JPEG, GIF and WebP images can be sent."))

    def create() -> Message:
        reply = _outgoing(session, author, client_token, msg_type=Message.Type.IMAGE)
        reply.attachment.save(f"{uuid.uuid4().hex}.{extension}", upload, save=False)
        return _queue_reply(reply)

    return _create_once(session, client_token, create)


def image_type(head: bytes) -> str | None:
    """The file extension for an image's first bytes, or None if it is not one we send."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpg"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    return None


def public_url(reply: Message) -> str:
    return settings.PUBLIC_BASE_URL.rstrip("/") + reply.attachment.url


def retry_reply(reply: Message) -> bool:
    """Queue a reply again: a failed one, or one that no worker has claimed long after it was
    queued (its task was lost). False for anything else: sent, already retried, being sent."""
    now = timezone.now()
    stalled = Q(
        delivery=Message.Delivery.SENDING,
        send_started_at__isnull=True,
        queued_at__lte=now - requeue_after(),
    )
    with transaction.atomic():
        updated = (
            Message.objects.filter(pk=reply.pk, kind=Message.Kind.LETTER)
            .filter(Q(delivery=Message.Delivery.FAILED) | stalled)
            .update(
                delivery=Message.Delivery.SENDING,
                delivery_error="",
                maybe_delivered=False,
                send_started_at=None,
                queued_at=now,
                requeues=0,
                updated_at=now,
            )
        )
        if updated:
            queue.send_reply_later(reply.pk)
    return bool(updated)


def requeue_after() -> timedelta:
    """How long a queued reply may wait for a worker before its task counts as lost."""
    return timedelta(seconds=settings.REPLY_REQUEUE_AFTER_SECONDS)


def requeue_unclaimed_replies(now: datetime | None = None) -> int:
    """Run by beat: replies still unclaimed REPLY_REQUEUE_AFTER_SECONDS after they were queued.

    Their task is gone: it could not be published (the broker was down), or a worker died holding
    it. Each is queued again (a duplicate task sends nothing: deliver_reply claims the row first)
    and counted; one already queued again REPLY_MAX_REQUEUES times fails instead, as not sent, for
    a person to retry. Timing by queued_at rather than created_at means a reply is queued again
    at most once per interval, and a retried one starts afresh. Returns how many it touched.
    """
    now = now or timezone.now()
    unclaimed = Message.objects.filter(
        delivery=Message.Delivery.SENDING,
        send_started_at__isnull=True,
        queued_at__lte=now - requeue_after(),
    )
    with transaction.atomic():
        failed = unclaimed.filter(requeues__gte=settings.REPLY_MAX_REQUEUES).update(
            delivery=Message.Delivery.FAILED,
            delivery_error=_(
                "Not sent: no worker took this reply from the queue. Is the worker running?"
            ),
            maybe_delivered=False,
            updated_at=now,
        )
        # Locked until commit, so a worker claiming one meanwhile waits; a row a worker is
        # claiming right now is skipped (it is about to be sent).
        ids = list(unclaimed.select_for_update(skip_locked=True).values_list("pk", flat=True))
        Message.objects.filter(pk__in=ids).update(
            queued_at=now, requeues=F("requeues") + 1, updated_at=now
        )
        for message_id in ids:
            queue.send_reply_later(message_id)
    if failed or ids:
        log.warning("reply sweep: %s queued again, %s failed as never sent", len(ids), failed)
    return failed + len(ids)


def deliver_reply(message_id: int, *, attempt: int = 0) -> SendOutcome:
    """Send one "sending" reply to the upstream, at most once. Called by the send_reply task."""
    now = timezone.now()
    claimed = Message.objects.filter(
        pk=message_id, delivery=Message.Delivery.SENDING, send_started_at__isnull=True
    ).update(send_started_at=now, updated_at=now)
    if not claimed:
        # Sent, failed, or another worker holds it: nothing to do, and nothing sent twice.
        return SendOutcome(delivery="skipped")
    reply = Message.objects.select_related("session", "account").get(pk=message_id)
    session = reply.session
    try:
        with reply.account.client() as client:
            identities = {
                "to_username": session.peer_username,
                "my_username": my_identity(session),
                "msg_session_id": session.msg_session_id,
            }
            if reply.msg_type == Message.Type.IMAGE:
                new_msg_id = client.post_private_letter_image(
                    img_url=public_url(reply), **identities
                )
            else:
                new_msg_id = client.post_private_letter(content=reply.content, **identities)
    except UpstreamRejected as exc:
        if exc.needs_operator or attempt >= len(SEND_RETRY_DELAYS):
            return _fail(reply, str(exc))
        return _release_for_retry(reply, str(exc), SEND_RETRY_DELAYS[attempt])
    except UpstreamUnavailable as exc:
        if exc.reached:
            return _fail(
                reply,
                _(
                    "No clear answer from the upstream (%(error)s); the letter may have been "
                    "delivered. "
                    "It turns to sent by itself if it shows up in the next sync."
                )
                % {"error": exc},
                maybe_delivered=True,
            )
        if attempt >= len(SEND_RETRY_DELAYS):
            return _fail(reply, str(exc))
        return _release_for_retry(reply, str(exc), SEND_RETRY_DELAYS[attempt])
    except (VideosApiError, TokenDecryptionError) as exc:
        # A token no configured key opens never left here: the letter was not sent.
        return _fail(reply, str(exc))
    _mark_sent(reply, new_msg_id)
    return SendOutcome(delivery=Message.Delivery.SENT)


def my_identity(session: Session) -> str:
    """Who a reply is from: the Channels identity the peer wrote to. A session only ever seen
    through letters from the account's WeChat id (wxid_…) falls back to the account's own
    Channels name, which "Check connection" learns from getProfile."""
    if is_channels_name(session.my_username):
        return session.my_username
    return session.account.own_username or session.my_username


def fail_stuck_sends(now: datetime | None = None) -> int:
    """Replies whose worker died mid-send: fail them so staff see it (they may have gone out)."""
    now = now or timezone.now()
    return Message.objects.filter(
        delivery=Message.Delivery.SENDING, send_started_at__lt=now - STUCK_SEND_AFTER
    ).update(
        delivery=Message.Delivery.FAILED,
        delivery_error=_("The send was interrupted; the letter may have been delivered."),
        maybe_delivered=True,
        updated_at=now,
    )


def add_note(
    session: Session, author: AbstractBaseUser, text: str, client_token: uuid.UUID
) -> Message:
    """An internal note: shown to staff in the thread, never sent upstream. Like a reply, one
    note per client token."""
    text = text.strip()
    if not text:
        raise ReplyError(_("Write something before saving the note."))
    if len(text) > MAX_NOTE_LENGTH:
        raise ReplyError(
            _("A note can be at most %(limit)d characters.") % {"limit": MAX_NOTE_LENGTH}
        )

    def create() -> Message:
        note = Message.objects.create(
            account_id=session.account_id,
            session=session,
            kind=Message.Kind.NOTE,
            content=text,
            created_at=timezone.now(),
            author=author,
            client_token=client_token,
        )
        _bump(session)
        team_events.note_added(note, author)
        return note

    return _create_once(session, client_token, create)


def set_status(
    session: Session, status: str, actor: AbstractBaseUser, *, snooze_until: datetime | None = None
) -> bool:
    """Move the session to `status` (snoozed needs a future `snooze_until`); record who did it.
    False when nothing changed."""
    if status not in Session.Status.values:
        raise ValueError(f"unknown status {status!r}")
    if status == Session.Status.SNOOZED:
        if snooze_until is None or snooze_until <= timezone.now():
            raise ValueError("snoozing needs a time in the future")
    else:
        snooze_until = None
    if session.status == status and session.snoozed_until == snooze_until:
        return False
    with transaction.atomic():
        session.status = status
        session.snoozed_until = snooze_until
        _bump(session, extra_fields=["status", "snoozed_until"])
        facts.activity_added([_activity(session, actor, STATUS_ACTIVITY[status])])
    return True


STATUS_ACTIVITY = {
    Session.Status.OPEN: Message.Activity.OPENED,
    Session.Status.PENDING: Message.Activity.PENDING,
    Session.Status.RESOLVED: Message.Activity.RESOLVED,
    Session.Status.SNOOZED: Message.Activity.SNOOZED,
}


def assign(session: Session, assignee: AbstractBaseUser | None, actor: AbstractBaseUser) -> bool:
    """Give the session to `assignee` (a member of its account) or to nobody."""
    if assignee is not None and not can_work_on(assignee, session.account_id):
        raise ValueError("the assignee is not a member of this account")
    if session.assignee_id == (assignee.pk if assignee else None):
        return False
    with transaction.atomic():
        session.assignee = assignee
        _bump(session, extra_fields=["assignee"])
        if assignee is None:
            _activity(session, actor, Message.Activity.UNASSIGNED)
        else:
            _activity(session, actor, Message.Activity.ASSIGNED, target=assignee)
            team_events.assigned(session, assignee, actor)
    return True


def can_work_on(user: AbstractBaseUser, account_id: int) -> bool:
    return user.is_active and (
        user.is_superuser or user.finder_accounts.filter(pk=account_id).exists()
    )


def mark_read(session: Session) -> None:
    """Opening a thread reads it for the whole team (like Chatwoot's agent_last_seen_at)."""
    if session.unread_count:
        Session.objects.filter(pk=session.pk).update(unread_count=0, updated_at=timezone.now())
        session.unread_count = 0


def _create_once(
    session: Session, client_token: uuid.UUID, create: Callable[[], Message]
) -> Message:
    """The message this form (its client token) made already, or the one `create` makes now in
    a transaction. Two copies of one form racing in: the unique token lets one row win."""
    existing = _message_with_token(session, client_token)
    if existing:
        return existing
    try:
        with transaction.atomic():
            return create()
    except IntegrityError:
        existing = _message_with_token(session, client_token)
        if existing is None:
            raise
        return existing


def _message_with_token(session: Session, client_token: uuid.UUID) -> Message | None:
    """The message this token made, if it made one in this session. A token used in another
    conversation (a form copied from one thread into another, or forged) is refused: it finds
    nothing here and cannot make a second row."""
    existing = Message.objects.filter(client_token=client_token).first()
    if existing is not None and existing.session_id != session.pk:
        raise ReplyError(
            _("This form was already used in another conversation. Reload the page and try again.")
        )
    return existing


def _outgoing(
    session: Session, author: AbstractBaseUser, client_token: uuid.UUID, **fields
) -> Message:
    return Message(
        account_id=session.account_id,
        session=session,
        kind=Message.Kind.LETTER,
        is_sender=True,
        from_username=session.my_username,
        to_username=session.peer_username,
        created_at=timezone.now(),
        author=author,
        delivery=Message.Delivery.SENDING,
        client_token=client_token,
        queued_at=timezone.now(),
        **fields,
    )


def _queue_reply(reply: Message) -> Message:
    """Save a composed reply, make it the session's newest letter, send it after commit."""
    reply.save()
    pairing.pair_reply(reply)  # suggested replies learn from it (inbox/suggestions/pairing.py)
    _touch_session(session=reply.session, reply=reply)
    queue.send_reply_later(reply.pk)
    return reply


def _touch_session(session: Session, reply: Message) -> None:
    """A reply is the conversation's newest letter: move the session's preview to it. It
    answers the letters before it, so they are read (sync does the same for replies written
    on the phone)."""
    session.last_message_at = reply.created_at
    session.last_message_type = reply.msg_type
    session.last_message_preview = preview_of(reply.msg_type, reply.content)
    session.unread_count = 0
    _bump(
        session,
        extra_fields=[
            "last_message_at",
            "last_message_type",
            "last_message_preview",
            "unread_count",
        ],
    )


def _bump(session: Session, extra_fields: list[str] | tuple = ()) -> None:
    session.updated_at = timezone.now()
    session.save(update_fields=["updated_at", *extra_fields])


def _activity(
    session: Session, actor: AbstractBaseUser, activity: str, target: AbstractBaseUser | None = None
) -> Message:
    line = Message.activity_line(session, activity, author=actor, target=target)
    line.save()
    return line


def _fail(reply: Message, reason: str, *, maybe_delivered: bool = False) -> SendOutcome:
    log.warning("reply %s failed: %s", reply.pk, reason)
    with transaction.atomic():
        if not maybe_delivered:
            _undo_wrong_adoption(reply.pk)
        Message.objects.filter(pk=reply.pk, delivery=Message.Delivery.SENDING).update(
            delivery=Message.Delivery.FAILED,
            delivery_error=reason[:1000],
            maybe_delivered=maybe_delivered,
            updated_at=timezone.now(),
        )
    return SendOutcome(delivery=Message.Delivery.FAILED)


def _release_for_retry(reply: Message, reason: str, delay: int) -> SendOutcome:
    """The upstream refused or could not be reached, so nothing went out: let the task retry.
    The row counts as queued for when the retry is due, so the sweep leaves it alone until then."""
    log.info("reply %s not sent (%s); retrying in %ss", reply.pk, reason, delay)
    now = timezone.now()
    with transaction.atomic():
        _undo_wrong_adoption(reply.pk)
        Message.objects.filter(pk=reply.pk, delivery=Message.Delivery.SENDING).update(
            send_started_at=None,
            delivery_error=reason[:1000],
            queued_at=now + timedelta(seconds=delay),
            updated_at=now,
        )
    return SendOutcome(delivery=Message.Delivery.SENDING, retry_in=delay)


def _undo_wrong_adoption(reply_id: int, *, sent_as: int | None = None) -> None:
    """Sync matches an outgoing letter to a reply in flight by its text (see echoes.adopt_echoes).
    If the send's answer then says otherwise (a refusal, or another newMsgId than `sent_as`),
    that letter was another one with the same text, sent from the phone: it gets a row of its
    own, and the reply is back to sending, without upstream ids, for the answer to be recorded.
    Call inside a transaction."""
    reply = Message.objects.select_for_update().get(pk=reply_id)
    if reply.new_msg_id is None or reply.new_msg_id == sent_as or reply.raw is None:
        return
    letter = parse_item(reply.raw)
    if isinstance(letter, Letter):
        log.warning(
            "reply %s: letter %s was taken for its echo but is another one; kept on its own",
            reply.pk,
            letter.new_msg_id,
        )
        reply.new_msg_id = None  # frees the id for the letter's own row
        reply.save(update_fields=["new_msg_id"])
        message_from_letter(reply.account, reply.session, letter).save()
    Message.objects.filter(pk=reply.pk).update(
        delivery=Message.Delivery.SENDING, **_without_upstream_ids(reply)
    )
    facts.sessions_changed([reply.session_id])


def _without_upstream_ids(reply: Message) -> dict:
    """The field values that take back an echo a reply was matched to: no NewMsgId, none of the
    letter's upstream fields, the session's identities as when the reply was composed."""
    blank = Message()
    return {
        "new_msg_id": None,
        **{name: getattr(blank, name) for name in ECHO_FIELDS},
        "from_username": reply.session.my_username,
        "to_username": reply.session.peer_username,
    }


def _mark_sent(reply: Message, new_msg_id: int) -> None:
    """Record the upstream's id. If sync already stored the echo as a separate row (it could not
    match it to this reply), that row merges into this one: one letter, one row."""
    now = timezone.now()
    with transaction.atomic():
        _undo_wrong_adoption(reply.pk, sent_as=new_msg_id)
        echo = (
            Message.objects.select_for_update()
            .filter(account_id=reply.account_id, new_msg_id=new_msg_id)
            .exclude(pk=reply.pk)
            .first()
        )
        upstream_fields = {}
        if echo is not None:
            upstream_fields = {name: getattr(echo, name) for name in ECHO_FIELDS}
            if echo.client_token is None:
                echo.delete()  # the row sync stored for this letter before the answer came
            else:
                # Another reply of the same text, whose send had also begun, was matched to this
                # letter; the upstream says it is this reply's. That one is again what it was
                # before: it may have been delivered, and only its own echo can say.
                Message.objects.filter(pk=echo.pk).update(
                    delivery=Message.Delivery.FAILED,
                    maybe_delivered=True,
                    delivery_error=_(
                        "The upstream's answer did not come; the letter may have been delivered."
                    ),
                    updated_at=now,
                    **_without_upstream_ids(echo),
                )
        Message.objects.filter(pk=reply.pk).update(
            new_msg_id=new_msg_id,
            delivery=Message.Delivery.SENT,
            delivery_error="",
            maybe_delivered=False,
            updated_at=now,
            **upstream_fields,
        )
        if echo is not None:
            # The echo counted as a reply from the phone; it is this reply, by its author.
            facts.sessions_changed([reply.session_id])
        else:
            facts.replies_sent([reply])


def reopen_due_snoozed_sessions(now: datetime | None = None) -> int:
    """Snoozed sessions whose time has come are open again (run by beat), each with an activity
    line; returns how many. The rows are locked first, so one a person reopens or re-snoozes
    meanwhile waits and is then left as it is."""
    now = now or timezone.now()
    with transaction.atomic():
        due = list(
            Session.objects.select_for_update()
            .filter(status=Session.Status.SNOOZED, snoozed_until__lte=now)
            .only(
                "pk",
                "account_id",
                "assignee_id",
                "msg_session_id",
                "peer_username",
                "peer_nickname",
            )
        )
        Session.objects.filter(pk__in=[session.pk for session in due]).update(
            status=Session.Status.OPEN, snoozed_until=None, updated_at=now
        )
        facts.activity_added(
            Message.objects.bulk_create(
                [Message.activity_line(session, Message.Activity.OPENED, at=now) for session in due]
            )
        )
        team_events.snoozes_ended(due)
    return len(due)
