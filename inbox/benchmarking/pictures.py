"""What the picture probes of benchmark_inbox need on the data set: stored thumbnails for the
image letters of the threads they open (one tiny picture shared by all, content-addressed as
the worker would store it), made once and idempotently."""

from __future__ import annotations

from django.db import transaction

from accounts.sandbox_media import png_bytes
from inbox import browse
from inbox.models import Message, Session
from inbox.pictures import storage
from inbox.pictures.models import MessagePicture


def latest_image_letters(sessions: list[Session]) -> list[int]:
    """The ids of the image letters on each session's latest page: what opening it shows."""
    return [
        message.pk
        for session in sessions
        for message in browse.latest_page(session).messages
        if message.msg_type == Message.Type.IMAGE and message.kind == Message.Kind.LETTER
    ]


def ensure_thumbnails(sessions: list[Session]) -> None:
    """Every image letter on the sessions' latest pages has a stored thumbnail."""
    letters = latest_image_letters(sessions)
    with transaction.atomic():
        picture = storage.store(png_bytes(120, 90, "benchmark thumbnail"))
        MessagePicture.objects.bulk_create(
            [MessagePicture(message_id=pk, kind="thumb", picture=picture) for pk in letters],
            ignore_conflicts=True,
        )
        MessagePicture.objects.filter(message_id__in=letters, kind="thumb").update(
            picture=picture, next_try_at=None, error="", expired_at=None
        )


def forget_thumbnails(session_id: int) -> None:
    """The session's image letters as if their thumbnails were never asked for."""
    MessagePicture.objects.filter(message__session_id=session_id, kind="thumb").delete()
