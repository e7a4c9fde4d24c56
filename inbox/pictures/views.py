"""Serving stored pictures: only to members of the letter's account (anyone else, and any
unknown letter or kind, gets 404), from our own files, never by redirecting to the upstream."""

from __future__ import annotations

import logging

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, HttpResponseNotModified
from django.views.decorators.http import require_safe

from inbox.pictures import services

log = logging.getLogger(__name__)


@require_safe
@login_required
def picture(request: HttpRequest, pk: int, kind: str) -> HttpResponse:
    stored = services.picture_for(request.user, pk, kind)
    if stored is None:
        raise Http404("no such picture")
    services.note_shown(stored)
    etag = f'"{stored.sha256}"'
    if etag in request.headers.get("If-None-Match", ""):
        response = HttpResponseNotModified()
    else:
        try:
            file = stored.path.open("rb")
        except FileNotFoundError:
            log.warning("stored picture %s has no file at %s", stored.pk, stored.path)
            raise Http404("no such picture") from None
        response = FileResponse(file, content_type=stored.content_type)
        response["Content-Disposition"] = f'inline; filename="{pk}-{kind}.{stored.path.suffix[1:]}"'
    # The URL carries the content's version (?v=), so a browser may keep it; private, because
    # only members may see it.
    response["Cache-Control"] = f"private, max-age={settings.PICTURES_CACHE_SECONDS}"
    response["ETag"] = etag
    response["X-Content-Type-Options"] = "nosniff"
    return response
