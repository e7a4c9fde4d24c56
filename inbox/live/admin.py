"""Admin's user list says who is around (online / busy / away / offline), read for the whole
page at once from the live store."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.admin.views.main import ChangeList
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.utils.translation import gettext_lazy as _

from inbox.live import presence

User = get_user_model()


class AvailabilityChangeList(ChangeList):
    def get_results(self, request) -> None:
        super().get_results(request)
        # The page's rows are cached by their queryset: the column below reads what is set here.
        states = presence.availability(user.pk for user in self.result_list)
        for user in self.result_list:
            user.live_availability = states[user.pk]


class UserWithAvailabilityAdmin(UserAdmin):
    list_display = [*UserAdmin.list_display, "availability"]

    def get_changelist(self, request, **kwargs):
        return AvailabilityChangeList

    @admin.display(description=_("Availability"))
    def availability(self, user) -> str:
        state = getattr(user, "live_availability", None) or presence.OFFLINE
        return str(presence.LABELS[state])


if admin.site.is_registered(User):
    admin.site.unregister(User)
admin.site.register(User, UserWithAvailabilityAdmin)
