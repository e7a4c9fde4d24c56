"""Celery tasks of the pictures app: thin wrappers over inbox.pictures.services."""

from __future__ import annotations

import logging

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings

from inbox.pictures import services

log = logging.getLogger(__name__)


@shared_task(
    ignore_result=True,
    # On the "images" queue (CELERY_TASK_ROUTES), like "Load image"'s downloads, and bounded the
    # same way: the fetch keeps to IMAGE_FETCH_SECONDS, these only catch what slips past it.
    soft_time_limit=settings.IMAGE_FETCH_SECONDS + 10,
    time_limit=settings.IMAGE_FETCH_SECONDS + 20,
)
def fetch_thumbnail(message_id: int) -> None:
    """Queued by opening a thread, at the account's rate (services.queue_thumbnails)."""
    try:
        services.fetch_thumbnail(message_id)
    except SoftTimeLimitExceeded:
        services.thumbnail_failed(message_id, "the upstream took too long to answer")
        log.warning("fetch_thumbnail: message %s ran past its time limit", message_id)


@shared_task(ignore_result=True, soft_time_limit=1800, time_limit=1900)
def prune_pictures() -> int:
    """Run by beat once a day. Each batch commits on its own, so a run cut short by its time
    limit keeps what it deleted and the next run goes on from there."""
    result = services.prune_pictures()
    log.info(
        "prune_pictures: %d pictures (%d bytes) deleted, %d letters expired, %d stray files",
        result.pictures,
        result.bytes,
        result.letters,
        result.stray_files,
    )
    return result.pictures
