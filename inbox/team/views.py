"""The bell (its dropdown, its poll, mark all read, opening a notification), the notification
preferences page, and the members a note may mention. Every view is the signed-in user's own;
what a notification points at is checked against the user's accounts again."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from inbox import browse
from inbox.team import mentions, notifications
from inbox.team.forms import PreferencesForm
from inbox.team.models import Notification
from inbox.views import _fragment, _get_session_for_user


def _list_context(request: HttpRequest) -> dict:
    items = notifications.recent(request.user)
    for item in items:
        item.headline = notifications.headline(item)
    return {"notifications": items, "unread": len(notifications.unread_ids(request.user))}


@require_GET
@login_required
def notification_list(request: HttpRequest) -> HttpResponse:
    """The bell's dropdown (htmx), or the same list as a page."""
    context = _list_context(request)
    template = "inbox/team/notifications.html"
    return render(request, f"{template}#list" if _fragment(request) else template, context)


@require_GET
@login_required
def poll(request: HttpRequest) -> JsonResponse:
    """The bell's badge, and the notifications newer than `after` that want a browser
    notification or a sound. One query when there is nothing new."""
    after = request.GET.get("after", "")
    if after and not browse.is_number(after):
        return JsonResponse({"error": _("after must be a notification id")}, status=400)
    ids = notifications.unread_ids(request.user)
    newest = ids[0] if ids else 0
    fresh = []
    if after and newest > int(after):
        fresh = [_as_json(item) for item in notifications.newer_than(request.user, int(after))]
    return JsonResponse(
        {
            "unread": len(ids),
            "badge": notifications.badge(len(ids)),
            "latest": max(newest, int(after or 0)),
            "new": fresh[::-1],
        }
    )


def _as_json(item: Notification) -> dict:
    return {
        "id": item.pk,
        "kind": item.kind,
        "title": notifications.headline(item),
        "body": item.text,
        "browser": item.browser,
        "sound": item.sound,
    }


@require_POST
@login_required
def mark_all_read(request: HttpRequest) -> HttpResponse:
    notifications.mark_all_read(request.user)
    if _fragment(request):
        return render(request, "inbox/team/notifications.html#list", _list_context(request))
    return redirect("inbox:team:notifications")


@require_POST
@login_required
def open_notification(request: HttpRequest) -> HttpResponse:
    """Read the user's notifications about the posted one's conversation and go there. A
    notification of an account the user has left is 404, like the conversation."""
    pk = request.POST.get("notification", "")
    if not browse.is_number(pk):
        return HttpResponseBadRequest(_("Choose a notification."))
    notification = get_object_or_404(notifications.visible(request.user), pk=int(pk))
    session = _get_session_for_user(request, notification.session_id)
    notifications.mark_session_read(request.user, session.pk)
    return redirect(session.get_absolute_url())


@require_http_methods(["GET", "POST"])
@login_required
def preferences(request: HttpRequest) -> HttpResponse:
    current = notifications.preferences(request.user)
    form = PreferencesForm(request.POST or None, current=current)
    saved = False
    if request.method == "POST":
        if not form.is_valid():
            return render(request, "inbox/team/preferences.html", {"form": form}, status=400)
        notifications.save_preferences(request.user, form.channels())
        form = PreferencesForm(current=notifications.preferences(request.user))
        saved = True
    return render(request, "inbox/team/preferences.html", {"form": form, "saved": saved})


@require_GET
@login_required
def mention_candidates(request: HttpRequest, pk: int) -> JsonResponse:
    """Members of the conversation's account the composer's `@` list offers, filtered by `q`."""
    session = _get_session_for_user(request, pk)
    query = request.GET.get("q", "")[:150]
    return JsonResponse({"members": mentions.suggestions(session.account_id, query)})
