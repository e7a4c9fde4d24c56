"""Conversation admin. Every list here is scoped to the accounts a staff user is a member of
(superusers see all): see accounts.admin_scope."""

from __future__ import annotations

import json

from django.contrib import admin
from django.db import models
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from accounts.admin_scope import AccountScopedAdmin, SharedRowsAdmin, VisibleAccountFilter
from inbox.models import CannedReply, Message, QuarantinedItem, Session


def _pretty_json(value) -> str:
    return format_html("<pre>{}</pre>", json.dumps(value, ensure_ascii=False, indent=2))


@admin.register(Session)
class SessionAdmin(AccountScopedAdmin):
    list_display = [
        "display_name",
        "account",
        "status",
        "assignee",
        "last_message_at",
        "unread_count",
    ]
    list_filter = ["status", ("account", VisibleAccountFilter)]
    list_select_related = ["account", "assignee"]
    # The names are searched in their own table (inbox.SessionName), where the trigram indexes
    # are; the session table has none.
    search_fields = [
        "=msg_session_id",
        "search_names__peer_username",
        "search_names__peer_nickname",
    ]
    raw_id_fields = ["account", "assignee"]
    show_full_result_count = False
    readonly_fields = ["msg_session_id", "created_at", "updated_at"]


@admin.register(Message)
class MessageAdmin(AccountScopedAdmin):
    list_display = [
        "created_at",
        "account",
        "session",
        "kind",
        "msg_type",
        "is_sender",
        "short_content",
        "delivery",
        "has_parse_error",
    ]
    list_filter = ["kind", "msg_type", "is_sender", "delivery", ("account", VisibleAccountFilter)]
    list_select_related = ["account", "session"]
    search_fields = ["=new_msg_id", "=session__msg_session_id", "from_username"]
    raw_id_fields = ["account", "session", "author", "activity_user"]
    date_hierarchy = "created_at"
    show_full_result_count = False
    # Image URLs come from downloadImage; one typed without a scheme is an https one.
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    exclude = ["raw"]
    readonly_fields = ["raw_json", "parse_error", "image_meta", "stored_at", "updated_at"]

    @admin.display(description=_("content"))
    def short_content(self, message: Message) -> str:
        return message.content[:60]

    @admin.display(description=_("parse error"), boolean=True)
    def has_parse_error(self, message: Message) -> bool:
        return bool(message.parse_error)

    @admin.display(description=_("raw item"))
    def raw_json(self, message: Message) -> str:
        return _pretty_json(message.raw)


@admin.register(QuarantinedItem)
class QuarantinedItemAdmin(AccountScopedAdmin):
    list_display = ["stored_at", "account", "error"]
    list_filter = [("account", VisibleAccountFilter)]
    list_select_related = ["account"]
    exclude = ["raw"]
    readonly_fields = ["account", "fingerprint", "error", "raw_json", "stored_at"]
    show_full_result_count = False

    @admin.display(description=_("raw item"))
    def raw_json(self, item: QuarantinedItem) -> str:
        return _pretty_json(item.raw)


@admin.register(CannedReply)
class CannedReplyAdmin(SharedRowsAdmin):
    """Saved answers staff insert with `/` in the composer; without an account, for every one.
    Those shared ones every staff user may read, but only a superuser may write."""

    shared_rows_name = _("canned replies shared by all accounts")

    list_display = ["title", "account", "short_text"]
    list_filter = [("account", VisibleAccountFilter)]
    list_select_related = ["account"]
    search_fields = ["title", "text"]

    @admin.display(description=_("text"))
    def short_text(self, reply: CannedReply) -> str:
        return reply.text[:80]
