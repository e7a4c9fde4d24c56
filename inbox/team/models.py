"""The team's tables: notifications and who wants which, @mentions in notes, and each account's
auto-assignment policy with the conversations waiting for an agent."""

from __future__ import annotations

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.models import Account
from inbox.models import Message, Session

# A notification keeps a short line of what happened (a name and the letter's first words), as it
# was then: the bell shows it without reading the letter again.
NOTIFICATION_TEXT_LENGTH = 200


class Kind(models.TextChoices):
    NEW_CONVERSATION = "new_conversation", _("New conversation in my accounts")
    ASSIGNED = "assigned", _("Conversation assigned to me")
    NEW_LETTER = "new_letter", _("New letter in a conversation assigned to me")
    MENTION = "mention", _("Someone mentioned me in a note")
    SNOOZE_ENDED = "snooze_ended", _("A snooze ended")


class Notification(models.Model):
    """One thing one agent should know about, in their bell until they read it."""

    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    kind = models.CharField(max_length=24, choices=Kind.choices)
    # The conversation's account, kept on the row so the bell can leave out, in the same indexed
    # query, the accounts its reader is no longer a member of.
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="+")
    session = models.ForeignKey(Session, on_delete=models.CASCADE, related_name="+")
    # The note that mentioned the recipient.
    message = models.ForeignKey(
        Message, on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    # Who did it; None when it happened by itself (a letter came in, a snooze ran out).
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    text = models.CharField(max_length=NOTIFICATION_TEXT_LENGTH, blank=True)
    # What the recipient's preferences asked for when it was made, besides the bell.
    browser = models.BooleanField(default=False)
    sound = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("notification")
        verbose_name_plural = _("notifications")
        indexes = [
            # The bell's dropdown: a user's newest notifications.
            models.Index(fields=["recipient", "-id"], name="team_notification_recent"),
            # The bell's badge and its poll: a user's newest unread ones, counted up to a limit.
            models.Index(
                fields=["recipient", "-id"],
                condition=models.Q(read_at__isnull=True),
                name="team_notification_unread",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} → {self.recipient_id}"


class NotificationPreference(models.Model):
    """What one agent wants for one kind of event; without a row, the kind's defaults
    (inbox.team.notifications.DEFAULTS)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=24, choices=Kind.choices)
    in_app = models.BooleanField(_("in the bell"))
    browser = models.BooleanField(_("browser notification"))
    sound = models.BooleanField(_("sound"))

    class Meta:
        verbose_name = _("notification preference")
        verbose_name_plural = _("notification preferences")
        constraints = [
            models.UniqueConstraint(fields=["user", "kind"], name="team_preference_unique_kind"),
        ]

    def __str__(self) -> str:
        return f"{self.user_id}/{self.kind}"


class Mention(models.Model):
    """A member of the account named with @username in an internal note."""

    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")

    class Meta:
        constraints = [
            # Also the thread's lookup of its notes' mentions (by message).
            models.UniqueConstraint(fields=["message", "user"], name="team_mention_unique_user"),
        ]

    def __str__(self) -> str:
        return f"{self.message_id}@{self.user_id}"


class AssignmentPolicy(models.Model):
    """How an account's new conversations find an agent."""

    class Mode(models.TextChoices):
        OFF = "off", _("Off")
        ROUND_ROBIN = "round_robin", _("Round-robin")
        LEAST_BUSY = "least_busy", _("Least busy")

    account = models.OneToOneField(
        Account, on_delete=models.CASCADE, related_name="assignment_policy"
    )
    mode = models.CharField(
        _("auto-assignment"), max_length=16, choices=Mode.choices, default=Mode.OFF
    )
    cap_per_agent = models.PositiveIntegerField(
        _("open conversations per agent"),
        default=10,
        validators=[MinValueValidator(1)],
        help_text=_(
            "Auto-assignment gives nobody more open conversations of this account than this."
        ),
    )
    # Round-robin goes on from the agent after this one.
    last_assigned = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        editable=False,
    )

    class Meta:
        verbose_name = _("auto-assignment")
        verbose_name_plural = _("auto-assignment")

    def __str__(self) -> str:
        return str(self.get_mode_display())


class AgentCap(models.Model):
    """One member's own cap in one account, instead of the policy's."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="agent_caps")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="+",
        verbose_name=_("agent"),
    )
    cap = models.PositiveIntegerField(_("open conversations at most"))

    class Meta:
        verbose_name = _("cap for one agent")
        verbose_name_plural = _("caps for single agents")
        constraints = [
            models.UniqueConstraint(fields=["account", "user"], name="team_agentcap_unique_user"),
        ]

    def __str__(self) -> str:
        return f"{self.user_id}: {self.cap}"


class WaitingConversation(models.Model):
    """A conversation a viewer's letter opened while its account assigns automatically, not
    assigned yet (nobody online under their cap). Assigned oldest first when someone is."""

    session = models.OneToOneField(
        Session, on_delete=models.CASCADE, primary_key=True, related_name="+"
    )
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="+", db_index=False)
    queued_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [
            # assignment.assign_waiting(): an account's waiting conversations, oldest first.
            models.Index(fields=["account", "queued_at"], name="team_waiting_account_oldest"),
        ]

    def __str__(self) -> str:
        return str(self.session_id)
