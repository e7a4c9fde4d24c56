"""Filters for the inbox templates: safe text with links, times in the reader's zone and
language, message type names, file sizes and search snippets.

Everything that returns markup escapes first and marks up second; only http(s) URLs become
links, so a letter can never carry a `javascript:` link into the page."""

from __future__ import annotations

import json
import re
import uuid
from datetime import datetime, timedelta

from django import template
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import escape, format_html
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext as _

from inbox import images
from inbox.models import Message

register = template.Library()

# An http(s) URL, stopping at whitespace, quotes, angle brackets and CJK punctuation (a Chinese
# sentence often runs straight on after a link).
URL_RE = re.compile(r"""\bhttps?://[^\s<>"'\u3000-\u303f\uff01-\uff0f\uff1a-\uff20]+""", re.I)
# Plain ASCII punctuation that ends a sentence rather than a URL.
TRAILING = ".,;:!?)]}'\""

SNIPPET_BEFORE = 30
SNIPPET_AFTER = 80


@register.filter
def linkify(text: str) -> SafeString:
    """Escaped text with line breaks kept and http(s) URLs made into links."""
    parts: list[str] = []
    position = 0
    for match in URL_RE.finditer(text or ""):
        url = match.group(0)
        stripped = url.rstrip(TRAILING)
        # Keep a closing bracket that the URL itself opened, as in wiki links.
        while (
            stripped != url
            and url[len(stripped)] == ")"
            and stripped.count("(") > stripped.count(")")
        ):
            stripped += ")"
        url = stripped
        start = match.start()
        parts.append(escape(text[position:start]))
        parts.append(
            format_html(
                '<a href="{}" target="_blank" rel="noopener noreferrer nofollow">{}</a>', url, url
            )
        )
        position = start + len(url)
    parts.append(escape((text or "")[position:]))
    return mark_safe("".join(parts).replace("\r\n", "\n").replace("\n", "<br>"))


@register.filter
def highlight(text: str, query: str) -> SafeString:
    """A short snippet of `text` around the first match of `query`, escaped, with the match in
    <mark>. Text without the match gives its beginning."""
    text = " ".join((text or "").split())
    query = " ".join((query or "").split())
    index = text.lower().find(query.lower()) if query else -1
    if index < 0:
        head = text[: SNIPPET_BEFORE + SNIPPET_AFTER]
        return mark_safe(escape(head) + ("…" if len(text) > len(head) else ""))
    start = max(0, index - SNIPPET_BEFORE)
    end = index + len(query) + SNIPPET_AFTER
    return format_html(
        "{}{}<mark>{}</mark>{}{}",
        "…" if start > 0 else "",
        text[start:index],
        text[index : index + len(query)],
        text[index + len(query) : end],
        "…" if end < len(text) else "",
    )


@register.filter
def type_label(msg_type: int | None) -> str:
    """A message type in the reader's language: "Image", or "message type 9999"."""
    if msg_type is None:
        return ""
    try:
        return str(Message.Type(msg_type).label)
    except ValueError:
        return _("message type %(number)s") % {"number": msg_type}


@register.filter
def session_preview(session) -> str:
    """The session list's preview line: the stored text, or the last message's type worded in
    the reader's language ("[Image]")."""
    if session.last_message_preview:
        return session.last_message_preview
    if session.last_message_type in (None, Message.Type.TEXT):
        return ""
    return f"[{type_label(session.last_message_type)}]"


def _minutes_ago(moment: datetime, now: datetime) -> int | None:
    """Whole minutes since `moment` when it was within the last hour, else None."""
    age = now - moment
    if timedelta(0) <= age < timedelta(hours=1):
        return int(age.total_seconds() // 60)
    if timedelta(minutes=-5) < age < timedelta(0):  # a clock a little ahead of ours
        return 0
    return None


def _relative(minutes: int) -> str:
    if minutes == 0:
        return _("just now")
    # The same words as inbox.js uses when it refreshes the time ("min" has no plural).
    return _("%(count)d min ago") % {"count": minutes}


@register.filter
def message_time(moment: datetime) -> str:
    """A bubble's time: relative within the last hour, else the local clock time."""
    if moment is None:
        return ""
    minutes = _minutes_ago(moment, timezone.now())
    if minutes is not None:
        return _relative(minutes)
    return date_format(timezone.localtime(moment), "H:i")


@register.filter
def list_time(moment: datetime) -> str:
    """The session list's time: relative within the hour, the clock time today, "Yesterday",
    the weekday within a week, else the date."""
    if moment is None:
        return ""
    now = timezone.now()
    minutes = _minutes_ago(moment, now)
    if minutes is not None:
        return _relative(minutes)
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
def day_label(moment: datetime) -> str:
    """A thread's day separator: "Today", "Yesterday", or the date."""
    local = timezone.localtime(moment)
    days = (timezone.localtime().date() - local.date()).days
    if days == 0:
        return _("Today")
    if days == 1:
        return _("Yesterday")
    if 1 < days < 7:
        return f"{date_format(local, 'l')} · {date_format(local, 'DATE_FORMAT')}"
    return date_format(local, "DATE_FORMAT")


@register.filter
def day_key(moment: datetime) -> str:
    return timezone.localtime(moment).strftime("%Y%m%d")


@register.filter
def full_time(moment: datetime) -> str:
    return date_format(timezone.localtime(moment), "DATETIME_FORMAT")


@register.filter
def iso(moment: datetime) -> str:
    return moment.isoformat() if moment else ""


@register.filter
def is_recent(moment: datetime) -> bool:
    return moment is not None and _minutes_ago(moment, timezone.now()) is not None


@register.filter
def card_width(image) -> int:
    """The image card's width in CSS pixels: landscape pictures 240 wide, portrait ones as wide
    as their shape allows within 240 high, never narrower than 120."""
    ratio = image.aspect_ratio if image else 1.0
    return max(120, min(240, round(240 * ratio)))


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


RECALL_TEXT = re.compile(r"<replacemsg>\s*(?:<!\[CDATA\[)?(.*?)(?:\]\]>)?\s*</replacemsg>", re.S)


@register.filter
def system_text(message: Message) -> str:
    """A system notice's words. A recall may come as XML; its <replacemsg> is the sentence."""
    content = (message.content or "").strip()
    if content.startswith("<"):
        found = RECALL_TEXT.search(content)
        if found and found.group(1).strip():
            return found.group(1).strip()
        if message.msg_type == Message.Type.RECALL:
            return _("A message was recalled.")
        return f"[{type_label(message.msg_type)}]"
    return content or f"[{type_label(message.msg_type)}]"


@register.filter
def pretty_json(value) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True, default=str)


@register.filter
def has_fresh_image(message: Message) -> bool:
    return images.has_fresh_url(message)


@register.simple_tag
def minutes_ago_pattern() -> str:
    """The words for "N min ago" with the number left as %(count)d, for inbox.js."""
    return _("%(count)d min ago")


@register.filter
def person(user) -> str:
    """A staff member as the inbox names them: the full name, else the user name."""
    if user is None:
        return ""
    return user.get_full_name() or user.get_username()


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
