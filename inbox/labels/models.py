"""Labels staff put on conversations ("退款", "VIP"), and which conversation carries which.

A label belongs to one account, or to none: then every account may use it. Its colour is a name
from a fixed palette that the stylesheet turns into a class (the Content-Security-Policy allows no
inline styles). The open conversations per label and account are counted by database triggers
(inbox/labels/counters.py), not on each request.
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models.functions import Lower
from django.utils.translation import gettext_lazy as _

from accounts.models import Account
from inbox.models import Session

NAME_LENGTH = 50


class LabelQuerySet(models.QuerySet):
    def for_accounts(self, account_ids) -> LabelQuerySet:
        """The labels sessions of these accounts may carry: theirs and the shared ones."""
        return self.filter(models.Q(account__isnull=True) | models.Q(account_id__in=account_ids))


class Label(models.Model):
    class Colour(models.TextChoices):
        GREY = "grey", _("Grey")
        RED = "red", _("Red")
        ORANGE = "orange", _("Orange")
        YELLOW = "yellow", _("Yellow")
        GREEN = "green", _("Green")
        TEAL = "teal", _("Teal")
        BLUE = "blue", _("Blue")
        PURPLE = "purple", _("Purple")
        PINK = "pink", _("Pink")

    name = models.CharField(_("name"), max_length=NAME_LENGTH)
    colour = models.CharField(_("colour"), max_length=16, choices=Colour.choices, default="blue")
    account = models.ForeignKey(
        Account,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="labels",
        verbose_name=_("account"),
        help_text=_("Leave empty to offer it in every account."),
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("created by"),
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    objects = LabelQuerySet.as_manager()

    class Meta:
        ordering = [Lower("name"), "pk"]
        verbose_name = _("label")
        verbose_name_plural = _("labels")
        constraints = [
            # One "退款" per account, whatever the case ("VIP" and "vip" are one label)...
            models.UniqueConstraint(
                Lower("name"),
                "account",
                condition=models.Q(account__isnull=False),
                name="labels_label_unique_name_per_account",
            ),
            # ...and one among the shared labels (NULLs never clash in a unique index).
            models.UniqueConstraint(
                Lower("name"),
                condition=models.Q(account__isnull=True),
                name="labels_label_unique_shared_name",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        """An account's label may not share its name with a shared one (the picker would offer
        both), nor a shared label with any account's."""
        clashes = Label.objects.exclude(pk=self.pk).filter(name__iexact=self.name)
        if self.account_id is not None:
            clashes = clashes.filter(account__isnull=True)
        if clashes.exists():
            raise ValidationError(
                {"name": _("A label of this name exists already (names ignore case).")}
            )


class SessionLabel(models.Model):
    """One label on one conversation: who put it there, and when."""

    # No index of its own: the unique constraint below starts with the session.
    session = models.ForeignKey(
        Session, on_delete=models.CASCADE, related_name="label_links", db_index=False
    )
    label = models.ForeignKey(
        Label, on_delete=models.CASCADE, related_name="session_links", db_index=False
    )
    # The session's account (which never changes), so that one account's sessions of a label
    # are one range of the label's index.
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="+", db_index=False)
    added_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    added_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("label on a conversation")
        verbose_name_plural = _("labels on conversations")
        constraints = [
            # A session's labels (chips, the list filter's EXISTS probe per session) and at most
            # one of each.
            models.UniqueConstraint(
                fields=["session", "label"], name="labels_sessionlabel_unique_session_label"
            ),
        ]
        indexes = [
            # The list filtered by a rare label: its few sessions in one account, read in one
            # range (inbox.labels.filtering). The label foreign key's own index is this one.
            models.Index(
                fields=["label", "account", "session"], name="labels_sessionlabel_by_label"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.label_id} on {self.session_id}"


class LabelCounter(models.Model):
    """How many sessions of one account carry one label, and how many of them are open: the
    sidebar's counts and the list filter's choice of plan, read from a few rows.

    Kept by database triggers on labels_sessionlabel, inbox_session and labels_label in the same
    transaction as every change (inbox/labels/counters.py); `manage.py rebuild_counters`
    recounts them.
    """

    # No foreign key constraints: the triggers write these as plain numbers, also while a label
    # or an account is being deleted.
    label = models.ForeignKey(
        Label, on_delete=models.DO_NOTHING, db_constraint=False, related_name="counters"
    )
    account = models.ForeignKey(
        Account, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    sessions = models.IntegerField(default=0)
    open = models.IntegerField(default=0)

    class Meta:
        constraints = [
            # The triggers' upsert key; also serves the sidebar's read by label.
            models.UniqueConstraint(
                fields=["label", "account"], name="labels_labelcounter_unique_key"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.label_id}/{self.account_id}: {self.open}/{self.sessions}"
