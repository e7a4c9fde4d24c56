"""Celery tasks: thin wrappers that take primary keys, re-fetch, and call the services.
Each is safe to run twice."""

from __future__ import annotations

import logging

from celery import shared_task

from accounts.models import Account
from inbox import services, sync

log = logging.getLogger(__name__)


@shared_task(ignore_result=True)
def sync_account(account_id: int) -> None:
    """One sync pass for one account; a second run while one is going exits quietly."""
    account = Account.objects.filter(pk=account_id).first()
    if account is None:
        log.info("sync_account: account %s no longer exists", account_id)
        return
    try:
        result = sync.sync_account(account)
    except sync.SyncAlreadyRunning:
        log.info("sync_account: account %s is already being synced; skipping", account_id)
        return
    except sync.SyncFailed:
        # Recorded on the account (health fields, backoff); beat retries when it is due.
        return
    if not result.caught_up:
        sync_account.delay(account_id)


@shared_task(ignore_result=True)
def sync_due_accounts() -> int:
    """Run by beat: queue a pass for every enabled, unpaused account whose time has come."""
    due = list(Account.objects.due_for_sync().values_list("pk", flat=True))
    for account_id in due:
        sync_account.delay(account_id)
    return len(due)


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
def fetch_image_url(message_id: int) -> None:
    """Ask the upstream for an image letter's file URL and keep it on the message."""
    from inbox import images

    images.fetch_image_url(message_id)
