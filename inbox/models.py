"""The conversation domain: a Session per msgSessionId, its Messages, and what staff do to them."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import F, Value
from django.db.models.functions import Coalesce
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.models import Account
from inbox.fields import Uint64Field
from inbox.payloads import ImageMeta

PREVIEW_LENGTH = 120
# A thread's order within one second: letters without an upstream seq (notes, activity lines,
# replies not echoed yet) first. seq is a small non-negative counter, so -1 sorts like NULLS FIRST
# and, unlike NULL, compares in a row value.
THREAD_SEQ = Coalesce(F("seq"), Value(-1))


class SessionQuerySet(models.QuerySet):
    def visible_to(self, user) -> SessionQuerySet:
        if user.is_superuser:
            return self
        return self.filter(account__members=user)


class Session(models.Model):
    """One private-letter conversation between an account and one peer (upstream msgSessionId)."""

    class Status(models.TextChoices):
        OPEN = "open", _("Open")
        PENDING = "pending", _("Pending")
        RESOLVED = "resolved", _("Resolved")
        SNOOZED = "snoozed", _("Snoozed")

    # No index of its own: every index below starts with the account already, and each extra
    # index is written on every new letter's session update.
    account = models.ForeignKey(
        Account, on_delete=models.CASCADE, related_name="sessions", db_index=False
    )
    msg_session_id = models.CharField(_("session id"), max_length=200)
    peer_username = models.CharField(_("peer"), max_length=200, blank=True)
    peer_nickname = models.CharField(_("peer nickname"), max_length=200, blank=True)
    # The account identity the peer wrote to (an account has several); replies go out as it.
    my_username = models.CharField(_("our identity"), max_length=200, blank=True)

    last_message_at = models.DateTimeField(_("last message"))
    last_message_preview = models.CharField(_("preview"), max_length=PREVIEW_LENGTH, blank=True)
    # The preview of a non-text message is its type, worded in the reader's language at render.
    last_message_type = models.IntegerField(null=True, blank=True)
    unread_count = models.PositiveIntegerField(_("unread"), default=0)
    # Bumped on every change the session list shows; the list's live poll asks "changed since?".
    updated_at = models.DateTimeField(_("updated"), auto_now=True, db_index=False)

    status = models.CharField(
        _("status"), max_length=16, choices=Status.choices, default=Status.OPEN
    )
    snoozed_until = models.DateTimeField(_("snoozed until"), null=True, blank=True)
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="assigned_sessions",
        verbose_name=_("assignee"),
    )
    created_at = models.DateTimeField(auto_now_add=True)

    objects = SessionQuerySet.as_manager()

    class Meta:
        verbose_name = _("session")
        verbose_name_plural = _("sessions")
        constraints = [
            models.UniqueConstraint(
                fields=["account", "msg_session_id"], name="inbox_session_unique_upstream_id"
            ),
        ]
        indexes = [
            # The session list of an account, newest activity first, keyset-paged on (time, pk).
            models.Index(
                fields=["account", "-last_message_at", "-id"], name="inbox_session_account_latest"
            ),
            # The list's views, per account, in the same order (browse.session_page): each view's
            # page is one index range however rare its sessions are. Status tabs:
            models.Index(
                fields=["account", "status", "-last_message_at", "-id"],
                name="inbox_session_status_latest",
            ),
            # "Mine" (assignee = me):
            models.Index(
                fields=["account", "assignee", "-last_message_at", "-id"],
                condition=models.Q(assignee__isnull=False),
                name="inbox_session_mine_latest",
            ),
            # "Unassigned" (IS NULL is no equality, so the assignee index would not give the order):
            models.Index(
                fields=["account", "-last_message_at", "-id"],
                condition=models.Q(assignee__isnull=True),
                name="inbox_session_nobody_latest",
            ),
            # "Unread":
            models.Index(
                fields=["account", "-last_message_at", "-id"],
                condition=models.Q(unread_count__gt=0),
                name="inbox_session_unread_latest",
            ),
            # The live poll of the session list: "what changed since T?".
            models.Index(fields=["updated_at"], name="inbox_session_updated"),
            # Beat's reopen_due_snoozed_sessions(): snoozed sessions whose time has come.
            models.Index(
                fields=["snoozed_until"],
                condition=models.Q(status="snoozed"),
                name="inbox_session_snoozed_due",
            ),
            # contacts.backfill_nicknames(): the sessions still without a nickname, read a batch
            # at a time. Partial, so the named sessions most updates touch never enter it.
            models.Index(
                fields=["account", "peer_username"],
                condition=models.Q(peer_nickname=""),
                name="inbox_session_unnamed_peer",
            ),
        ]

    def __str__(self) -> str:
        return self.display_name

    def get_absolute_url(self) -> str:
        return reverse("inbox:thread", args=[self.pk])

    @property
    def display_name(self) -> str:
        if self.peer_nickname:
            return self.peer_nickname
        name = self.peer_username or self.msg_session_id
        # v2_060000231003b20f…@finder is unreadable whole; its head and tail tell peers apart.
        return f"{name[:10]}…{name[-12:]}" if len(name) > 26 else name


class SessionName(models.Model):
    """The names search finds a conversation by (the peer's nickname and user name, the upstream
    session id), copies of its session's columns in a narrow table of their own.

    Their trigram and search-vector GIN indexes (migration 0018) hold about 150 entries per
    session. On the session row they were written again by every session update, since sync's
    update moves indexed columns (last_message_at) and so is never HOT: most of a sync page's
    session update went to rewriting names that had not changed. Here they are written when a
    session is inserted and when one of its names changes, by database triggers on inbox_session
    (inbox/session_names.py), so no write path can leave them stale.
    """

    session = models.OneToOneField(
        Session, on_delete=models.CASCADE, primary_key=True, related_name="search_names"
    )
    peer_nickname = models.CharField(max_length=200, blank=True)
    peer_username = models.CharField(max_length=200, blank=True)
    msg_session_id = models.CharField(max_length=200)

    def __str__(self) -> str:
        return self.peer_nickname or self.peer_username or self.msg_session_id


class Message(models.Model):
    """One private letter as the upstream delivered it, or an outgoing reply, note or activity
    line that staff made here. Upstream letters are unique per (account, NewMsgId)."""

    class Kind(models.TextChoices):
        LETTER = "letter", _("Letter")
        NOTE = "note", _("Internal note")
        ACTIVITY = "activity", _("Activity")

    class Activity(models.TextChoices):
        OPENED = "opened", _("reopened this conversation")
        PENDING = "pending", _("marked this conversation pending")
        RESOLVED = "resolved", _("resolved this conversation")
        SNOOZED = "snoozed", _("snoozed this conversation")
        ASSIGNED = "assigned", _("assigned this conversation")
        UNASSIGNED = "unassigned", _("unassigned this conversation")
        LABELED = "labeled", _("added a label")
        UNLABELED = "unlabeled", _("removed a label")

    class Delivery(models.TextChoices):
        RECEIVED = "received", _("Received")  # came in through sync (either direction)
        SENDING = "sending", _("Sending")
        SENT = "sent", _("Sent")
        FAILED = "failed", _("Failed")

    class Type(models.IntegerChoices):
        TEXT = 1, _("Text")
        IMAGE = 3, _("Image")
        VOICE = 34, _("Voice")
        CONTACT_CARD = 42, _("Contact card")
        VIDEO = 43, _("Video")
        EMOJI = 47, _("Sticker")
        APP = 49, _("App message")
        SYSTEM = 10000, _("System notice")
        RECALL = 10002, _("Recall")

    # No single-column indexes on these two: inbox_message_unique_new_msg_id starts with the
    # account and inbox_message_thread_position with the session, and serve their lookups and
    # cascades; each extra index is written for every letter stored.
    account = models.ForeignKey(
        Account, on_delete=models.CASCADE, related_name="messages", db_index=False
    )
    session = models.ForeignKey(
        Session, on_delete=models.CASCADE, related_name="messages", db_index=False
    )
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.LETTER)

    # Upstream identity. NULL for notes, activity lines and replies not yet accepted upstream.
    new_msg_id = Uint64Field(_("NewMsgId"), null=True, blank=True)
    msg_id = models.BigIntegerField(_("MsgId"), null=True, blank=True)
    msg_seq = models.BigIntegerField(_("MsgSeq"), null=True, blank=True)
    seq = models.BigIntegerField(_("seq"), null=True, blank=True)

    msg_type = models.IntegerField(_("type"), default=Type.TEXT)
    is_sender = models.BooleanField(_("sent by the account"), default=False)
    from_username = models.CharField(_("from"), max_length=200, blank=True)
    to_username = models.CharField(_("to"), max_length=200, blank=True)
    content = models.TextField(_("content"), blank=True)
    created_at = models.DateTimeField(_("created"))
    msg_source = models.TextField(_("MsgSource"), blank=True)
    ext_info = models.CharField(_("extinfo"), max_length=500, blank=True)
    # Undocumented upstream numbers, kept as they came.
    sub_type = models.IntegerField(null=True, blank=True)
    sync_key_type = models.IntegerField(null=True, blank=True)
    item_type = models.IntegerField(null=True, blank=True)
    upstream_status = models.IntegerField(null=True, blank=True)
    img_status = models.IntegerField(null=True, blank=True)

    # Parsed from the content: the image's CDN metadata (MsgType 3), an app message's title (49).
    image_meta = models.JSONField(_("image metadata"), null=True, blank=True)
    title = models.CharField(_("title"), max_length=500, blank=True)
    app_type = models.IntegerField(_("app message type"), null=True, blank=True)

    raw = models.JSONField(_("raw item"), null=True, blank=True)
    parse_error = models.TextField(_("parse error"), blank=True)
    stored_at = models.DateTimeField(_("stored"), auto_now_add=True)

    # Replies, notes and activity lines made here.
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("author"),
    )
    delivery = models.CharField(max_length=16, choices=Delivery.choices, default=Delivery.RECEIVED)
    delivery_error = models.TextField(_("delivery error"), blank=True)
    # A failed send whose request may have reached the upstream (no answer came back): retrying
    # it could deliver the letter twice, so the Retry button asks first.
    maybe_delivered = models.BooleanField(default=False)
    # Set when a worker claims the reply to send it: a second claim finds it set and sends nothing.
    send_started_at = models.DateTimeField(null=True, blank=True, editable=False)
    # When the reply's newest send task was queued (a delayed retry: when it is due). A reply no
    # worker has claimed a while after this lost its task; beat's sweep queues it again.
    queued_at = models.DateTimeField(null=True, blank=True, editable=False)
    # How many times the sweep has queued it again; past REPLY_MAX_REQUEUES it fails instead.
    requeues = models.PositiveSmallIntegerField(default=0, editable=False)
    # One per composed reply: the form carries it, so a double submit finds the first row.
    client_token = models.UUIDField(null=True, blank=True, editable=False)
    # An image reply's file, under MEDIA_ROOT; the upstream fetches it from PUBLIC_BASE_URL.
    attachment = models.FileField(upload_to="replies/%Y/%m/", blank=True)
    # Activity lines: what happened (`activity`), and to whom (`activity_user`, for assignment).
    activity = models.CharField(max_length=32, choices=Activity.choices, blank=True)
    activity_user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    # What else the line names, as it was then (a label's name): renaming or deleting the label
    # later does not rewrite the thread's history.
    activity_detail = models.CharField(max_length=200, blank=True)

    # An image letter's picture, as downloadImage returned it (valid for days, not for ever).
    image_url = models.URLField(max_length=2000, blank=True)
    image_url_expires_at = models.DateTimeField(null=True, blank=True)
    image_error = models.CharField(max_length=500, blank=True)
    # When a download of the picture was queued: one at a time per letter, however often "Load
    # image" is clicked; the claim expires on its own if its task is lost (inbox.images).
    image_fetch_started_at = models.DateTimeField(null=True, blank=True)
    # Bumped on every change a thread shows (delivery state); the thread's poll asks for it.
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("message")
        verbose_name_plural = _("messages")
        constraints = [
            # Exactly once: sync inserts only NewMsgIds this account does not have yet.
            models.UniqueConstraint(
                fields=["account", "new_msg_id"], name="inbox_message_unique_new_msg_id"
            ),
            models.UniqueConstraint(
                fields=["client_token"], name="inbox_message_unique_client_token"
            ),
        ]
        indexes = [
            # A thread in order (create time, then seq, NULL first), keyset-paged from either end
            # with one row comparison (browse.thread_position): an index range at any depth.
            models.Index(
                F("session"),
                F("created_at"),
                THREAD_SEQ,
                F("id"),
                name="inbox_message_thread_position",
            ),
            # The thread's live poll: "what changed in this session since T?".
            models.Index(fields=["session", "updated_at"], name="inbox_message_thread_changed"),
            # Beat's reply sweeps (requeue_unclaimed_replies, fail_stuck_sends): the few replies
            # still sending, found without reading through every letter.
            models.Index(
                fields=["send_started_at", "queued_at"],
                condition=models.Q(delivery="sending"),
                name="inbox_message_sending_sweep",
            ),
            # echoes.adopt_echoes: the replies composed here that have no NewMsgId yet, in the
            # page's sessions. Without it every page read through all rows without a NewMsgId
            # (every note and activity line). A synced letter always has one and never enters.
            models.Index(
                fields=["session", "send_started_at"],
                condition=models.Q(new_msg_id__isnull=True, send_started_at__isnull=False),
                name="inbox_message_echo_candidates",
            ),
            # search.search(): the newest text letters and notes first, walked until enough hit
            # (common terms); the boundary of that walk is read from this index alone.
            models.Index(
                fields=["-created_at", "-id"],
                include=["account", "kind"],
                condition=models.Q(msg_type=1),
                name="inbox_message_search_recent",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.new_msg_id or self.pk}"

    @classmethod
    def activity_line(
        cls, session: Session, activity: str, *, author=None, target=None, at=None
    ) -> Message:
        """An unsaved activity line for the thread ("李四 resolved this conversation"); without
        an author the change was automatic (a new letter, a snooze running out)."""
        return cls(
            account_id=session.account_id,
            session=session,
            kind=cls.Kind.ACTIVITY,
            activity=activity,
            author=author,
            activity_user=target,
            created_at=at or timezone.now(),
        )

    @property
    def image(self) -> ImageMeta | None:
        """An image letter's CDN metadata. An app message keeps its share card in the same
        column, under "card" (inbox.share_cards): that is no image."""
        if not self.image_meta or "card" in self.image_meta:
            return None
        return ImageMeta.from_dict(self.image_meta)

    @property
    def is_incoming(self) -> bool:
        return self.kind == self.Kind.LETTER and not self.is_sender


class CannedReply(models.Model):
    """A saved answer staff insert with `/` in the composer; without an account, for all."""

    title = models.CharField(_("title"), max_length=100)
    text = models.TextField(_("text"))
    account = models.ForeignKey(
        Account,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="canned_replies",
        verbose_name=_("account"),
        help_text=_("Leave empty to offer it in every account."),
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["title", "pk"]
        verbose_name = _("canned reply")
        verbose_name_plural = _("canned replies")

    def __str__(self) -> str:
        return self.title


class QuarantinedItem(models.Model):
    """An upstream item that could not become a Message (no usable NewMsgId or msgSessionId),
    kept raw with the reason so an admin can see what the upstream sent. The fingerprint (a hash of
    the raw item) keeps re-deliveries from piling up copies."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="quarantined")
    fingerprint = models.CharField(max_length=64)
    raw = models.JSONField(null=True, blank=True)
    error = models.TextField()
    stored_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("quarantined item")
        verbose_name_plural = _("quarantined items")
        constraints = [
            models.UniqueConstraint(
                fields=["account", "fingerprint"], name="inbox_quarantineditem_unique_item"
            ),
        ]

    def __str__(self) -> str:
        return self.error[:80]


