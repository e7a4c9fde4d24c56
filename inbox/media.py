"""The files of image replies, served to whoever has the link: the upstream fetches them from
PUBLIC_BASE_URL. Names are random (uuid4), so a link cannot be guessed; nothing else under
MEDIA_ROOT is reachable here."""

from __future__ import annotations

from django.conf import settings
from django.http import FileResponse, Http404, HttpRequest
from django.views.decorators.http import require_safe

CONTENT_TYPES = {"png": "image/png", "jpg": "image/jpeg", "gif": "image/gif", "webp": "image/webp"}


@require_safe
def reply_image(
    request: HttpRequest, year: str, month: str, name: str, extension: str
) -> FileResponse:
    path = settings.MEDIA_ROOT / "replies" / year / month / f"{name}.{extension}"
    if not path.is_file():
        raise Http404("no such image")
    response = FileResponse(path.open("rb"), content_type=CONTENT_TYPES[extension])
    response["Cache-Control"] = "public, max-age=604800, immutable"
    response["X-Content-Type-Options"] = "nosniff"
    return response
