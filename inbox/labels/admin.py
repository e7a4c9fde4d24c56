from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from accounts.admin_scope import SharedRowsAdmin, VisibleAccountFilter
from inbox.labels.models import Label


@admin.register(Label)
class LabelAdmin(SharedRowsAdmin):
    """Labels per account, or shared by every account (no account). Staff see and manage their
    accounts' labels; the shared ones every staff user may read, but only a superuser may
    write. Renaming a label leaves the thread's activity lines as they were written."""

    shared_rows_name = _("labels shared by all accounts")

    list_display = ["name", "colour", "account", "created_by", "created_at"]
    list_filter = ["colour", ("account", VisibleAccountFilter)]
    list_select_related = ["account", "created_by"]
    search_fields = ["name"]
    fields = ["name", "colour", "account"]

    def save_model(self, request: HttpRequest, obj: Label, form, change: bool) -> None:
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)
