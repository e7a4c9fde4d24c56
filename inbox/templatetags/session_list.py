"""`{% session_row s %}`: one row of the session list (inbox.session_rows), with the list's
query string, whether it names accounts, and which session is open, taken from the context."""

from __future__ import annotations

from django import template
from django.utils.safestring import SafeString

from inbox.session_rows import render_session_row

register = template.Library()


@register.simple_tag(takes_context=True)
def session_row(context, s) -> SafeString:
    current = context.get("session")
    return render_session_row(
        s,
        list_query=context.get("list_query") or "",
        show_account=bool(context.get("show_account")),
        current_pk=getattr(current, "pk", None),
    )
