"""Admin scoped to accounts: a staff user who is not a superuser sees, picks and changes only
rows of the accounts they are a member of, in every place admin shows rows: change lists,
change forms (another account's row is a 404), foreign-key choices and raw-id lookups, list
filters, autocomplete and actions (which all start from `get_queryset`)."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.admin.widgets import ForeignKeyRawIdWidget
from django.core.exceptions import ValidationError
from django.db.models import Q, QuerySet
from django.http import Http404, HttpRequest

from accounts.models import Account


def member_accounts(user) -> QuerySet:
    return Account.objects.filter(members=user)


class AccountScopedAdmin(admin.ModelAdmin):
    # The lookup path from this admin's model to its Account ("pk" for Account itself).
    account_path = "account"
    # Rows without an account are shared by every account (canned replies): visible to all staff.
    accountless_rows_are_shared = False

    def scope(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if request.user.is_superuser:
            return queryset
        visible = Q(**{f"{self.account_path}__in": member_accounts(request.user).values("pk")})
        if self.accountless_rows_are_shared:
            visible |= Q(**{f"{self.account_path}__isnull": True})
        return queryset.filter(visible)

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return self.scope(request, super().get_queryset(request))

    def get_object(self, request: HttpRequest, object_id: str, from_field=None):
        obj = super().get_object(request, object_id, from_field)
        if obj is None and not request.user.is_superuser:
            # The same answer whether the row is another account's or does not exist.
            raise Http404
        return obj

    def get_field_queryset(self, db, db_field, request: HttpRequest):
        """Foreign-key choices (and what a raw-id field accepts) are the rows the related model's
        own admin would show this user."""
        related_model = db_field.remote_field.model
        if request.user.is_superuser or not self.admin_site.is_registered(related_model):
            return super().get_field_queryset(db, db_field, request)
        related_admin = self.admin_site.get_model_admin(related_model)
        if not isinstance(related_admin, AccountScopedAdmin):
            return super().get_field_queryset(db, db_field, request)
        queryset = related_admin.scope(request, related_model._default_manager.using(db))
        ordering = related_admin.get_ordering(request)
        return queryset.order_by(*ordering) if ordering else queryset

    def formfield_for_foreignkey(self, db_field, request: HttpRequest, **kwargs):
        formfield = super().formfield_for_foreignkey(db_field, request, **kwargs)
        widget = getattr(formfield, "widget", None)
        if isinstance(widget, ForeignKeyRawIdWidget) and not request.user.is_superuser:
            formfield.widget = ScopedRawIdWidget(
                widget.rel,
                widget.admin_site,
                formfield.queryset,
                attrs=widget.attrs,
                using=widget.db,
            )
        return formfield


class SharedRowsAdmin(AccountScopedAdmin):
    """A model whose rows without an account are shared by every account (canned replies,
    labels): every staff user may read those, only a superuser may write or delete them, and a
    staff user's new row belongs to one of their own accounts."""

    accountless_rows_are_shared = True
    # What the delete confirmation says a staff user lacks the right to delete.
    shared_rows_name = ""

    def _is_shared_for_staff(self, request: HttpRequest, obj) -> bool:
        return obj is not None and obj.account_id is None and not request.user.is_superuser

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        if self._is_shared_for_staff(request, obj):
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        if self._is_shared_for_staff(request, obj):
            return False
        return super().has_delete_permission(request, obj)

    def get_deleted_objects(self, objs, request: HttpRequest):
        # The bulk "delete selected" action asks here, not has_delete_permission(obj).
        deleted, counts, perms_needed, protected = super().get_deleted_objects(objs, request)
        if any(self._is_shared_for_staff(request, obj) for obj in objs):
            perms_needed = {*perms_needed, self.shared_rows_name}
        return deleted, counts, perms_needed, protected

    def formfield_for_foreignkey(self, db_field, request: HttpRequest, **kwargs):
        formfield = super().formfield_for_foreignkey(db_field, request, **kwargs)
        if db_field.name == "account" and not request.user.is_superuser:
            # One of their own accounts: "no account" (shared by all) is a superuser's to write.
            formfield.required = True
            formfield.empty_label = None
        return formfield


class ScopedRawIdWidget(ForeignKeyRawIdWidget):
    """A raw-id field whose label (shown next to the id, also after a refused forged value)
    names only a row the user may see."""

    def __init__(self, rel, admin_site, queryset: QuerySet, attrs=None, using=None):
        super().__init__(rel, admin_site, attrs=attrs, using=using)
        self.queryset = queryset

    def label_and_url_for_value(self, value):
        key = self.rel.get_related_field().name
        try:
            visible = self.queryset.filter(**{key: value}).exists()
        except (ValueError, TypeError, ValidationError):
            visible = False
        return super().label_and_url_for_value(value) if visible else ("", "")


class VisibleAccountFilter(admin.RelatedFieldListFilter):
    """The "by account" list filter, offering only the accounts the user may see."""

    def field_choices(self, field, request: HttpRequest, model_admin):
        if request.user.is_superuser:
            return super().field_choices(field, request, model_admin)
        ordering = self.field_admin_ordering(field, request, model_admin)
        return field.get_choices(
            include_blank=False, ordering=ordering, limit_choices_to={"members": request.user}
        )