class SessionCounter(models.Model):
    """How many sessions, and how many unread letters, one (account, status, assignee, unread or
    not) holds: the sidebar's and the tabs' counts, read from a few rows instead of counted over
    every session on every request.

    Database triggers on inbox_session keep these rows in step with every write, in the same
    transaction, whichever code path makes it (inbox/counters.py says why);
    `manage.py rebuild_counters` recounts them. Rows are per account, so sync workers of
    different accounts never wait on one another here.
    """

    # No foreign key constraints: the triggers write these columns as plain numbers, also while
    # an account or a user is being deleted (their sessions' rows go, or lose their assignee,
    # in the same transaction).
    account = models.ForeignKey(
        Account,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="session_counters",
    )
    status = models.CharField(max_length=16, choices=Session.Status.choices)
    # The assignee's user id; 0 for unassigned (NULL would not be one key in a unique index).
    assignee_id = models.IntegerField(default=0)
    has_unread = models.BooleanField()
    sessions = models.IntegerField(default=0)
    unread = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            # The triggers' upsert key; also serves the sidebar's read by account.
            models.UniqueConstraint(
                fields=["account", "status", "assignee_id", "has_unread"],
                name="inbox_sessioncounter_unique_key",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.account_id}/{self.status}/{self.assignee_id}/{self.has_unread}"


# The reports' facts are inbox models too (their tables and migrations are this app's).
from inbox.reports.models import (  # noqa: E402, F401
    BusinessHours,
    Episode,
    Holiday,
    LetterHour,
    ReplyFact,
    TimelineState,
)
