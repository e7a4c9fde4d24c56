"""The heartbeat's own credentials: a signed token, so a heartbeat every 2 s costs no database
query for the session and user lookup (Django's session authentication costs two).

A page the inbox renders (after its usual sign-in and membership checks) carries a token that
names the user, their display name, and the conversation shown, if any; it is bound to the
browser's session cookie (a digest of it), so it stops working when that session ends or
changes. For LIVE_TOKEN_SECONDS the heartbeat trusts it as it stands; an older one is checked
again the slow way (session, user, membership) and renewed (views.heartbeat).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.core import signing
from django.http import HttpRequest
from django.utils.crypto import salted_hmac

from inbox.text import person

SALT = "inbox.live.tokens"


@dataclass(frozen=True)
class Claims:
    user_id: int
    name: str
    session_id: int | None
    fresh: bool  # signed within LIVE_TOKEN_SECONDS


def _cookie_digest(request: HttpRequest) -> str:
    cookie = request.COOKIES.get(settings.SESSION_COOKIE_NAME, "")
    return salted_hmac(SALT, cookie).hexdigest()[:20]


def issue(request: HttpRequest, user, session_id: int | None = None) -> str:
    return signing.TimestampSigner(salt=SALT).sign_object(
        {"u": user.pk, "n": person(user), "s": session_id, "k": _cookie_digest(request)}
    )


def read(request: HttpRequest, token: str) -> Claims | None:
    """The token's claims if it is ours and belongs to this browser session; None otherwise."""
    signer = signing.TimestampSigner(salt=SALT)
    try:
        payload = signer.unsign_object(token)
    except signing.BadSignature:
        return None
    if not isinstance(payload, dict) or payload.get("k") != _cookie_digest(request):
        return None
    try:
        signer.unsign_object(token, max_age=settings.LIVE_TOKEN_SECONDS)
        fresh = True
    except signing.SignatureExpired:
        fresh = False
    return Claims(int(payload["u"]), str(payload["n"]), payload.get("s"), fresh)
