"""Bulk actions: one change to many selected conversations, in one request and one transaction.

The same changes as the thread header's (inbox.services), set-based: one UPDATE per action,
whatever the selection's size (the counter triggers see one statement), one activity line per
conversation that changed, bulk-inserted, the reports' facts told about status lines as
set_status tells them, and the assignee notified as assign notifies them. Labels go through the
labels app's own service.

Permissions are checked per conversation, before anything is written: every id must be a
conversation the actor may work on (inbox.browse.visible_sessions: a member of its account, or a
superuser; the same rule as services.can_work_on). One id that is not (another account's, or one
that no longer exists) refuses the whole request, so a forged id changes nothing at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from accounts.models import Account
from inbox import browse, text
from inbox.forms import active_members
from inbox.labels import services as labels
from inbox.labels.chips import with_label_chips
from inbox.labels.models import Label
from inbox.models import Message, Session
from inbox.reports import facts
from inbox.services import STATUS_ACTIVITY
from inbox.team import events as team_events

# A page of the list is 50 rows; a few pages loaded and all selected stay well under this. More
# in one transaction would hold many session rows locked against sync for too long.
MAX_BATCH = 500

STATUS = "status"
ASSIGN = "assign"
MARK_READ = "read"
ADD_LABEL = "label_add"
REMOVE_LABEL = "label_remove"


class BulkRefused(Exception):
    """The request cannot be carried out; nothing was changed. The message says why."""


class NotWorkable(BulkRefused):
    """Some selected id is not a conversation the actor may work on (404 to the browser)."""


@dataclass(frozen=True)
class BulkAction:
    """What to do to every selected conversation: one `kind` and its argument."""

    kind: str
    status: str = ""
    snooze_until: datetime | None = None
    assignee: AbstractBaseUser | None = None
    label: Label | None = None


@dataclass(frozen=True)
class BulkOutcome:
    sessions: list[Session]  # every selected one, as it is now (for the list's rows)
    changed: int  # how many actually changed (the others were so already)


def run(actor: AbstractBaseUser, session_ids: Sequence[int], action: BulkAction) -> BulkOutcome:
    """Apply `action` to the conversations `session_ids`, all or none."""
    ids = sorted(set(session_ids))
    if not ids:
        raise BulkRefused(_("Select at least one conversation."))
    if len(ids) > MAX_BATCH:
        raise BulkRefused(
            _("Select at most %(limit)d conversations at a time.") % {"limit": MAX_BATCH}
        )
    with transaction.atomic():
        sessions = _lock_workable(actor, ids)
        _check_argument(actor, sessions, action)
        changed = _APPLY[action.kind](actor, sessions, action)
    rows = list(
        with_label_chips(Session.objects.filter(pk__in=ids))
        .select_related("account", "assignee")
        .order_by(*browse.LIST_ORDER)
    )
    return BulkOutcome(sessions=rows, changed=changed)


def _lock_workable(actor: AbstractBaseUser, ids: list[int]) -> list[Session]:
    """The selected sessions, locked in id order (two bulk actions on overlapping selections
    take turns), or NotWorkable when any id is not the actor's to work on."""
    if not actor.is_active:
        raise NotWorkable(_("You may not change these conversations."))
    sessions = list(
        browse.visible_sessions(actor)
        .filter(pk__in=ids)
        .select_for_update(of=("self",))
        .order_by("pk")
    )
    if len(sessions) != len(ids):
        missing = len(ids) - len(sessions)
        raise NotWorkable(
            ngettext(
                "%(count)d of the selected conversations is not one you may change, or no "
                "longer exists. Nothing was changed.",
                "%(count)d of the selected conversations are not ones you may change, or no "
                "longer exist. Nothing was changed.",
                missing,
            )
            % {"count": missing}
        )
    return sessions


