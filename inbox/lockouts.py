"""Sign-in lockouts (django-axes does the counting): the page a locked-out sign-in gets, and
lifting a lockout early, which the audit trail records."""

from __future__ import annotations

import math

from axes.utils import reset
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from accounts import audit


def lockout_response(
    request: HttpRequest, original_response: HttpResponse | None = None, credentials=None
) -> HttpResponse:
    """AXES_LOCKOUT_CALLABLE: the sign-in page's card with why and for how long, status 429,
    for the inbox's sign-in and admin's alike."""
    minutes = math.ceil(settings.AXES_COOLOFF_TIME.total_seconds() / 60)
    return render(request, "registration/locked_out.html", {"lockout_minutes": minutes}, status=429)


def reset_lockouts(*, username: str | None, ip_address: str | None, via: str) -> int:
    """Forget the failed sign-ins of a user name and of an address (either may be None), which
    lifts their lockouts; with neither, everyone's. `via` names the command that asked, for the
    audit trail. Returns how many attempt records (one per user name, address and browser) were
    removed."""
    removed = reset(username=username, ip=ip_address, ip_or_username=bool(username and ip_address))
    audit.record(
        None,
        audit.Action.LOCKOUT_RESET,
        username=username or "",
        ip_address=ip_address or "",
        attempts_removed=removed,
        via=via,
    )
    return removed
