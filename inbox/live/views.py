"""The live endpoints: the tab's heartbeat (presence, and who else is in the open conversation),
the availability switch, the goodbye of a closing tab, and the server-sent events stream."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import (
    HttpRequest,
    HttpResponse,
    HttpResponseBadRequest,
    HttpResponseForbidden,
)
from django.shortcuts import redirect
from django.utils.html import format_html_join
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from inbox import browse
from inbox.live import forms, presence, publish, tokens
from inbox.team.assignment import agent_available


@require_POST
def heartbeat(request: HttpRequest) -> HttpResponse:
    """A tab is open; with a conversation's token, that conversation is on screen (and maybe
    being typed in). Answers with the line the thread header shows about the others there, or
    204 without a conversation.

    With a fresh token: no database query at all (the session is never loaded). A stale one is
    checked against the signed-in user and their membership, and renewed (X-Live-Token)."""
    form = forms.HeartbeatForm(request.POST)
    if not form.is_valid():
        return HttpResponseBadRequest("bad heartbeat")
    data = form.cleaned_data
    claims = tokens.read(request, data["token"])
    if claims is None:
        return HttpResponseForbidden("sign in again")
    renewed = None
    if not claims.fresh:
        if request.user.pk != claims.user_id or not _may_view(request, claims.session_id):
            return HttpResponseForbidden("sign in again")
        renewed = tokens.issue(request, request.user, claims.session_id)
    beat = presence.heartbeat(
        claims.user_id,
        claims.name,
        data["tab"],
        active=data["active"],
        session_id=claims.session_id,
        typing=data["typing"],
    )
    if beat.changed and beat.others:
        # They see this tab arrive or start typing at once, not at their next heartbeat.
        publish.to_users(
            [other.user_id for other in beat.others], "viewers", {"session": claims.session_id}
        )
    if beat.came_online:
        agent_available(claims.user_id)
    if claims.session_id is None:
        response = HttpResponse(status=204)
    else:
        response = HttpResponse(viewers_line(beat.others))
    if renewed:
        response["X-Live-Token"] = renewed
    return response


def _may_view(request: HttpRequest, session_id: int | None) -> bool:
    if not request.user.is_authenticated:
        return False
    return (
        session_id is None or browse.visible_sessions(request.user).filter(pk=session_id).exists()
    )


def viewers_line(others: list[presence.Viewer]) -> str:
    """'王芳 is typing… · 张三 is viewing', escaped."""
    return format_html_join(
        " · ",
        '<span class="live-viewer{}">{}</span>',
        (
            (
                " is-typing" if other.typing else "",
                _("%(name)s is typing…") % {"name": other.name}
                if other.typing
                else _("%(name)s is viewing") % {"name": other.name},
            )
            for other in others
        ),
    )


@require_POST
def close_tab(request: HttpRequest) -> HttpResponse:
    """A tab's page is going away (sent as a beacon): it stops counting now rather than when its
    heartbeats time out. Tokens past their age are ignored: they time out anyway."""
    form = forms.CloseTabForm(request.POST)
    if not form.is_valid():
        return HttpResponseBadRequest("bad tab")
    claims = tokens.read(request, form.cleaned_data["token"])
    if claims is not None and claims.fresh:
        tab = form.cleaned_data["tab"]
        presence.close_tab(claims.user_id, tab)
        if claims.session_id is not None:
            presence.leave(claims.user_id, claims.name, tab, claims.session_id)
    return HttpResponse(status=204)


@require_POST
@login_required
def set_status(request: HttpRequest) -> HttpResponse:
    """The sidebar's switch: online, busy or away."""
    form = forms.StatusForm(request.POST)
    if not form.is_valid():
        return HttpResponseBadRequest(_("Choose online, busy or away."))
    presence.set_status(request.user.pk, form.cleaned_data["status"])
    if form.cleaned_data["status"] == presence.ONLINE:
        agent_available(request.user.pk)
    if request.htmx:
        return HttpResponse(status=204)
    return redirect("inbox:index")


@require_GET
def events(request: HttpRequest) -> HttpResponse:
    """The events stream's address. Under an ASGI server inbox/asgi.py answers it before
    Django does (inbox/live/asgi.py); reaching this view means a WSGI server, where a stream
    would hold a worker for its whole life, so the answer is 204, which tells the browser's
    EventSource not to come back: the tab keeps polling."""
    return HttpResponse(status=204)
