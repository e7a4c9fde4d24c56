"""The inbox page's live parts: the tab's settings for static/inbox/live.js, the availability
switch, the thread header's "who else is here" line, and availability in the assignee picker."""

from __future__ import annotations

from django import template
from django.conf import settings
from django.urls import reverse

from inbox.live import presence, tokens

register = template.Library()


@register.inclusion_tag("live/tab.html", takes_context=True)
def live_tab(context) -> dict:
    request = context["request"]
    return {
        "token": tokens.issue(request, request.user),
        "heartbeat_url": reverse("inbox:live:heartbeat"),
        "close_url": reverse("inbox:live:close"),
        "events_url": reverse("inbox:live:events") if settings.LIVE_SSE else "",
        "csrf_token": context.get("csrf_token"),
    }


@register.inclusion_tag("live/switch.html", takes_context=True)
def live_switch(context) -> dict:
    """The sidebar's online / busy / away switch (one read of the store)."""
    request = context["request"]
    chosen = presence.chosen_status(request.user.pk)
    return {
        "choices": [(value, presence.LABELS[value]) for value in presence.CHOSEN],
        "chosen": chosen,
        "csrf_token": context.get("csrf_token"),
    }


@register.inclusion_tag("live/viewers.html", takes_context=True)
def live_viewers(context, session) -> dict:
    """The thread header's line about the others in this conversation; live.js fills it from
    each heartbeat's answer, so it renders empty (and htmx keeps it across header swaps)."""
    request = context["request"]
    return {"session": session, "token": tokens.issue(request, request.user, session.pk)}


@register.simple_tag
def with_availability(members) -> list[tuple]:
    """(member, availability label, availability) for each member, one read of the store."""
    members = list(members)
    states = presence.availability(member.pk for member in members)
    return [(member, presence.LABELS[states[member.pk]], states[member.pk]) for member in members]
