from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from accounts.admin_scope import AccountScopedAdmin, VisibleAccountFilter
from inbox.labels.models import Label


@admin.register(Label)
class LabelAdmin(AccountScopedAdmin):
    """Labels per account, or shared by every account (no account). Staff see and manage their
    accounts' labels; the shared ones every staff user may read, but only a superuser may
    write. Renaming a label leaves the thread's activity lines as they were written."""

    accountless_rows_are_shared = True

    list_display = ["name", "colour", "account", "created_by", "created_at"]
    list_filter = ["colour", ("account", VisibleAccountFilter)]
    list_select_related = ["account", "created_by"]
    search_fields = ["name"]
    fields = ["name", "colour", "account"]

    def save_model(self, request: HttpRequest, obj: Label, form, change: bool) -> None:
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)

    def has_change_permission(self, request: HttpRequest, obj: Label | None = None) -> bool:
        if obj is not None and obj.account_id is None and not request.user.is_superuser:
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Label | None = None) -> bool:
        if obj is not None and obj.account_id is None and not request.user.is_superuser:
            return False
        return super().has_delete_permission(request, obj)

    def get_deleted_objects(self, objs, request: HttpRequest):
        # The bulk "delete selected" action asks here, not has_delete_permission(obj).
        deleted, counts, perms_needed, protected = super().get_deleted_objects(objs, request)
        if not request.user.is_superuser and any(label.account_id is None for label in objs):
            perms_needed = {*perms_needed, _("labels shared by all accounts")}
        return deleted, counts, perms_needed, protected

    def formfield_for_foreignkey(self, db_field, request: HttpRequest, **kwargs):
        formfield = super().formfield_for_foreignkey(db_field, request, **kwargs)
        if db_field.name == "account" and not request.user.is_superuser:
            # One of their own accounts: a shared label is a superuser's to write.
            formfield.required = True
            formfield.empty_label = None
        return formfield
