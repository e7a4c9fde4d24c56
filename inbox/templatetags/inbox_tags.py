"""Filters and tags for the inbox templates: a thread's messages and image cards (built by
inbox.rendering), times in the reader's zone and language, message type names and search
snippets. Everything that returns markup escapes first and marks up second."""

from __future__ import annotations

import uuid
from datetime import datetime

from django import template
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.safestring import SafeString
from django.utils.translation import gettext as _

from inbox import rendering
from inbox import text as safe_text
from inbox.models import Message
from inbox.rendering import minutes_ago, relative

register = template.Library()


def _reader(context) -> rendering.Reader:
    return rendering.Reader.of(context.get("user"), str(context.get("csrf_token") or ""))


@register.simple_tag(takes_context=True)
def message_html(context, message: Message) -> SafeString:
    """One message of a thread for the reader in `context`."""
    return rendering.render_message(message, _reader(context))


@register.simple_tag(takes_context=True)
def thread_messages(context, messages) -> SafeString:
    """A thread's messages with their day separators, for the reader in `context`."""
    return rendering.render_messages(messages, _reader(context))


@register.simple_tag(takes_context=True)
def image_card(context, message: Message, waiting=False, gave_up=False, polls="") -> SafeString:
    """An image letter's card; the image view passes `waiting`, `gave_up` and `polls` while it
    waits for the download."""
    return rendering.render_image_card(
        message,
        _reader(context),
        waiting=bool(waiting),
        gave_up=bool(gave_up),
        polls=polls,
    )


@register.filter
def highlight(text: str, query: str) -> SafeString:
    """A short snippet of `text` around the first match of `query`, with the match marked."""
    return safe_text.highlight(text, query)


@register.filter
def type_label(msg_type: int | None) -> str:
    """A message type in the reader's language: "Image", or "message type 9999"."""
    return safe_text.type_label(msg_type)


@register.filter
def session_preview(session) -> str:
    """The session list's preview line: the stored text, or the last message's type worded in
    the reader's language ("[Image]")."""
    if session.last_message_preview:
        return session.last_message_preview
    if session.last_message_type in (None, Message.Type.TEXT):
        return ""
    return f"[{type_label(session.last_message_type)}]"


@register.filter
def message_time(moment: datetime) -> str:
    """A bubble's time: relative within the last hour, else the local clock time."""
    if moment is None:
        return ""
    minutes = minutes_ago(moment, timezone.now())
    if minutes is not None:
        return relative(minutes)
    return date_format(timezone.localtime(moment), "H:i")


@register.filter
def list_time(moment: datetime) -> str:
    """The session list's time: relative within the hour, the clock time today, "Yesterday",
    the weekday within a week, else the date."""
    if moment is None:
        return ""
    now = timezone.now()
    minutes = minutes_ago(moment, now)
    if minutes is not None:
        return relative(minutes)
    local, today = timezone.localtime(moment), timezone.localtime(now).date()
    days = (today - local.date()).days
    if days == 0:
        return date_format(local, "H:i")
    if days == 1:
        return _("Yesterday")
    if 1 < days < 7:
        return date_format(local, "l")
    if local.year == today.year:
        return date_format(local, "MONTH_DAY_FORMAT")
    return date_format(local, "SHORT_DATE_FORMAT")


@register.filter
def full_time(moment: datetime) -> str:
    return date_format(timezone.localtime(moment), "DATETIME_FORMAT")


@register.filter
def iso(moment: datetime) -> str:
    return moment.isoformat() if moment else ""


@register.filter
def is_recent(moment: datetime) -> bool:
    return moment is not None and minutes_ago(moment, timezone.now()) is not None


@register.filter
def initial(name: str) -> str:
    """The avatar's letter."""
    name = (name or "?").strip()
    return name[:1].upper() if name else "?"


@register.filter
def hue(value) -> int:
    """A stable colour for an avatar, from the session's id."""
    return (int(value or 0) * 47) % 360


@register.filter
def clock(moment: datetime) -> str:
    """The local clock time: what a relative time turns into once it is an hour old."""
    return date_format(timezone.localtime(moment), "H:i")


@register.simple_tag
def minutes_ago_pattern() -> str:
    """The words for "N min ago" with the number left as %(count)d, for inbox.js."""
    return _("%(count)d min ago")


@register.filter
def person(user) -> str:
    """A staff member as the inbox names them: the full name, else the user name."""
    return safe_text.person(user)


@register.simple_tag
def new_client_token() -> str:
    """A fresh idempotency key for one composed reply: a re-post of the same form (double click,
    browser resend) carries the same key and finds the reply made the first time."""
    return str(uuid.uuid4())


@register.filter
def local_input(moment: datetime) -> str:
    """A datetime-local input's value: the clock time in the inbox's time zone."""
    return timezone.localtime(moment, timezone.get_default_timezone()).strftime("%Y-%m-%dT%H:%M")


@register.filter
def snooze_time(moment: datetime) -> str:
    """When a snooze ends: the clock time if today, else weekday or date and the time."""
    local = timezone.localtime(moment)
    days = (local.date() - timezone.localtime().date()).days
    clock_time = date_format(local, "H:i")
    if days == 0:
        return clock_time
    if days == 1:
        return _("tomorrow %(time)s") % {"time": clock_time}
    if 1 < days < 7:
        return f"{date_format(local, 'l')} {clock_time}"
    return f"{date_format(local, 'MONTH_DAY_FORMAT')} {clock_time}"
