"""Auto-assignment settings, edited on the account's admin page (accounts.admin.AccountAdmin
lists these inlines); who may change them follows that page's rules."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.forms.models import BaseInlineFormSet
from django.http import HttpRequest

from inbox.team.models import AgentCap, AssignmentPolicy


class SectionMayBeMissingFormSet(BaseInlineFormSet):
    """A change form posted without this section (a script, or a page loaded before the
    section existed) leaves its rows as they are instead of failing the whole save."""

    def __init__(self, data=None, *args, prefix=None, **kwargs):
        prefix = prefix or self.get_default_prefix()
        if data is not None and f"{prefix}-TOTAL_FORMS" not in data:
            data = data.copy()
            data[f"{prefix}-TOTAL_FORMS"] = data[f"{prefix}-INITIAL_FORMS"] = "0"
        super().__init__(data, *args, prefix=prefix, **kwargs)


class AssignmentPolicyInline(admin.StackedInline):
    model = AssignmentPolicy
    formset = SectionMayBeMissingFormSet
    max_num = 1
    min_num = 0
    can_delete = False
    fields = ["mode", "cap_per_agent"]


class AgentCapInline(admin.TabularInline):
    """Members who should get more or fewer auto-assigned conversations than the policy's cap."""

    model = AgentCap
    formset = SectionMayBeMissingFormSet
    extra = 0
    fields = ["user", "cap"]

    def get_formset(self, request: HttpRequest, obj=None, **kwargs):
        self._account = obj
        return super().get_formset(request, obj, **kwargs)

    def formfield_for_foreignkey(self, db_field, request: HttpRequest, **kwargs):
        if db_field.name == "user":
            # Only the account's members have conversations of it to cap.
            account = getattr(self, "_account", None)
            members = account.members.all() if account else get_user_model().objects.none()
            kwargs["queryset"] = members.order_by("username")
        return super().formfield_for_foreignkey(db_field, request, **kwargs)
