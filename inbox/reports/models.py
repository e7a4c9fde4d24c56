"""The facts reports read, written by inbox.reports.facts in the same transaction as the change
that makes them; `manage.py rebuild_report_facts` recomputes them from the messages.

These models belong to the inbox app (inbox/models.py imports this module), so their tables and
migrations are inbox's."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from accounts.models import Account
from inbox.models import Message, Session

# Facts are derived: `rebuild_report_facts` makes them again from the messages, and Django's
# on_delete still removes or clears them with what they point at. So their references carry no
# database constraint (a sync page's commit ran ~2,000 foreign-key checks for them) and no index
# of their own where a composite index leads with the column or nothing reads by it (deleting a
# user or an account then scans the facts once: rare, and well under a second).
DERIVED = {"db_constraint": False, "db_index": False}


class Episode(models.Model):
    """One conversation in the reports' sense: a session from the viewer letter (or the reopen
    by staff) that opens it to its resolution. A session has one open episode at most."""

    session = models.ForeignKey(
        Session, on_delete=models.CASCADE, related_name="episodes", **DERIVED
    )
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="+", **DERIVED)
    opened_at = models.DateTimeField()
    # The episode's first viewer letter (None for a reopen that no letter has followed yet).
    first_letter_at = models.DateTimeField(null=True, blank=True)
    first_response_at = models.DateTimeField(null=True, blank=True)
    # Who answered first: an agent, or None with first_response_at set for the account itself
    # (a reply written on the phone, which sync brings in).
    first_responder = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        **DERIVED,
    )
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolver = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        **DERIVED,
    )
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text=_("The assignee when the conversation was resolved."),
        **DERIVED,
    )
    incoming = models.PositiveIntegerField(default=0)
    replies = models.PositiveIntegerField(default=0)
    # The first viewer letter not answered yet (a reply-time sample starts here); None when the
    # viewer's letters are all answered.
    awaiting_since = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            # figures.read_samples(): conversations opened in the range (and the conversations
            # CSV, keyset-paged on it).
            models.Index(fields=["opened_at", "account"], name="inbox_episode_opened"),
            # figures.sample_querysets(): first responses in the range, read from the index alone.
            models.Index(
                fields=["first_response_at", "account"],
                include=["first_responder", "first_letter_at"],
                condition=models.Q(first_response_at__isnull=False),
                name="inbox_episode_first_response",
            ),
            # figures.sample_querysets(): resolutions in the range, read from the index alone.
            models.Index(
                fields=["resolved_at", "account"],
                include=["resolver", "opened_at"],
                condition=models.Q(resolved_at__isnull=False),
                name="inbox_episode_resolved",
            ),
            # facts: a session's episodes in order (the replay and the per-session reads).
            models.Index(fields=["session", "opened_at"], name="inbox_episode_session"),
        ]

    def __str__(self) -> str:
        return f"episode {self.pk} of session {self.session_id}"


class ReplyFact(models.Model):
    """A reply sent by a person (an agent here, or the account on its phone) and, when it
    answered waiting viewer letters, since when they waited (a reply-time sample)."""

    message = models.OneToOneField(
        Message, on_delete=models.CASCADE, related_name="+", db_constraint=False
    )
    session = models.ForeignKey(Session, on_delete=models.CASCADE, related_name="+", **DERIVED)
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="+", **DERIVED)
    # Indexed: deleting an episode clears its replies' episode by this column.
    episode = models.ForeignKey(
        Episode, on_delete=models.SET_NULL, null=True, related_name="+", db_constraint=False
    )
    # None: the account on its phone.
    responder = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        **DERIVED,
    )
    sent_at = models.DateTimeField()
    waited_from = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            # figures.sample_querysets(): replies (and reply-time samples) in the range, read
            # from the index alone.
            models.Index(
                fields=["sent_at", "account"],
                include=["responder", "waited_from"],
                name="inbox_replyfact_sent",
            ),
            # facts._replay(): a session's replies.
            models.Index(fields=["session"], name="inbox_replyfact_session"),
        ]


class TimelineState(models.Model):
    """How far facts.py has folded a session's timeline: the newest event's key, and its
    latest episode. An event older than the key makes the session's facts be replayed."""

    session = models.OneToOneField(
        Session, on_delete=models.CASCADE, primary_key=True, related_name="+", db_constraint=False
    )
    last_at = models.DateTimeField()
    last_rank = models.SmallIntegerField()
    episode = models.ForeignKey(
        Episode, on_delete=models.SET_NULL, null=True, related_name="+", db_constraint=False
    )


