"""Celery tasks of the team features: thin, by primary key, safe to run twice."""

from __future__ import annotations

from celery import shared_task

from inbox.team import assignment, notifications


@shared_task(ignore_result=True)
def assign_waiting_conversations(account_id: int) -> int:
    """Queued after a sync page put conversations in the account's waiting line, or when an
    agent came online: hand them out."""
    return assignment.assign_waiting(account_id)


@shared_task(ignore_result=True)
def assign_waiting_everywhere() -> int:
    """Run by beat: conversations still waiting go to agents who came online or dropped below
    their cap since."""
    return sum(
        assignment.assign_waiting(account_id) for account_id in assignment.accounts_with_waiting()
    )


@shared_task(ignore_result=True)
def prune_notifications() -> int:
    """Run by beat once a day: each agent keeps their newest TEAM_NOTIFICATIONS_KEPT."""
    return notifications.prune()
