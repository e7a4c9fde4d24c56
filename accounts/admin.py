"""Account admin for operators: sync health at a glance, and the levers to steer it.

The token is write-only everywhere here: the form never renders it, list columns and messages
never include it, and upstream errors are redacted by the client before they are stored or shown.

Where the token goes is a superuser's decision: a staff user who is not a superuser sees only the
accounts they are a member of, and cannot change app id, base URL, members or token (those fields
are not in their form at all, so a forged POST cannot set them). Changing the base URL or app id
needs the token typed again in the same save, so whoever redirects the token must already know it.
Each such change is written to the audit trail (accounts.audit).
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.admin.utils import unquote
from django.db import models
from django.db.models import Count, IntegerField, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html
from django.utils.text import Truncator
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from accounts import audit, services
from accounts.admin_scope import AccountScopedAdmin
from accounts.client import VideosApiError
from accounts.models import Account, AuditEvent
from inbox.models import Message, Session
from inbox.tasks import sync_account
from inbox.team.admin import AgentCapInline, AssignmentPolicyInline

# Checking a connection calls the upstream while the operator waits: a few accounts at a time.
MAX_CONNECTION_CHECKS = 10
# Fields that decide where the token is sent and who reads the account: superusers only.
SUPERUSER_ONLY_FIELDS = ["app_id", "token", "base_url", "members"]
# Changing these sends the token somewhere new: the token must be typed again with them.
TOKEN_DESTINATION_FIELDS = ["app_id", "base_url"]


def sends_token_in_clear(url: str) -> bool:
    """Plain http to anything but this machine: the token crosses the network readable."""
    parts = urlsplit(url)
    if parts.scheme != "http":
        return False
    host = (parts.hostname or "").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return False
    try:
        return not ipaddress.ip_address(host).is_loopback
    except ValueError:
        return True


def _http_url_formfield(field, **kwargs):
    if isinstance(field, models.URLField):
        kwargs.setdefault("assume_scheme", "http")
    return field.formfield(**kwargs)


class AccountForm(forms.ModelForm):
    """The token is write-only: the field always renders empty (no value, no mask of its length);
    leaving it empty on an existing account keeps the stored token, except when the app id or base
    URL changes: then it must be entered again."""

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
        # Also for admin's variants of this form that drop the declared base_url.
        formfield_callback = staticmethod(_http_url_formfield)

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # No initial value (not even the ciphertext): an empty field is then "unchanged", and
        # admin's history does not claim a token change that did not happen.
        self.initial.pop("token", None)

    def clean(self) -> dict:
        cleaned = super().clean()
        if cleaned.get("token"):
            return cleaned
        # Not entered: keep the stored one untouched (never decrypted, never re-encrypted).
        cleaned.pop("token", None)
        if not self.instance.pk:
            self.add_error("token", _("An account needs a token."))
        elif moved := [name for name in TOKEN_DESTINATION_FIELDS if name in self.changed_data]:
            self.add_error(
                "token",
                _(
                    "Enter the token again to change the %(fields)s: the token will be sent "
                    "there from now on."
                )
                % {"fields": " / ".join(str(self.fields[name].label) for name in moved)},
            )
        return cleaned

    @property
    def token_entered(self) -> bool:
        return bool(self.cleaned_data.get("token"))


class SyncStateFilter(admin.SimpleListFilter):
    title = _("sync state")
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return [
            ("paused", _("Paused by the upstream's answer")),
            ("outage", _("Device offline")),
            ("off", _("Switched off")),
            ("failing", _("Failing")),
            ("ok", _("Syncing")),
        ]

    def queryset(self, request, queryset):
        value = self.value()
        if value == "paused":
            return queryset.exclude(paused_reason="")
        if value == "outage":
            return queryset.filter(outage_since__isnull=False)
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
class AccountAdmin(AccountScopedAdmin):
    account_path = "pk"
    form = AccountForm
    # As AccountForm's base_url, for the read-only form other staff get.
    formfield_overrides = {models.URLField: {"assume_scheme": "http"}}

    class Media:
        css = {"all": ["accounts/admin.css"]}

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
    inlines = [AssignmentPolicyInline, AgentCapInline]
    readonly_fields = [
        "paused_reason",
        "outage_since",
        "outage_reason",
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
                    "outage_since",
                    "outage_reason",
                    "created_at",
                ]
            },
        ),
    ]

    # --- who may change what ------------------------------------------------------------------

    def has_add_permission(self, request: HttpRequest) -> bool:
        # A new account is a new app id, token and base URL: all superuser-only.
        return request.user.is_superuser and super().has_add_permission(request)

    def get_fieldsets(self, request: HttpRequest, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        if request.user.is_superuser:
            return fieldsets
        hidden = {"token", "members"}
        return [
            (name, {**options, "fields": [f for f in options["fields"] if f not in hidden]})
            for name, options in fieldsets
        ]

    def get_readonly_fields(self, request: HttpRequest, obj=None):
        readonly = list(super().get_readonly_fields(request, obj))
        if not request.user.is_superuser:
            readonly += SUPERUSER_ONLY_FIELDS
        return readonly

    def get_form(self, request: HttpRequest, obj=None, change=False, **kwargs):
        if not request.user.is_superuser:
            # A plain model form: none of AccountForm's declared fields (token, base URL), which a
            # form would accept from a POST even when the page does not show them.
            kwargs["form"] = forms.ModelForm
        return super().get_form(request, obj, change, **kwargs)

    def change_view(self, request: HttpRequest, object_id, form_url="", extra_context=None):
        account = self.get_object(request, unquote(object_id))
        if account is not None and sends_token_in_clear(account.effective_base_url):
            extra_context = {
                **(extra_context or {}),
                "token_in_clear_note": _token_in_clear_message(account),
            }
        return super().change_view(request, object_id, form_url, extra_context)

    # --- the audit trail -----------------------------------------------------------------------

    def save_model(self, request: HttpRequest, obj: Account, form, change: bool) -> None:
        super().save_model(request, obj, form, change)
        if not change:
            audit.record(
                request.user,
                audit.Action.ACCOUNT_CREATED,
                obj,
                app_id=obj.app_id,
                base_url=obj.base_url,
            )
        else:
            if getattr(form, "token_entered", False):
                audit.record(request.user, audit.Action.TOKEN_CHANGED, obj)
            if "base_url" in form.changed_data:
                audit.record(
                    request.user,
                    audit.Action.BASE_URL_CHANGED,
                    obj,
                    old=form.initial.get("base_url", ""),
                    new=obj.base_url,
                )
            if "app_id" in form.changed_data:
                audit.record(
                    request.user,
                    audit.Action.APP_ID_CHANGED,
                    obj,
                    old=form.initial.get("app_id", ""),
                    new=obj.app_id,
                )
        if sends_token_in_clear(obj.effective_base_url):
            self.message_user(request, _token_in_clear_message(obj), messages.WARNING)

    def save_related(self, request: HttpRequest, form, formsets, change: bool) -> None:
        account = form.instance
        before = set(account.members.values_list("username", flat=True)) if change else set()
        super().save_related(request, form, formsets, change)
        after = set(account.members.values_list("username", flat=True))
        if before != after:
            audit.record(
                request.user,
                audit.Action.MEMBERS_CHANGED,
                account,
                **audit.members_change(before, after),
            )

    def delete_model(self, request: HttpRequest, obj: Account) -> None:
        audit.record(request.user, audit.Action.ACCOUNT_DELETED, obj, app_id=obj.app_id)
        super().delete_model(request, obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        for account in queryset:
            audit.record(request.user, audit.Action.ACCOUNT_DELETED, account, app_id=account.app_id)
        super().delete_queryset(request, queryset)

    # --- the list ------------------------------------------------------------------------------

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
        if account.outage_since:
            # Red (accounts/admin.css): nobody needs to resume it, but someone should know.
            since = date_format(timezone.localtime(account.outage_since), "SHORT_DATETIME_FORMAT")
            return format_html(
                '<strong class="account-outage" title="{}">{}</strong>',
                account.outage_reason,
                _("Offline since %(since)s") % {"since": since},
            )
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
        # The service leaves an account alone while a pass holds its lease.
        now = timezone.now()
        free = Q(sync_lease_until__isnull=True) | Q(sync_lease_until__lt=now)
        done = set(
            Account.objects.filter(free, pk__in=[a.pk for a in accounts], key_buff="").values_list(
                "pk", flat=True
            )
        )
        for account in accounts:
            if account.pk in done:
                self.log_change(request, account, "Reset the sync cursor.")
                audit.record(request.user, audit.Action.CURSOR_RESET, account)
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


def _token_in_clear_message(account: Account) -> str:
    return _(
        "%(account)s sends its token over plain http to %(url)s: anyone on the network path "
        "can read it. Use an https base URL if the upstream offers one."
    ) % {"account": account.name, "url": account.effective_base_url}


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    """The audit trail: superusers read it; nobody adds, edits or deletes entries here."""

    list_display = ["at", "actor_name", "action", "account_label", "details"]
    list_filter = ["action", "at"]
    list_select_related = ["actor", "account"]
    search_fields = ["actor_name", "account_label", "account__app_id"]
    date_hierarchy = "at"
    show_full_result_count = False
    fields = ["at", "actor", "actor_name", "action", "account", "account_label", "details"]
    readonly_fields = fields

    def has_module_permission(self, request: HttpRequest) -> bool:
        return request.user.is_active and request.user.is_superuser

    def has_view_permission(self, request: HttpRequest, obj=None) -> bool:
        return request.user.is_active and request.user.is_superuser

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False
