"""Auto-assignment: a conversation a viewer's letter opens goes to an online member of its
account, fairly, never above that member's cap of open conversations in the account.

Sync puts each conversation a live letter opened (new, or reopened from resolved or snoozed) and
nobody is assigned to in the account's waiting line (models.WaitingConversation) when the
account assigns automatically, and queues assign_waiting for after its commit. assign_waiting
hands the line out oldest first, as far as online members under their caps allow; what is left
waits for the next call: beat's sweep every TEAM_ASSIGN_SWEEP_SECONDS, or `agent_available`
when someone comes online (inbox.live calls it), or another conversation opening.

Two assigners never exceed a cap together: each locks the account's AssignmentPolicy row first
(SELECT … FOR UPDATE), so one account's assignments run one at a time; each reads the members'
open conversations from the maintained counters (inbox.SessionCounter), which the previous
assigner's committed UPDATE has already moved. The waiting sessions are locked after the policy,
in id order; sync locks sessions but never the policy, so the two cannot deadlock.

Round-robin gives each conversation to the next member (by user id) after the one who had the
last, skipping anyone offline or at their cap; least-busy to the member with the fewest open
conversations in the account, ties going round-robin.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable

from django.db import connection, transaction
from django.db.models import Sum
from django.utils import timezone

from inbox.live import presence
from inbox.models import Message, Session, SessionCounter
from inbox.team import notifications
from inbox.team.models import AgentCap, AssignmentPolicy, Kind, WaitingConversation

log = logging.getLogger(__name__)

# One call assigns at most this many conversations; the rest wait for the next.
BATCH = 200


def online_user_ids(user_ids: list[int]) -> set[int]:
    """Who of these is online now (inbox.live's presence: not busy, not away)."""
    return set(presence.online_user_ids(user_ids))


def queue_opened(account_id: int, session_ids: Iterable[int]) -> int:
    """Put conversations that viewer letters just opened, unassigned, in the account's waiting
    line when it assigns automatically, and hand them out after commit. One INSERT … SELECT,
    which adds nothing when the account's policy is off or the conversation already waits;
    returns how many joined the line."""
    session_ids = sorted(set(session_ids))
    if not session_ids:
        return 0
    values = ", ".join(["(%s)"] * len(session_ids))
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO {WaitingConversation._meta.db_table} (session_id, account_id, queued_at)
            SELECT v.column1, %s, %s FROM (VALUES {values}) AS v
            WHERE EXISTS (
                SELECT 1 FROM {AssignmentPolicy._meta.db_table}
                WHERE account_id = %s AND mode <> %s
            )
            ON CONFLICT DO NOTHING
            RETURNING session_id
            """,
            [account_id, timezone.now(), *session_ids, account_id, AssignmentPolicy.Mode.OFF.value],
        )
        queued = len(cursor.fetchall())
    if queued:
        assign_later(account_id)
    return queued


def assign_later(account_id: int) -> None:
    """Queue assign_waiting for the account once the current transaction commits."""

    def publish() -> None:
        from inbox.team.tasks import assign_waiting_conversations

        try:
            assign_waiting_conversations.delay(account_id)
        except Exception:
            # The line is committed; beat's sweep hands it out.
            log.exception("could not queue auto-assignment of account %s", account_id)

    transaction.on_commit(publish)


def agent_available(user_id: int) -> None:
    """Someone came online (or may take more): hand out the waiting conversations of their
    accounts. For inbox.live to call when an agent's availability turns online."""
    account_ids = (
        WaitingConversation.objects.filter(account__members=user_id)
        .values_list("account_id", flat=True)
        .distinct()
    )
    for account_id in account_ids:
        assign_later(account_id)


def accounts_with_waiting() -> list[int]:
    return list(
        WaitingConversation.objects.order_by("account_id")
        .values_list("account_id", flat=True)
        .distinct()
    )


def assign_waiting(account_id: int) -> int:
    """Hand out the account's waiting conversations, oldest first, to online members under
    their caps; returns how many were assigned. Safe to run concurrently (module docstring)."""
    with transaction.atomic():
        policy = AssignmentPolicy.objects.select_for_update().filter(account_id=account_id).first()
        if policy is None or policy.mode == AssignmentPolicy.Mode.OFF:
            # Switched off meanwhile: nothing waits for an assigner any more.
            WaitingConversation.objects.filter(account_id=account_id).delete()
            return 0
        waiting = list(
            WaitingConversation.objects.filter(account_id=account_id)
            .order_by("queued_at", "session_id")
            .values_list("session_id", flat=True)[:BATCH]
        )
        if not waiting:
            return 0
        members = notifications.account_members(account_id)
        online = sorted(online_user_ids(members)) if members else []
        # Still open and nobody's: assigned by hand, resolved or deleted meanwhile, a session
        # leaves the line.
        sessions = {
            session.pk: session
            for session in Session.objects.select_for_update()
            .filter(pk__in=waiting, status=Session.Status.OPEN, assignee__isnull=True)
            .order_by("pk")
        }
        gone = [pk for pk in waiting if pk not in sessions]
        chosen = _choose(policy, [pk for pk in waiting if pk in sessions], online)
        _assign(policy, sessions, chosen)
        WaitingConversation.objects.filter(session_id__in=gone + list(chosen)).delete()
    return len(chosen)


def _choose(policy: AssignmentPolicy, waiting: list[int], online: list[int]) -> dict[int, int]:
    """Session id → the member it goes to, in the line's order, until everyone online is full."""
    if not waiting or not online:
        return {}
    load = open_conversations(policy.account_id, online)
    caps = caps_of(policy, online)
    free = {user: caps[user] - load.get(user, 0) for user in online}
    last = policy.last_assigned_id or 0
    chosen = {}
    for session_id in waiting:
        available = [user for user in online if free[user] > 0]
        if not available:
            break
        # Round-robin order: the members after the last one assigned, then from the start.
        in_turn = sorted(available, key=lambda user: (user <= last, user))
        if policy.mode == AssignmentPolicy.Mode.LEAST_BUSY:
            agent = min(in_turn, key=lambda user: caps[user] - free[user])
        else:
            agent = in_turn[0]
        chosen[session_id] = agent
        free[agent] -= 1
        last = agent
    return chosen


def _assign(policy: AssignmentPolicy, sessions: dict[int, Session], chosen: dict[int, int]) -> None:
    """Write the choices: one UPDATE per agent, the activity lines ("System assigned to 王芳")
    and the agents' notifications in one INSERT each."""
    if not chosen:
        return
    now = timezone.now()
    by_agent: dict[int, list[int]] = defaultdict(list)
    for session_id, agent in chosen.items():
        by_agent[agent].append(session_id)
    for agent, session_ids in by_agent.items():
        Session.objects.filter(pk__in=session_ids).update(assignee_id=agent, updated_at=now)
    lines = []
    for session_id, agent in chosen.items():
        session = sessions[session_id]
        session.assignee_id = agent
        line = Message.activity_line(session, Message.Activity.ASSIGNED, at=now)
        line.activity_user_id = agent
        lines.append(line)
    Message.objects.bulk_create(lines)
    policy.last_assigned_id = list(chosen.values())[-1]
    policy.save(update_fields=["last_assigned"])
    notifications.notify(
        (
            notifications.Draft(
                recipient_id=agent,
                kind=Kind.ASSIGNED,
                session=sessions[session_id],
                text=notifications.conversation_text(
                    sessions[session_id], sessions[session_id].last_message_preview
                ),
            )
            for session_id, agent in chosen.items()
        ),
        members_checked=True,
    )


def open_conversations(account_id: int, user_ids: list[int]) -> dict[int, int]:
    """Each member's open conversations in the account, from the maintained counters (no count
    over the sessions)."""
    rows = (
        SessionCounter.objects.filter(
            account_id=account_id, status=Session.Status.OPEN, assignee_id__in=user_ids
        )
        .values("assignee_id")
        .annotate(total=Sum("sessions"))
        .order_by()
    )
    return {row["assignee_id"]: row["total"] for row in rows}


def caps_of(policy: AssignmentPolicy, user_ids: list[int]) -> dict[int, int]:
    """Each member's cap in the policy's account: their own, else the policy's."""
    own = dict(
        AgentCap.objects.filter(account_id=policy.account_id, user_id__in=user_ids).values_list(
            "user_id", "cap"
        )
    )
    return {user: own.get(user, policy.cap_per_agent) for user in user_ids}
