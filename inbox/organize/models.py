"""Saved views: a named filter of the session list, personal or shared with the team."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from accounts.models import Account
from inbox import browse

NAME_LENGTH = 60


class SavedView(models.Model):
    """A list filter under a name (inbox.browse.ListFilter's query parameters, one column each,
    so that the sidebar counts every saved view in one query, from the maintained counters).

    Personal views are their owner's; shared ones are listed for everyone who can see their
    account (all staff when they have none). Only the owner, or a superuser, changes one.
    """

    name = models.CharField(_("name"), max_length=NAME_LENGTH)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="saved_views",
        verbose_name=_("owner"),
    )
    shared = models.BooleanField(
        _("shared with the team"),
        default=False,
        help_text=_("Everyone who can see its account sees it in their sidebar."),
    )
    # The filter. An account deleted takes its views with it: they would list nothing.
    account = models.ForeignKey(
        Account,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("account"),
    )
    view = models.CharField(
        _("view"),
        max_length=16,
        default=browse.DEFAULT_VIEW.key,
        choices=[(view.key, view.label) for view in browse.VIEWS],
    )
    # "" anyone, "me" whoever looks at the view, "none" unassigned, or a user's id.
    assignee = models.CharField(_("assignee"), max_length=20, blank=True)
    unread = models.BooleanField(_("unread only"), default=False)
    label_ids = models.JSONField(_("labels"), default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name", "pk"]
        verbose_name = _("saved view")
        verbose_name_plural = _("saved views")
        constraints = [
            # One name per owner: the sidebar tells views apart by name.
            models.UniqueConstraint(fields=["owner", "name"], name="organize_savedview_unique_name")
        ]
        indexes = [
            # The sidebar's "owner = me OR shared": the shared ones, a few rows.
            models.Index(
                fields=["account"], condition=Q(shared=True), name="organize_savedview_shared"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def list_filter(self) -> browse.ListFilter:
        """The filter, without its account (ListFilter holds the account's row; see params)."""
        return browse.ListFilter(
            view=browse.VIEWS_BY_KEY.get(self.view, browse.DEFAULT_VIEW),
            assignee=self.assignee,
            unread=self.unread,
            label_ids=tuple(self.label_ids),
        )

    def params(self) -> dict[str, str | list[str]]:
        """The list's query parameters for this view, as ListFilter.params() writes them."""
        params = self.list_filter().params()
        if self.account_id is not None:
            params = {"account": str(self.account_id), **params}
        return params
