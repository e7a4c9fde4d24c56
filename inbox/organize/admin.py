from django.contrib import admin

from inbox.organize.models import SavedView


@admin.register(SavedView)
class SavedViewAdmin(admin.ModelAdmin):
    """Superusers only: personal views are their owners' business, and a view's account is
    chosen from every account."""

    list_display = ["name", "owner", "shared", "account", "view", "assignee", "unread"]
    list_filter = ["shared", "view"]
    search_fields = ["name", "owner__username"]
    raw_id_fields = ["owner", "account"]

    def has_module_permission(self, request) -> bool:
        return request.user.is_active and request.user.is_superuser

    def has_view_permission(self, request, obj=None) -> bool:
        return self.has_module_permission(request)

    def has_add_permission(self, request) -> bool:
        return self.has_module_permission(request)

    def has_change_permission(self, request, obj=None) -> bool:
        return self.has_module_permission(request)

    def has_delete_permission(self, request, obj=None) -> bool:
        return self.has_module_permission(request)
