"""Handing work to the Celery worker from the services, after their transaction commits.

Services queue through here rather than importing inbox.tasks (which imports the services), and
tasks never import this module. Queuing is like `delay_on_commit`, with one difference: a
publish that fails (the broker is down or unreachable) is logged, not raised. The row it was for
is committed by then, so raising would only turn a saved reply into an error page; beat's sweep
(services.requeue_unclaimed_replies) queues it again once the broker is back.
"""

from __future__ import annotations

import logging
from functools import partial

from django.db import transaction

log = logging.getLogger(__name__)


def send_reply_later(message_id: int) -> None:
    """Queue the send_reply task for this reply when the current transaction commits."""
    transaction.on_commit(partial(_publish_send_reply, message_id))


def _publish_send_reply(message_id: int) -> None:
    from inbox.tasks import send_reply  # here, not at the top: tasks import the services

    try:
        send_reply.delay(message_id)
    except Exception:
        # Whatever the broker did (refused, timed out, answered nonsense), the reply is stored
        # as sending with its queued_at; the sweep finds it unclaimed and queues it again.
        log.exception(
            "reply %s is saved but could not be queued; the reply sweep will queue it again",
            message_id,
        )