class LetterHour(models.Model):
    """Incoming letters and replies per account and hour (UTC hour start): the volume chart and
    the heatmap read these instead of the message table."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="+")
    hour = models.DateTimeField()
    incoming = models.IntegerField(default=0)
    replies = models.IntegerField(default=0)

    class Meta:
        constraints = [
            # fact_rows.add_to_hours()' upsert key; also figures.read_samples()' hours by account.
            models.UniqueConstraint(fields=["account", "hour"], name="inbox_letterhour_unique"),
        ]
        indexes = [
            # figures.read_samples() for all accounts: the hours in the range.
            models.Index(fields=["hour"], name="inbox_letterhour_range"),
        ]


class BusinessHours(models.Model):
    """When an account's team works, in INBOX_TIME_ZONE: one span per weekday, empty when the
    team does not work that day. Accounts without a row use Monday to Friday, 9:00 to 18:00."""

    account = models.OneToOneField(
        Account, on_delete=models.CASCADE, related_name="business_hours", verbose_name=_("account")
    )
    monday_opens = models.TimeField(_("Monday opens"), null=True, blank=True)
    monday_closes = models.TimeField(_("Monday closes"), null=True, blank=True)
    tuesday_opens = models.TimeField(_("Tuesday opens"), null=True, blank=True)
    tuesday_closes = models.TimeField(_("Tuesday closes"), null=True, blank=True)
    wednesday_opens = models.TimeField(_("Wednesday opens"), null=True, blank=True)
    wednesday_closes = models.TimeField(_("Wednesday closes"), null=True, blank=True)
    thursday_opens = models.TimeField(_("Thursday opens"), null=True, blank=True)
    thursday_closes = models.TimeField(_("Thursday closes"), null=True, blank=True)
    friday_opens = models.TimeField(_("Friday opens"), null=True, blank=True)
    friday_closes = models.TimeField(_("Friday closes"), null=True, blank=True)
    saturday_opens = models.TimeField(_("Saturday opens"), null=True, blank=True)
    saturday_closes = models.TimeField(_("Saturday closes"), null=True, blank=True)
    sunday_opens = models.TimeField(_("Sunday opens"), null=True, blank=True)
    sunday_closes = models.TimeField(_("Sunday closes"), null=True, blank=True)

    DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")

    class Meta:
        verbose_name = _("business hours")
        verbose_name_plural = _("business hours")

    def __str__(self) -> str:
        return str(self.account)

    def spans(self) -> list[tuple | None]:
        """(opens, closes) per weekday, Monday first; None for a day off."""
        result = []
        for day in self.DAYS:
            opens, closes = getattr(self, f"{day}_opens"), getattr(self, f"{day}_closes")
            result.append((opens, closes) if opens and closes and opens < closes else None)
        return result


class Holiday(models.Model):
    """A day nobody works (business-hours figures skip it); without an account, for all."""

    date = models.DateField(_("date"))
    name = models.CharField(_("name"), max_length=100, blank=True)
    account = models.ForeignKey(
        Account,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="holidays",
        verbose_name=_("account"),
        help_text=_("Leave empty for a holiday of every account."),
    )

    class Meta:
        ordering = ["date"]
        verbose_name = _("holiday")
        verbose_name_plural = _("holidays")

    def __str__(self) -> str:
        return f"{self.date} {self.name}"
