"""Pictures of image letters: the CDN files are encrypted, so the upstream's downloadImage turns a
letter's XML into a plain file URL. The URL is kept on the message until shortly before the
upstream lets it expire, so a picture is asked for once a week at most, whoever opens it."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.utils import timezone

from accounts.client import VideosApiError
from inbox.models import Message

log = logging.getLogger(__name__)

# downloadImage's URLs are valid for 7 days; stop using one a day early so a page opened just
# before the end never shows a broken picture.
IMAGE_URL_LIFETIME = timedelta(days=6)
# Normal size first (sharp enough, far smaller than HD), then HD, then the thumbnail: the
# upstream's advice is to try another type when one fails.
IMAGE_TYPES = (2, 1, 3)


def has_fresh_url(message: Message) -> bool:
    return bool(
        message.image_url
        and message.image_url_expires_at
        and message.image_url_expires_at > timezone.now()
    )


def request_image(message: Message) -> bool:
    """Queue a download for `message` unless its URL is still fresh; True when queued."""
    from inbox.tasks import fetch_image_url

    if message.msg_type != Message.Type.IMAGE or has_fresh_url(message):
        return False
    if message.image_error:
        Message.objects.filter(pk=message.pk).update(image_error="", updated_at=timezone.now())
        message.image_error = ""
    fetch_image_url.delay_on_commit(message.pk)
    return True


def fetch_image_url(message_id: int) -> str | None:
    """Ask the upstream for the picture's URL and store it (or the reason there is none).
    Safe to run twice: a fresh URL is kept, not fetched again."""
    message = (
        Message.objects.select_related("account")
        .filter(pk=message_id, msg_type=Message.Type.IMAGE)
        .first()
    )
    if message is None:
        return None
    if has_fresh_url(message):
        return message.image_url
    error = "no image XML"
    if message.content:
        with message.account.client() as client:
            for image_type in IMAGE_TYPES:
                try:
                    url = client.download_image(xml=message.content, image_type=image_type)
                except VideosApiError as exc:
                    error = str(exc)
                    if exc.needs_operator:
                        break
                    continue
                now = timezone.now()
                Message.objects.filter(pk=message.pk).update(
                    image_url=url,
                    image_url_expires_at=now + IMAGE_URL_LIFETIME,
                    image_error="",
                    updated_at=now,
                )
                return url
    log.info("no picture for message %s: %s", message.pk, error)
    Message.objects.filter(pk=message.pk).update(image_error=error[:500], updated_at=timezone.now())
    return None
