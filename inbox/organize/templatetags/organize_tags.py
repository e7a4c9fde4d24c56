"""`{% list_filter_fields list_filter %}`: the list's filter as hidden inputs, so that a form
posted from the list (bulk bar, "Save view", the filter menu) says which list it came from."""

from __future__ import annotations

from django import template
from django.utils.html import format_html, format_html_join
from django.utils.http import urlencode
from django.utils.safestring import SafeString

from inbox.browse import ListFilter

register = template.Library()


@register.simple_tag
def list_filter_fields(list_filter: ListFilter | None, *, leave_out: str = "") -> SafeString:
    if list_filter is None:
        return format_html("")
    skipped = set(leave_out.split(","))
    pairs = []
    for name, value in list_filter.params().items():
        if name in skipped:
            continue
        pairs.extend((name, item) for item in (value if isinstance(value, list) else [value]))
    return format_html_join(
        "", '<input type="hidden" name="{}" value="{}">', ((n, v) for n, v in pairs)
    )


@register.filter
def urlencode_params(params: dict) -> str:
    """A saved view's query parameters as a query string (repeated `label`s included)."""
    return urlencode(params, doseq=True)
