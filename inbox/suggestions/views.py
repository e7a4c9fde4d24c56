"""The composer's strip of suggested replies, loaded after the thread (hx-trigger="load")."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET

from inbox import browse
from inbox.suggestions import services


@require_GET
@login_required
def strip(request: HttpRequest, pk: int) -> HttpResponse:
    """Suggested replies for the question the viewer is waiting on; an empty strip when there
    is none. Another account's session is a 404."""
    session = get_object_or_404(browse.visible_sessions(request.user), pk=pk)
    context = {"session": session, "suggestions": services.suggestions_for(session)}
    return render(request, "inbox/suggestions/_strip.html", context)
