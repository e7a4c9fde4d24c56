"""Saved views: which a user sees, their live counts, saving, renaming, deleting.

Counts come from the maintained counters (inbox.SessionCounter: sessions per account, status,
assignee and unread-or-not), never from counting sessions: the counter rows of the user's
accounts are read once, and each saved view's count is the sum of the rows that match its
filter. So the sidebar costs two small queries however many saved views there are (one when
there are none; one more when some filter by a label, from the labels' counters).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet
from django.utils.http import urlencode
from django.utils.translation import gettext as _

from accounts.models import Account
from inbox import browse
from inbox.labels.models import LabelCounter
from inbox.labels.services import usable_labels
from inbox.models import SessionCounter
from inbox.organize.models import NAME_LENGTH, SavedView

# A sidebar longer than this is a settings page, not a sidebar; the manage page shows them all.
SIDEBAR_LIMIT = 100


def visible_views(user: AbstractBaseUser, account_ids: list[int]) -> QuerySet[SavedView]:
    """The user's own views, and the views shared on an account they can see (or on none).
    `account_ids` are the user's visible accounts, already loaded for the sidebar."""
    shared = Q(shared=True) & (Q(account__isnull=True) | Q(account_id__in=account_ids))
    return SavedView.objects.filter(Q(owner=user) | shared)


def editable_views(user: AbstractBaseUser) -> QuerySet[SavedView]:
    """What the user may rename and delete: their own views; a superuser also every shared one."""
    if user.is_superuser:
        return SavedView.objects.filter(Q(owner=user) | Q(shared=True))
    return SavedView.objects.filter(owner=user)


def can_edit(user: AbstractBaseUser, view: SavedView) -> bool:
    return view.owner_id == user.pk or (user.is_superuser and view.shared)


@dataclass(frozen=True)
class SidebarView:
    view: SavedView
    # None when the counters cannot say (see _label_counts).
    count: int | None
    url: str
    active: bool


def sidebar(
    user: AbstractBaseUser, accounts: list[Account], list_filter: browse.ListFilter, index_url: str
) -> list[SidebarView]:
    """The sidebar's "Saved views" section: each view with its count. One query for the views,
    and when there are any, one for the counter rows of the user's accounts (a few hundred at
    most), which every view's count is summed from."""
    account_ids = [account.pk for account in accounts]
    rows = list(visible_views(user, account_ids).order_by("name", "pk")[:SIDEBAR_LIMIT])
    if not rows:
        return []
    counters = list(
        SessionCounter.objects.filter(account_id__in=account_ids)
        .exclude(sessions=0)
        .values_list("account_id", "status", "assignee_id", "has_unread", "sessions")
    )
    label_counts = _label_counts([row for row in rows if row.label_ids], account_ids)
    current = list_filter.params()
    items = []
    for row in rows:
        params = row.params()
        count = label_counts.get(row.pk) if row.label_ids else _count(user, row, counters)
        items.append(
            SidebarView(
                view=row,
                count=count,
                url=f"{index_url}?{urlencode(params, doseq=True)}" if params else index_url,
                active=params == current,
            )
        )
    return items


def _count(user: AbstractBaseUser, view: SavedView, counters: list[tuple]) -> int:
    """The sessions of the counter rows that match the view: its account, its list view (the
    view's own counter lookups, as the sidebar's built-in counts use them), its assignee and
    its unread-only flag."""
    lookups = browse.VIEWS_BY_KEY.get(view.view, browse.DEFAULT_VIEW).counted(user)
    assignee = {
        "": None,
        browse.ASSIGNEE_ME: user.pk,
        browse.ASSIGNEE_NOBODY: 0,
    }.get(view.assignee, int(view.assignee) if view.assignee.isdigit() else None)
    total = 0
    for account_id, status, assignee_id, has_unread, sessions in counters:
        row = {"status": status, "assignee_id": assignee_id, "has_unread": has_unread}
        if view.account_id is not None and account_id != view.account_id:
            continue
        if any(row[name] != value for name, value in lookups.items()):
            continue
        if assignee is not None and assignee_id != assignee:
            continue
        if view.unread and not has_unread:
            continue
        total += sessions
    return total


def _label_counts(rows: list[SavedView], account_ids: list[int]) -> dict[int, int]:
    """Counts of views that filter by a label, from the labels' counters (sessions, and open
    sessions, per label and account): exact for one label with "All conversations" or "Open"
    and nothing else; other label views show no number rather than a wrong one."""
    countable = {
        row.pk: row
        for row in rows
        if len(row.label_ids) == 1
        and row.view in ("all", "open")
        and not row.assignee
        and not row.unread
    }
    if not countable:
        return {}
    counters = list(
        LabelCounter.objects.filter(
            label_id__in={row.label_ids[0] for row in countable.values()},
            account_id__in=account_ids,
        ).values_list("label_id", "account_id", "sessions", "open")
    )
    counts = {}
    for pk, row in countable.items():
        counts[pk] = sum(
            opened if row.view == "open" else sessions
            for label_id, account_id, sessions, opened in counters
            if label_id == row.label_ids[0] and row.account_id in (None, account_id)
        )
    return counts


def save(
    owner: AbstractBaseUser,
    name: str,
    list_filter: browse.ListFilter,
    *,
    shared: bool = False,
) -> SavedView:
    """Save `list_filter` (already parsed and checked against the owner's accounts) as `name`.
    Its labels must be ones the owner can use (the list itself would refuse the others)."""
    label_ids = set(list_filter.label_ids)
    if label_ids and usable_labels(owner).filter(pk__in=label_ids).count() != len(label_ids):
        raise ValidationError(_("The list's labels are not ones you can use."))
    view = SavedView(
        owner=owner,
        name=clean_name(name),
        shared=shared,
        account=list_filter.account,
        view=list_filter.view.key,
        assignee=list_filter.assignee,
        unread=list_filter.unread,
        label_ids=list(list_filter.label_ids),
    )
    try:
        with transaction.atomic():
            view.save()
    except IntegrityError as exc:
        raise ValidationError(
            _("You already have a view named %(name)s.") % {"name": view.name}
        ) from exc
    return view


def update(actor: AbstractBaseUser, view: SavedView, *, name: str, shared: bool) -> SavedView:
    """Rename a view, or share it or take it back: its owner's (or a superuser's, for a shared
    one) to do."""
    if not can_edit(actor, view):
        raise PermissionDenied(_("Only its owner can change this view."))
    view.name = clean_name(name)
    view.shared = shared
    try:
        with transaction.atomic():
            view.save(update_fields=["name", "shared"])
    except IntegrityError as exc:
        raise ValidationError(
            _("%(owner)s already has a view named %(name)s.")
            % {"owner": view.owner.get_username(), "name": view.name}
        ) from exc
    return view


def delete(actor: AbstractBaseUser, view: SavedView) -> None:
    if not can_edit(actor, view):
        raise PermissionDenied(_("Only its owner can delete this view."))
    view.delete()


def clean_name(name: str) -> str:
    name = " ".join((name or "").split())
    if not name:
        raise ValidationError(_("Give the view a name."))
    if len(name) > NAME_LENGTH:
        raise ValidationError(
            _("A view's name has at most %(limit)d characters.") % {"limit": NAME_LENGTH}
        )
    return name
