"""Pictures of image letters: the CDN files are encrypted, so the upstream's downloadImage turns a
letter's XML into a plain file URL, from which the worker downloads the picture into our own
storage (inbox.pictures): pages show our copy, never the URL, which dies after 7 days. The URL
is kept on the message until shortly before then, so a failed download is retried from it
rather than by asking the upstream again.

A download runs on its own queue, bounded to IMAGE_FETCH_SECONDS (short timeouts, no retries),
and a letter has at most one queued at a time: "Load image" claims the letter with
image_fetch_started_at in a conditional UPDATE, and the download releases it when it is done."""

from __future__ import annotations

import logging
import time
from datetime import timedelta
from urllib.parse import urlsplit

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from accounts.client import VideosApiError
from inbox.models import Message
from inbox.payloads import clean_text

log = logging.getLogger(__name__)

# downloadImage's URLs are valid for 7 days; stop using one a day early so a page opened just
# before the end never shows a broken picture.
IMAGE_URL_LIFETIME = timedelta(days=6)
# Normal size first (sharp enough, far smaller than HD), then HD, then the thumbnail: the
# upstream's advice is to try another type when one fails.
IMAGE_TYPES = (2, 1, 3)
IMAGE_URL_LENGTH = Message._meta.get_field("image_url").max_length
IMAGE_ERROR_LENGTH = Message._meta.get_field("image_error").max_length
CONNECT_TIMEOUT = 3


def has_fresh_url(message: Message) -> bool:
    return bool(
        message.image_url
        and message.image_url_expires_at
        and message.image_url_expires_at > timezone.now()
    )


def request_image(message: Message) -> bool:
    """Queue a download for `message` unless its picture is stored or one is already queued;
    True when this call queued one."""
    from inbox.pictures.services import has_full_picture
    from inbox.tasks import fetch_image_url

    if message.msg_type != Message.Type.IMAGE or has_full_picture(message):
        return False
    now = timezone.now()
    claim_expired = now - timedelta(seconds=settings.IMAGE_FETCH_CLAIM_SECONDS)
    claimed = (
        Message.objects.filter(pk=message.pk)
        .filter(
            Q(image_fetch_started_at__isnull=True) | Q(image_fetch_started_at__lt=claim_expired)
        )
        .update(image_fetch_started_at=now, image_error="", updated_at=now)
    )
    if not claimed:
        return False  # a download is on its way; the card polls for it
    message.image_error = ""
    message.image_fetch_started_at = now
    fetch_image_url.delay_on_commit(message.pk)
    return True


def fetch_image_url(message_id: int) -> bool:
    """Fetch the letter's full-size picture into our storage: its file URL from the upstream
    (or the one it gave less than IMAGE_URL_LIFETIME ago), then the bytes; then release the
    letter's claim, with the reason when there is no picture. Safe to run twice: a stored
    picture is not fetched again. True when the picture is stored."""
    from inbox.pictures.services import has_full_picture, store_from_url
    from inbox.pictures.storage import PictureRefused

    message = (
        Message.objects.select_related("account")
        .filter(pk=message_id, msg_type=Message.Type.IMAGE)
        .first()
    )
    if message is None:
        return False
    if has_full_picture(message):
        release(message_id)
        return True
    deadline = time.monotonic() + settings.IMAGE_FETCH_SECONDS
    if has_fresh_url(message):
        url, error = message.image_url, ""
    elif message.content:
        url, error = upstream_file_url(message, IMAGE_TYPES, deadline)
        if url:
            now = timezone.now()
            Message.objects.filter(pk=message.pk).update(
                image_url=url, image_url_expires_at=now + IMAGE_URL_LIFETIME, updated_at=now
            )
    else:
        url, error = None, "no image XML"
    if url:
        try:
            store_from_url(message_id, "full", url, deadline)
        except PictureRefused as exc:
            error = str(exc)
            # The URL may be what failed (expired early): the next try asks the upstream anew.
            Message.objects.filter(pk=message_id).update(image_url="", image_url_expires_at=None)
        else:
            release(message_id)
            return True
    log.info("no picture for message %s: %s", message.pk, error)
    release(message_id, error)
    return False


def release(message_id: int, error: str = "") -> None:
    """End the letter's pending download, with the reason it failed (shown on the card)."""
    Message.objects.filter(pk=message_id).update(
        image_fetch_started_at=None,
        image_error=clean_text(error)[:IMAGE_ERROR_LENGTH],
        updated_at=timezone.now(),
    )


def upstream_file_url(
    message: Message, image_types: tuple[int, ...], deadline: float
) -> tuple[str | None, str]:
    """(URL, "") for the first of `image_types` (downloadImage's 1 HD, 2 normal, 3 thumbnail)
    the upstream gives a usable URL for, else (None, why); every call ends by `deadline` (a
    time.monotonic() value)."""
    error = ""
    options = {
        "connect_timeout": CONNECT_TIMEOUT,
        "read_timeout": settings.IMAGE_FETCH_READ_TIMEOUT,
        "retries": 0,
        "deadline": deadline,
    }
    with message.account.client(**options) as client:
        for image_type in image_types:
            try:
                url = client.download_image(xml=message.content, image_type=image_type)
            except VideosApiError as exc:
                error = str(exc)
                if exc.needs_operator or time.monotonic() >= deadline:
                    break
                continue
            problem = unusable_url(url)
            if problem is None:
                return url, ""
            error = problem
    return None, error


def unusable_url(url: str) -> str | None:
    """Why a fileUrl from the upstream cannot be stored and shown, or None if it can: it must be
    clean text (no NUL, no broken characters), fit the column whole (a cut URL is a broken
    one), and be an absolute http(s) URL without spaces."""
    if len(url) > IMAGE_URL_LENGTH:
        return f"the upstream's image URL is too long ({len(url)} > {IMAGE_URL_LENGTH} characters)"
    try:
        parts = urlsplit(url) if clean_text(url) == url and url.isprintable() else None
    except ValueError:  # e.g. an unclosed [IPv6] host
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.netloc or " " in url:
        return "the upstream's image URL is not a valid http(s) URL"
    return None
