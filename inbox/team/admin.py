"""Auto-assignment settings, edited on the account's admin page (accounts.admin.AccountAdmin
lists these inlines); who may change them follows that page's rules."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.http import HttpRequest

from inbox.team.models import AgentCap, AssignmentPolicy


class AssignmentPolicyInline(admin.StackedInline):
    model = AssignmentPolicy
    max_num = 1
    min_num = 0
    can_delete = False
    fields = ["mode", "cap_per_agent"]


class AgentCapInline(admin.TabularInline):
    """Members who should get more or fewer auto-assigned conversations than the policy's cap."""

    model = AgentCap
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
