"""Request-level guards: oversized bodies refused before they are read, sessions that end after
a spell of inactivity, and the client address that login throttling counts by."""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.template.defaultfilters import filesizeformat
from django.utils.translation import gettext as _

from inbox.services import MAX_IMAGE_BYTES


class RequestBodyLimitMiddleware:
    """Answer 413 to a request whose Content-Length is over MAX_REQUEST_BODY_BYTES, without
    reading its body. Django would otherwise stream an upload of any size into a temporary file
    before the form could say it is too large; this way a 60 MB "image" costs nothing. A body
    sent without a Content-Length is not read by Django at all, so this is the whole gate."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        length = _declared_length(request)
        if length > settings.MAX_REQUEST_BODY_BYTES:
            # Plain text: the composer's script shows it as it is (htmx does not swap a 413).
            message = _("The upload is too large (%(size)s). Images can be at most %(limit)s.") % {
                "size": filesizeformat(length),
                "limit": filesizeformat(MAX_IMAGE_BYTES),
            }
            return HttpResponse(message, status=413, content_type="text/plain; charset=utf-8")
        return self.get_response(request)


def _declared_length(request: HttpRequest) -> int:
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0  # Django reads no body for a Content-Length it cannot parse either


class IdleSessionMiddleware:
    """Keep a signed-in session alive while its user does something, and only then: each request
    a person makes moves the session's expiry SESSION_COOKIE_AGE into the future, while the
    inbox's background polls (every 3 s in an open tab) do not, so a tab left open overnight
    signs out like a closed one. The expiry moves at most once every five minutes (a session
    may end that much before its full idle time), which keeps a busy user from costing a
    session write per click."""

    BACKGROUND_VIEWS = frozenset(
        {
            "inbox:sessions_poll",
            "inbox:thread_poll",
            "inbox:image",
            "inbox:live:heartbeat",
            "inbox:live:close",
            "inbox:live:events",
        }
    )
    ACTIVITY_KEY = "inbox_activity_at"
    REFRESH_SECONDS = 300

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        match = request.resolver_match
        # The view is looked at first: a background request (the live heartbeat counts on it)
        # must not load the session and the user just to be skipped.
        if (
            match is not None
            and match.view_name not in self.BACKGROUND_VIEWS
            and request.user.is_authenticated
        ):
            now = int(time.time())
            if now - request.session.get(self.ACTIVITY_KEY, 0) >= self.REFRESH_SECONDS:
                # A changed session is saved with a fresh expiry and its cookie sent again.
                request.session[self.ACTIVITY_KEY] = now
        return response


def note_activity_at_sign_in(sender, request: HttpRequest, user, **kwargs) -> None:
    """Signing in is activity: noted in the session it creates, so the first page after it does
    not write the session again."""
    if request is not None and hasattr(request, "session"):
        request.session[IdleSessionMiddleware.ACTIVITY_KEY] = int(time.time())


def client_address(request: HttpRequest) -> str | None:
    """The address login throttling counts failures by. Directly exposed, the connection's own;
    with DJANGO_BEHIND_PROXY, the address our proxies recorded in X-Forwarded-For, counted
    DJANGO_PROXY_COUNT entries from the right (each proxy appends the address it received the
    request from, so entries further left are whatever the client chose to send)."""
    remote = request.META.get("REMOTE_ADDR")
    if not settings.BEHIND_PROXY:
        return remote
    hops = [hop.strip() for hop in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
    hops = [hop for hop in hops if hop]
    if len(hops) < settings.PROXY_COUNT:
        return remote
    candidate = hops[-settings.PROXY_COUNT]
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return remote
