"""The upstream side: one Account per Channels account logged in at VideosApi."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.crypto import EncryptedTextField


class AccountQuerySet(models.QuerySet):
    def visible_to(self, user) -> AccountQuerySet:
        """Accounts whose sessions `user` may read and answer: all for a superuser, else those
        the user is a member of."""
        if user.is_superuser:
            return self
        return self.filter(members=user)

    def due_for_sync(self, now=None) -> AccountQuerySet:
        now = now or timezone.now()
        return self.filter(enabled=True, paused_reason="").filter(
            models.Q(next_sync_at__isnull=True) | models.Q(next_sync_at__lte=now)
        )


class Account(models.Model):
    name = models.CharField(_("name"), max_length=100)
    app_id = models.CharField(
        _("app id"), max_length=100, unique=True, help_text=_("The device id VideosApi issued.")
    )
    # Write-only: admin never renders it, logs and errors redact it (see accounts.client). Stored
    # encrypted; reads as plaintext (see accounts.crypto).
    token = EncryptedTextField(_("token"))
    base_url = models.URLField(
        _("base URL"),
        blank=True,
        help_text=_("Leave empty to use the VIDEOSAPI_BASE_URL setting."),
    )
    own_username = models.CharField(
        _("own Channels user name"),
        max_length=200,
        blank=True,
        help_text=_("This account's v2_…@finder name, learned from getProfile or from sync."),
    )
    nickname = models.CharField(_("nickname"), max_length=200, blank=True)
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL,
        blank=True,
        related_name="finder_accounts",
        verbose_name=_("members"),
    )

    # The sync cursor: the keyBuff the last committed page returned (opaque to us).
    key_buff = models.TextField(_("sync cursor"), blank=True)

    enabled = models.BooleanField(_("sync enabled"), default=True)
    # Set when the upstream rejects the token; beat skips the account until an operator resumes it
    # or changes the token.
    paused_reason = models.CharField(_("paused because"), max_length=300, blank=True)
    poll_interval = models.PositiveIntegerField(
        _("poll interval (s)"), default=settings.SYNC_DEFAULT_INTERVAL_SECONDS
    )
    # Set while the account's device is offline or gone (微信已离线, 设备不存在): sync keeps probing
    # it on a slow schedule and clears these on the first success. See inbox.sync.record_failure.
    outage_since = models.DateTimeField(_("offline since"), null=True, blank=True)
    outage_reason = models.CharField(_("offline because"), max_length=300, blank=True)
    next_sync_at = models.DateTimeField(_("next sync"), null=True, blank=True)

    last_success_at = models.DateTimeField(_("last success"), null=True, blank=True)
    last_error = models.TextField(_("last error"), blank=True)
    last_error_at = models.DateTimeField(_("last error at"), null=True, blank=True)
    failure_streak = models.PositiveIntegerField(_("consecutive failures"), default=0)

    # The lease that keeps one sync pass per account at a time (see inbox.sync.account_lease).
    sync_lease_token = models.CharField(max_length=32, blank=True, editable=False)
    sync_lease_until = models.DateTimeField(null=True, blank=True, editable=False)

    created_at = models.DateTimeField(auto_now_add=True)

    objects = AccountQuerySet.as_manager()

    class Meta:
        ordering = ["name", "pk"]
        verbose_name = _("account")
        verbose_name_plural = _("accounts")
        indexes = [
            # sync_due_accounts(): enabled, unpaused accounts whose next_sync_at has come.
            models.Index(fields=["enabled", "next_sync_at"], name="accounts_account_due"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.app_id})"

    def __repr__(self) -> str:
        # Never the token.
        return f"<Account pk={self.pk} app_id={self.app_id!r}>"

    @classmethod
    def from_db(cls, db, field_names, values):
        account = super().from_db(db, field_names, values)
        # The token as loaded, so save() can tell that it was replaced (absent when deferred).
        account._loaded_token = account.__dict__.get("token")
        return account

    def save(self, *args, **kwargs) -> None:
        """A pause for a rejected token ends when the token is replaced, however that is done
        (admin, add_account): the new token is tried at the next beat."""
        loaded = getattr(self, "_loaded_token", None)
        # The stored form, not self.token: comparing needs no decryption (see accounts.crypto).
        if self.paused_reason and loaded is not None and self.__dict__.get("token") != loaded:
            self.paused_reason = ""
            self.failure_streak = 0
            self.next_sync_at = None
            if kwargs.get("update_fields") is not None:
                kwargs["update_fields"] = {
                    *kwargs["update_fields"],
                    "paused_reason",
                    "failure_streak",
                    "next_sync_at",
                }
        super().save(*args, **kwargs)
        self._loaded_token = self.__dict__.get("token")

    @property
    def effective_base_url(self) -> str:
        return self.base_url or settings.VIDEOSAPI_BASE_URL

    def client(self, **options):
        """A VideosApi client for this account; `options` override the timeouts and retries."""
        from accounts.client import VideosApiClient

        return VideosApiClient(
            base_url=self.effective_base_url, token=self.token, app_id=self.app_id, **options
        )


class AuditEvent(models.Model):
    """One security-relevant change: who did what to which account, and when. Written only by
    accounts.audit.record; never holds a secret (a token change is recorded as just that)."""

    class Action(models.TextChoices):
        ACCOUNT_CREATED = "account_created", _("Account created")
        ACCOUNT_DELETED = "account_deleted", _("Account deleted")
        TOKEN_CHANGED = "token_changed", _("Token changed")
        BASE_URL_CHANGED = "base_url_changed", _("Base URL changed")
        APP_ID_CHANGED = "app_id_changed", _("App id changed")
        MEMBERS_CHANGED = "members_changed", _("Members changed")
        CURSOR_RESET = "cursor_reset", _("Sync cursor reset")
        LOCKOUT_RESET = "lockout_reset", _("Sign-in lockout reset")
        KEY_ROTATED = "key_rotated", _("Tokens re-encrypted under a new key")

    at = models.DateTimeField(_("when"), default=timezone.now, editable=False)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("by"),
    )
    # Kept as text too: the trail must still say who after the user or account is deleted.
    actor_name = models.CharField(_("by (name)"), max_length=150, blank=True)
    action = models.CharField(_("action"), max_length=40, choices=Action.choices)
    account = models.ForeignKey(
        Account,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="audit_events",
        verbose_name=_("account"),
    )
    account_label = models.CharField(_("account (name)"), max_length=250, blank=True)
    details = models.JSONField(_("details"), default=dict, blank=True)

    class Meta:
        ordering = ["-at", "-pk"]
        verbose_name = _("audit event")
        verbose_name_plural = _("audit trail")
        indexes = [
            # The admin's audit trail: newest first, for all accounts or one.
            models.Index(fields=["-at", "-id"], name="accounts_auditevent_recent"),
        ]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.get_action_display()}"
