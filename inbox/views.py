from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET

from inbox.models import Session


def _get_session_for_user(request: HttpRequest, pk: int) -> Session:
    return get_object_or_404(
        Session.objects.visible_to(request.user).select_related("account"), pk=pk
    )


@require_GET
@login_required
def index(request: HttpRequest) -> HttpResponse:
    sessions = (
        Session.objects.visible_to(request.user)
        .select_related("account")
        .order_by("-last_message_at", "-pk")[:50]
    )
    return render(request, "inbox/index.html", {"sessions": sessions})


@require_GET
@login_required
def thread(request: HttpRequest, pk: int) -> HttpResponse:
    session = _get_session_for_user(request, pk)
    messages = session.messages.order_by("created_at", "seq", "pk")
    return render(request, "inbox/thread.html", {"session": session, "messages": messages})
