"""Celery tasks: thin wrappers that take primary keys, re-fetch, and call the services.
Each is safe to run twice."""

from __future__ import annotations

import logging
from datetime import timedelta

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.models import Account
from inbox import contacts, services, sync
from inbox.models import Session

log = logging.getLogger(__name__)


@shared_task(ignore_result=True)
def sync_account(account_id: int) -> None:
    """One sync pass for one account; a second run while one is going exits quietly. Queued by
    beat (sync_due_accounts), by itself when a pass stops before catching up, and by admin."""
    account = Account.objects.filter(pk=account_id).first()
    if account is None:
        log.info("sync_account: account %s no longer exists", account_id)
        return
    if not account.enabled or account.paused_reason:
        # Paused after this task was queued; the operator's word wins.
        log.info("sync_account: account %s is paused; skipping", account_id)
        return
    started = timezone.now()
    try:
        result = sync.sync_account(account)
    except sync.SyncAlreadyRunning:
        log.info("sync_account: account %s is already being synced; skipping", account_id)
        return
    except sync.SyncFailed:
        # Recorded on the account (health fields, backoff); beat retries when it is due.
        return
    except SoftTimeLimitExceeded:
        # The page in flight rolled back and the lease is released; what was stored stays.
        sync.record_failure(account, "the pass ran past its time limit (a slow upstream?)")
        log.warning("sync_account: account %s ran past its time limit", account_id)
        return
    if result.new_sessions:
        new_sessions = Session.objects.filter(
            account_id=account_id, created_at__gte=started, peer_nickname=""
        ).values_list("pk", flat=True)
        fill_peer_nicknames.delay(list(new_sessions))
    if not result.caught_up:
        sync_account.delay(account_id)


@shared_task(ignore_result=True)
def sync_due_accounts() -> int:
    """Run by beat every few seconds: queue a pass for every enabled, unpaused account whose time
    has come. Each is claimed first (its next sync time pushed out by a lease length in the same
    transaction), so while its task waits in a slow queue later ticks do not queue it again; the
    pass then sets the real next time. A claim whose task is lost simply expires."""
    now = timezone.now()
    with transaction.atomic():
        due = list(
            Account.objects.due_for_sync(now)
            .select_for_update(skip_locked=True)
            .values_list("pk", flat=True)
        )
        Account.objects.filter(pk__in=due).update(
            next_sync_at=now + timedelta(seconds=settings.SYNC_LEASE_SECONDS)
        )
    for account_id in due:
        sync_account.delay(account_id)
    return len(due)


@shared_task(ignore_result=True)
def fill_peer_nicknames(session_ids: list[int]) -> int:
    """Queued after a pass that created sessions: their peers' nicknames from contactList."""
    return contacts.fill_peer_nicknames(session_ids)


@shared_task(ignore_result=True)
def reopen_snoozed_sessions() -> int:
    """Run by beat: snoozed sessions whose time has come go back to open."""
    return services.reopen_due_snoozed_sessions()


@shared_task(bind=True, ignore_result=True, max_retries=len(services.SEND_RETRY_DELAYS))
def send_reply(self, message_id: int) -> None:
    """Deliver one composed reply. The service claims the row first, so a duplicate or
    redelivered task sends nothing; transient refusals come back here to retry later."""
    outcome = services.deliver_reply(message_id, attempt=self.request.retries)
    if outcome.retry_in is not None:
        raise self.retry(countdown=outcome.retry_in)


@shared_task(ignore_result=True)
def fail_stuck_sends() -> int:
    """Run by beat: replies whose worker died mid-send turn failed, so staff can see them."""
    return services.fail_stuck_sends()


@shared_task(ignore_result=True)
def requeue_unclaimed_replies() -> int:
    """Run by beat: replies whose send task was lost are queued again (or, after a few tries,
    fail as not sent)."""
    return services.requeue_unclaimed_replies()


@shared_task(
    ignore_result=True,
    # On the "images" queue (CELERY_TASK_ROUTES). The download bounds itself to
    # IMAGE_FETCH_SECONDS; these only catch what slips past that.
    soft_time_limit=settings.IMAGE_FETCH_SECONDS + 10,
    time_limit=settings.IMAGE_FETCH_SECONDS + 20,
)
def fetch_image_url(message_id: int) -> None:
    """Ask the upstream for an image letter's file URL and keep it on the message."""
    from inbox import images

    try:
        images.fetch_image_url(message_id)
    except SoftTimeLimitExceeded:
        images.release(message_id, "the upstream took too long to answer")
        log.warning("fetch_image_url: message %s ran past its time limit", message_id)


@shared_task(
    ignore_result=True,
    # On the "images" queue (CELERY_TASK_ROUTES), bounded like a picture download; one queued
    # per viewer at a time (inbox.viewers.avatars claims the viewer first).
    soft_time_limit=settings.IMAGE_FETCH_SECONDS + 10,
    time_limit=settings.IMAGE_FETCH_SECONDS + 20,
)
def fetch_viewer_avatar(viewer_id: int) -> None:
    """Download a viewer's avatar (contactList's headUrl) and keep our own copy."""
    from inbox.viewers import avatars

    try:
        avatars.fetch_avatar(viewer_id)
    except SoftTimeLimitExceeded:
        avatars.finish(viewer_id, "the picture took too long to download")
        log.warning("fetch_viewer_avatar: viewer %s ran past its time limit", viewer_id)
