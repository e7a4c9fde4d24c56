"""Pictures of image letters: the CDN files are encrypted, so the upstream's downloadImage turns a
letter's XML into a plain file URL. The URL is kept on the message until shortly before the
upstream lets it expire, so a picture is asked for once a week at most, whoever opens it.

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
    """Queue a download for `message` unless its URL is still fresh or one is already queued;
    True when this call queued one."""
    from inbox.tasks import fetch_image_url

    if message.msg_type != Message.Type.IMAGE or has_fresh_url(message):
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


def fetch_image_url(message_id: int) -> str | None:
    """Ask the upstream for the picture's URL and store it (or the reason there is none), then
    release the letter's claim. Safe to run twice: a fresh URL is kept, not fetched again."""
    message = (
        Message.objects.select_related("account")
        .filter(pk=message_id, msg_type=Message.Type.IMAGE)
        .first()
    )
    if message is None:
        return None
    if has_fresh_url(message):
        release(message_id)
        return message.image_url
    url, error = _download(message) if message.content else (None, "no image XML")
    now = timezone.now()
    if url:
        Message.objects.filter(pk=message.pk).update(
            image_url=url,
            image_url_expires_at=now + IMAGE_URL_LIFETIME,
            image_error="",
            image_fetch_started_at=None,
            updated_at=now,
        )
        return url
    log.info("no picture for message %s: %s", message.pk, error)
    release(message_id, error)
    return None


def release(message_id: int, error: str = "") -> None:
    """End the letter's pending download, with the reason it failed (shown on the card)."""
    Message.objects.filter(pk=message_id).update(
        image_fetch_started_at=None,
        image_error=clean_text(error)[:IMAGE_ERROR_LENGTH],
        updated_at=timezone.now(),
    )


def _download(message: Message) -> tuple[str | None, str]:
    """(URL, "") for the first size the upstream gives a usable URL for, else (None, why)."""
    error = ""
    deadline = time.monotonic() + settings.IMAGE_FETCH_SECONDS
    options = {
        "connect_timeout": CONNECT_TIMEOUT,
        "read_timeout": settings.IMAGE_FETCH_READ_TIMEOUT,
        "retries": 0,
        "deadline": deadline,
    }
    with message.account.client(**options) as client:
        for image_type in IMAGE_TYPES:
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
