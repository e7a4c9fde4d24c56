"""Account admin for operators: sync health at a glance, and the levers to steer it.

The token is write-only everywhere here: the form never renders it, list columns and messages
never include it, and upstream errors are redacted by the client before they are stored or shown.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.db.models import Count, IntegerField, OuterRef, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.utils.html import format_html
from django.utils.text import Truncator
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from accounts import services
from accounts.client import VideosApiError
from accounts.models import Account
from inbox.models import Message, Session
from inbox.tasks import sync_account

# Checking a connection calls the upstream while the operator waits: a few accounts at a time.
MAX_CONNECTION_CHECKS = 10


class AccountForm(forms.ModelForm):
    """The token is write-only: the field always renders empty (no value, no mask of its length);
    leaving it empty on an existing account keeps the stored token."""

    token = forms.CharField(
        label=_("token"),
        required=False,
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text=_("Write-only. Leave empty to keep the current token."),
    )

    # VideosApi documents its base URLs as plain http, so that is what a bare host name means.
    base_url = forms.URLField(
        label=_("base URL"),
        required=False,
        assume_scheme="http",
        help_text=Account._meta.get_field("base_url").help_text,
    )

    class Meta:
        model = Account
        fields = "__all__"

    def clean_token(self) -> str:
        token = self.cleaned_data["token"]
        if token:
            return token
        if self.instance.pk:
            return self.instance.token
        raise forms.ValidationError(_("An account needs a token."))


class SyncStateFilter(admin.SimpleListFilter):
    title = _("sync state")
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return [
            ("paused", _("Paused by the upstream's answer")),
            ("off", _("Switched off")),
            ("failing", _("Failing")),
            ("ok", _("Syncing")),
        ]

    def queryset(self, request, queryset):
        value = self.value()
        if value == "paused":
            return queryset.exclude(paused_reason="")
        if value == "off":
            return queryset.filter(enabled=False)
        if value == "failing":
            return queryset.filter(enabled=True, paused_reason="", failure_streak__gt=0)
        if value == "ok":
            return queryset.filter(enabled=True, paused_reason="", failure_streak=0)
        return queryset


def _count_per_account(queryset: QuerySet) -> Coalesce:
    """A correlated COUNT per account row: one query for the whole page, and no join that would
    multiply messages by sessions."""
    counts = (
        queryset.filter(account=OuterRef("pk"))
        .order_by()
        .values("account")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return Coalesce(Subquery(counts, output_field=IntegerField()), 0)


@admin.register(Account)
class AccountAdmin(admin.ModelAdmin):
    form = AccountForm
    list_display = [
        "name",
        "app_id",
        "enabled",
        "sync_state",
        "own_username",
        "last_success_at",
        "short_last_error",
        "failure_streak",
        "next_sync_at",
        "letter_count",
        "session_count",
    ]
    list_filter = [SyncStateFilter, "enabled"]
    search_fields = ["name", "app_id", "own_username", "nickname"]
    filter_horizontal = ["members"]
    actions = ["sync_now", "pause_sync", "resume_sync", "reset_cursor", "check_connection"]
    readonly_fields = [
        "paused_reason",
        "key_buff",
        "last_success_at",
        "last_error",
        "last_error_at",
        "failure_streak",
        "next_sync_at",
        "sync_lease_until",
        "created_at",
    ]
    fieldsets = [
        (None, {"fields": ["name", "app_id", "token", "base_url", "members"]}),
        (_("Identity"), {"fields": ["own_username", "nickname"]}),
        (
            _("Sync"),
            {
                "fields": [
                    "enabled",
                    "paused_reason",
                    "poll_interval",
                    "next_sync_at",
                    "sync_lease_until",
                    "key_buff",
                ]
            },
        ),
        (
            _("Health"),
            {
                "fields": [
                    "last_success_at",
                    "last_error",
                    "last_error_at",
                    "failure_streak",
                    "created_at",
                ]
            },
        ),
    ]

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        queryset = super().get_queryset(request)
        match = request.resolver_match
        if match and match.url_name == "accounts_account_changelist":
            # Letters are the rows the upstream knows (they have a NewMsgId): counted from the
            # (account, new_msg_id) unique index alone.
            queryset = queryset.annotate(
                letter_count=_count_per_account(Message.objects.filter(new_msg_id__isnull=False)),
                session_count=_count_per_account(Session.objects.all()),
            )
        return queryset

    # --- columns -----------------------------------------------------------------------------

    @admin.display(description=_("sync"))
    def sync_state(self, account: Account) -> str:
        if account.paused_reason:
            return format_html(
                '<strong title="{}">{}</strong> {}',
                account.paused_reason,
                _("Paused:"),
                Truncator(account.paused_reason).chars(60),
            )
        if not account.enabled:
            return _("Switched off")
        if account.failure_streak:
            return _("Backing off")
        return _("OK")

    @admin.display(description=_("last error"))
    def short_last_error(self, account: Account) -> str:
        if not account.last_error:
            return ""
        short = Truncator(account.last_error).chars(60)
        return format_html('<span title="{}">{}</span>', account.last_error, short)

    @admin.display(description=_("letters"), ordering="letter_count")
    def letter_count(self, account: Account) -> int:
        return account.letter_count

    @admin.display(description=_("sessions"), ordering="session_count")
    def session_count(self, account: Account) -> int:
        return account.session_count

    # --- actions -----------------------------------------------------------------------------

    @admin.action(description=_("Sync now"), permissions=["change"])
    def sync_now(self, request: HttpRequest, queryset: QuerySet) -> None:
        active = list(queryset.filter(enabled=True, paused_reason=""))
        for account in active:
            sync_account.delay_on_commit(account.pk)
            self.log_change(request, account, "Queued a sync pass.")
        skipped = queryset.count() - len(active)
        if active:
            self.message_user(
                request,
                ngettext(
                    "Queued a sync of %(count)d account.",
                    "Queued a sync of %(count)d accounts.",
                    len(active),
                )
                % {"count": len(active)},
                messages.SUCCESS,
            )
        if skipped:
            self.message_user(
                request,
                ngettext(
                    "%(count)d account is paused or switched off; resume it first.",
                    "%(count)d accounts are paused or switched off; resume them first.",
                    skipped,
                )
                % {"count": skipped},
                messages.WARNING,
            )

    @admin.action(description=_("Pause sync"), permissions=["change"])
    def pause_sync(self, request: HttpRequest, queryset: QuerySet) -> None:
        accounts = list(queryset)
        services.pause(queryset)
        for account in accounts:
            self.log_change(request, account, "Paused sync.")
        self.message_user(
            request,
            ngettext(
                "Paused sync of %(count)d account; a pass already running finishes first.",
                "Paused sync of %(count)d accounts; passes already running finish first.",
                len(accounts),
            )
            % {"count": len(accounts)},
            messages.SUCCESS,
        )

    @admin.action(description=_("Resume sync"), permissions=["change"])
    def resume_sync(self, request: HttpRequest, queryset: QuerySet) -> None:
        accounts = list(queryset)
        services.resume(queryset)
        for account in accounts:
            self.log_change(request, account, "Resumed sync.")
        self.message_user(
            request,
            ngettext(
                "Resumed sync of %(count)d account; it syncs within seconds.",
                "Resumed sync of %(count)d accounts; they sync within seconds.",
                len(accounts),
            )
            % {"count": len(accounts)},
            messages.SUCCESS,
        )

    @admin.action(description=_("Reset cursor (re-read history)…"), permissions=["change"])
    def reset_cursor(self, request: HttpRequest, queryset: QuerySet) -> TemplateResponse | None:
        if request.POST.get("confirmed") != "yes":
            context = {
                **self.admin_site.each_context(request),
                "title": _("Re-read the history of these accounts?"),
                "opts": self.model._meta,
                "accounts": queryset,
                "action_checkbox_name": ACTION_CHECKBOX_NAME,
            }
            return TemplateResponse(request, "admin/accounts/account/reset_cursor.html", context)
        accounts = list(queryset)
        reset, busy = services.reset_cursor(queryset)
        for account in accounts:
            self.log_change(request, account, "Reset the sync cursor.")
        if reset:
            self.message_user(
                request,
                ngettext(
                    "Reset the cursor of %(count)d account: its next pass re-reads its history; "
                    "letters already stored are skipped.",
                    "Reset the cursor of %(count)d accounts: their next passes re-read their "
                    "history; letters already stored are skipped.",
                    reset,
                )
                % {"count": reset},
                messages.SUCCESS,
            )
        if busy:
            self.message_user(
                request,
                ngettext(
                    "%(count)d account is being synced right now and was left alone; "
                    "try again in a moment.",
                    "%(count)d accounts are being synced right now and were left alone; "
                    "try again in a moment.",
                    busy,
                )
                % {"count": busy},
                messages.WARNING,
            )
        return None

    @admin.action(description=_("Check connection (getProfile)"), permissions=["change"])
    def check_connection(self, request: HttpRequest, queryset: QuerySet) -> None:
        accounts = list(queryset[: MAX_CONNECTION_CHECKS + 1])
        if len(accounts) > MAX_CONNECTION_CHECKS:
            self.message_user(
                request,
                _("Check at most %(limit)d accounts at a time.") % {"limit": MAX_CONNECTION_CHECKS},
                messages.ERROR,
            )
            return
        for account in accounts:
            try:
                profile = services.check_connection(account)
            except VideosApiError as exc:
                # The client has already taken the token out of the upstream's words.
                self.message_user(
                    request,
                    _("%(account)s: the connection check failed: %(error)s")
                    % {"account": account.name, "error": exc},
                    messages.ERROR,
                )
                continue
            self.log_change(request, account, "Checked the connection.")
            self.message_user(
                request,
                _("%(account)s: connected as %(nickname)s (%(username)s).")
                % {
                    "account": account.name,
                    "nickname": profile.nickname or "?",
                    "username": profile.own_username,
                },
                messages.SUCCESS,
            )
