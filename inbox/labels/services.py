"""Putting labels on conversations and taking them off, and which labels a user may use.

Other parts of the inbox (bulk actions, the viewer panel) call these. Each change is one
transaction: the sessions are locked, their label rows written, one activity line per session
that changed ("李四 added the label 退款"), and the sessions' `updated_at` bumped so the lists'
and threads' polls show the new chips. The label counts move with it, by trigger.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import Account
from inbox.labels.models import NAME_LENGTH, Label, SessionLabel
from inbox.models import Message, Session


def member_account_ids(user: AbstractBaseUser) -> QuerySet | None:
    """The accounts whose sessions `user` may work on, as a subquery; None for "all of them"."""
    if user.is_superuser:
        return None
    return Account.objects.filter(members=user).values("pk")


def usable_labels(user: AbstractBaseUser, account_id: int | None = None) -> QuerySet[Label]:
    """The labels `user` may put on a session of `account_id` (the shared ones and that
    account's), or without an account, on any session they may work on. Nothing for an inactive
    user or an account they are not a member of."""
    if not user.is_active:
        return Label.objects.none()
    labels = Label.objects.all()
    if account_id is not None:
        if not _workable(user, {account_id}):
            return Label.objects.none()
        return labels.for_accounts([account_id])
    accounts = member_account_ids(user)
    return labels if accounts is None else labels.for_accounts(accounts)


def can_create_labels(user: AbstractBaseUser) -> bool:
    """Administrators manage labels in admin; agents make new ones from the picker only when
    LABELS_AGENTS_CAN_CREATE is on."""
    return user.is_active and (
        user.is_superuser or settings.LABELS_AGENTS_CAN_CREATE or user.has_perm("labels.add_label")
    )


def create_label(actor: AbstractBaseUser, account_id: int, name: str) -> Label:
    """A new label of `account_id`, named `name`, in a colour its name picks. An existing label
    of that name (any case, the account's or a shared one) is returned instead of a twin."""
    if not can_create_labels(actor) or not _workable(actor, {account_id}):
        raise PermissionDenied("may not create labels here")
    name = " ".join(name.split())
    if not name:
        raise ValidationError(_("A label needs a name."))
    if len(name) > NAME_LENGTH:
        raise ValidationError(
            _("A label's name has at most %(limit)d characters.") % {"limit": NAME_LENGTH}
        )
    existing = Label.objects.for_accounts([account_id]).filter(name__iexact=name).first()
    if existing is not None:
        return existing
    colours = Label.Colour.values
    colour = colours[zlib.crc32(name.casefold().encode()) % len(colours)]
    try:
        with transaction.atomic():
            return Label.objects.create(
                name=name, colour=colour, account_id=account_id, created_by=actor
            )
    except IntegrityError:
        # Someone made the same label a moment ago.
        return Label.objects.get(account_id=account_id, name__iexact=name)


def add_label(actor: AbstractBaseUser, sessions: Iterable[Session], label: Label) -> int:
    """Put `label` on `sessions`; how many did not carry it yet. Raises PermissionDenied when
    `actor` may not work on one of them or the label belongs to another account."""
    return _change(actor, sessions, label, adding=True)


def remove_label(actor: AbstractBaseUser, sessions: Iterable[Session], label: Label) -> int:
    """Take `label` off `sessions`; how many carried it. Same checks as add_label."""
    return _change(actor, sessions, label, adding=False)


def _workable(user: AbstractBaseUser, account_ids: set[int]) -> bool:
    """Whether `user` may work on every one of `account_ids`, in one query at most."""
    if not user.is_active:
        return False
    if user.is_superuser or not account_ids:
        return True
    members = Account.objects.filter(pk__in=account_ids, members=user).count()
    return members == len(account_ids)


def _change(actor: AbstractBaseUser, sessions: Iterable[Session], label: Label, *, adding: bool):
    by_id = {session.pk: session for session in sessions}
    if not by_id:
        return 0
    account_ids = {session.account_id for session in by_id.values()}
    if label.account_id is not None and account_ids != {label.account_id}:
        raise PermissionDenied("the label belongs to another account")
    if not _workable(actor, account_ids):
        raise PermissionDenied("not a member of the session's account")
    with transaction.atomic():
        # Locked in id order: two changes to the same sessions take turns, so each writes its
        # activity line only for what it really changed.
        ids = list(
            Session.objects.select_for_update()
            .filter(pk__in=by_id)
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        carrying = set(
            SessionLabel.objects.filter(label=label, session_id__in=ids).values_list(
                "session_id", flat=True
            )
        )
        if adding:
            changed = [pk for pk in ids if pk not in carrying]
            SessionLabel.objects.bulk_create(
                [
                    SessionLabel(
                        session_id=pk,
                        label=label,
                        account_id=by_id[pk].account_id,
                        added_by=actor,
                    )
                    for pk in changed
                ]
            )
        else:
            changed = [pk for pk in ids if pk in carrying]
            SessionLabel.objects.filter(label=label, session_id__in=changed).delete()
        if not changed:
            return 0
        now = timezone.now()
        activity = Message.Activity.LABELED if adding else Message.Activity.UNLABELED
        lines = []
        for pk in changed:
            line = Message.activity_line(by_id[pk], activity, author=actor, at=now)
            line.activity_detail = label.name
            lines.append(line)
        Message.objects.bulk_create(lines)
        # The polls of the list and of open threads look for sessions changed since T.
        Session.objects.filter(pk__in=changed).update(updated_at=now)
        for pk in changed:
            by_id[pk].updated_at = now
    return len(changed)
