from __future__ import annotations

from django import forms
from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from accounts.models import Account


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


@admin.register(Account)
class AccountAdmin(admin.ModelAdmin):
    form = AccountForm
    list_display = [
        "name",
        "app_id",
        "enabled",
        "paused_reason",
        "own_username",
        "last_success_at",
        "failure_streak",
        "next_sync_at",
    ]
    list_filter = ["enabled"]
    search_fields = ["name", "app_id", "own_username", "nickname"]
    filter_horizontal = ["members"]
    readonly_fields = [
        "key_buff",
        "last_success_at",
        "last_error",
        "last_error_at",
        "failure_streak",
        "next_sync_at",
        "created_at",
    ]
    fieldsets = [
        (None, {"fields": ["name", "app_id", "token", "base_url", "members"]}),
        (_("Identity"), {"fields": ["own_username", "nickname"]}),
        (
            _("Sync"),
            {"fields": ["enabled", "paused_reason", "poll_interval", "next_sync_at", "key_buff"]},
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