def _check_argument(actor: AbstractBaseUser, sessions: list[Session], action: BulkAction) -> None:
    """The assignee must be able to work on every selected conversation's account, and the
    label be usable on each: else the whole request is refused, with the account named."""
    account_ids = {session.account_id for session in sessions}
    if action.kind == ASSIGN and action.assignee is not None:
        assignee = action.assignee
        if not assignee.is_active:
            raise BulkRefused(_("Choose an active member."))
        if not assignee.is_superuser:
            theirs = set(
                assignee.finder_accounts.filter(pk__in=account_ids).values_list("pk", flat=True)
            )
            outside = account_ids - theirs
            if outside:
                raise BulkRefused(
                    _("%(name)s is not a member of %(account)s. Nothing was changed.")
                    % {"name": text.person(assignee), "account": _account_name(min(outside))}
                )
    if action.kind in (ADD_LABEL, REMOVE_LABEL):
        label = action.label
        if label.account_id is not None and account_ids != {label.account_id}:
            raise BulkRefused(
                _(
                    "The label %(label)s belongs to one account only; select conversations of "
                    "that account. Nothing was changed."
                )
                % {"label": label.name}
            )


def _set_status(actor: AbstractBaseUser, sessions: list[Session], action: BulkAction) -> int:
    until = action.snooze_until if action.status == Session.Status.SNOOZED else None
    if until is not None and until <= timezone.now():
        raise BulkRefused(_("Choose a time in the future."))
    targets = [s for s in sessions if (s.status, s.snoozed_until) != (action.status, until)]
    if not targets:
        return 0
    now = timezone.now()
    Session.objects.filter(pk__in=[s.pk for s in targets]).update(
        status=action.status, snoozed_until=until, updated_at=now
    )
    lines = Message.objects.bulk_create(
        [
            Message.activity_line(s, STATUS_ACTIVITY[action.status], author=actor, at=now)
            for s in targets
        ]
    )
    facts.activity_added(lines)
    return len(targets)


def _assign(actor: AbstractBaseUser, sessions: list[Session], action: BulkAction) -> int:
    assignee = action.assignee
    assignee_id = assignee.pk if assignee is not None else None
    targets = [s for s in sessions if s.assignee_id != assignee_id]
    if not targets:
        return 0
    now = timezone.now()
    Session.objects.filter(pk__in=[s.pk for s in targets]).update(assignee=assignee, updated_at=now)
    activity = Message.Activity.UNASSIGNED if assignee is None else Message.Activity.ASSIGNED
    Message.objects.bulk_create(
        [Message.activity_line(s, activity, author=actor, target=assignee, at=now) for s in targets]
    )
    # The assignee hears of it, as from the thread header (one notification each, one INSERT).
    team_events.assigned_in_bulk(targets, assignee, actor)
    return len(targets)


def _mark_read(actor: AbstractBaseUser, sessions: list[Session], action: BulkAction) -> int:
    """As opening each thread would (services.mark_read): no activity line."""
    targets = [s.pk for s in sessions if s.unread_count]
    if targets:
        Session.objects.filter(pk__in=targets).update(unread_count=0, updated_at=timezone.now())
    return len(targets)


def _change_label(actor: AbstractBaseUser, sessions: list[Session], action: BulkAction) -> int:
    change = labels.add_label if action.kind == ADD_LABEL else labels.remove_label
    try:
        return change(actor, sessions, action.label)
    except PermissionDenied as exc:
        # _check_argument said it first, in words; this is the labels app's own guard.
        raise BulkRefused(_("You may not use this label here. Nothing was changed.")) from exc


_APPLY = {
    STATUS: _set_status,
    ASSIGN: _assign,
    MARK_READ: _mark_read,
    ADD_LABEL: _change_label,
    REMOVE_LABEL: _change_label,
}


def _account_name(account_id: int) -> str:
    return Account.objects.filter(pk=account_id).values_list("name", flat=True).first() or ""


def assignable_users(actor: AbstractBaseUser) -> QuerySet:
    """Who the bulk bar offers to assign to: active members of the actor's accounts, and the
    actor when a superuser. The service checks each choice against the selection's accounts."""
    return active_members(
        Q(finder_accounts__in=Account.objects.visible_to(actor).values("pk")), actor
    )
