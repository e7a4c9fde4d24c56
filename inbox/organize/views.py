"""Bulk actions on the session list, and saved views. Views parse, authorise, call the services in
bulk_actions.py and saved_views.py, and render; an htmx request gets the fragment it swaps, any
other request a redirect back to the list (or the manage page)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_GET, require_POST

from inbox import browse
from inbox.browse import BadCursor, ListFilter
from inbox.labels.services import usable_labels
from inbox.organize import bulk_actions, saved_views
from inbox.organize.bulk_actions import BulkRefused, NotWorkable
from inbox.organize.forms import BulkActionForm, SavedViewForm
from inbox.organize.models import SavedView
from inbox.templatetags.inbox_tags import person, snooze_time


def _fragment(request: HttpRequest) -> bool:
    return bool(request.htmx) and not request.htmx.history_restore_request


def _posted_filter(request: HttpRequest, accounts: list) -> ListFilter:
    """The list the form was posted from (its query parameters ride along as hidden fields)."""
    try:
        return browse.parse_filter(request.POST, accounts)
    except BadCursor as exc:
        raise Http404(str(exc)) from exc


def _list_url(list_filter: ListFilter) -> str:
    params = list_filter.params()
    index = reverse("inbox:index")
    return f"{index}?{urlencode(params, doseq=True)}" if params else index


# --- bulk actions ------------------------------------------------------------------------------


@require_POST
@login_required
def bulk(request: HttpRequest) -> HttpResponse:
    """One action on every selected conversation, all or nothing. Answers the bar's status line
    (the count done, or why nothing was), and the rows again, out of band."""
    accounts = browse.visible_accounts(request.user)
    list_filter = _posted_filter(request, accounts)
    form = BulkActionForm(request.POST, actor=request.user)
    if not form.is_valid():
        errors = [error for errors in form.errors.values() for error in errors]
        return _bulk_refused(request, " ".join(errors), status=400)
    try:
        outcome = bulk_actions.run(request.user, form.cleaned_data["sessions"], form.bulk_action())
    except NotWorkable as exc:
        return _bulk_refused(request, str(exc), status=404)
    except BulkRefused as exc:
        return _bulk_refused(request, str(exc), status=400)
    if not _fragment(request):
        return redirect(_list_url(list_filter))
    context = {
        "message": _confirmation(form, len(outcome.sessions)),
        "rows": outcome.sessions,
        "list_query": urlencode(list_filter.params(), doseq=True),
        "show_account": len(accounts) > 1 and list_filter.account is None,
    }
    return render(request, "organize/bulk_done.html", context)


def _bulk_refused(request: HttpRequest, message: str, *, status: int) -> HttpResponse:
    """Nothing was changed. htmx swaps a 400 into the status line; a 404 it leaves alone, so its
    body is the plain message (organize.js shows it)."""
    if status == 404 or not _fragment(request):
        return HttpResponse(message, status=status, content_type="text/plain; charset=utf-8")
    return render(
        request, "organize/bulk_done.html", {"message": message, "error": True}, status=status
    )


def _confirmation(form: BulkActionForm, count: int) -> str:
    data = form.cleaned_data
    action = data["action"]
    values = {"count": count}
    if action == "resolve":
        text = ngettext(
            "%(count)d conversation resolved", "%(count)d conversations resolved", count
        )
    elif action == "reopen":
        text = ngettext(
            "%(count)d conversation reopened", "%(count)d conversations reopened", count
        )
    elif action == "pending":
        text = ngettext(
            "%(count)d conversation marked pending",
            "%(count)d conversations marked pending",
            count,
        )
    elif action.startswith("snooze_"):
        values["time"] = snooze_time(form.bulk_action().snooze_until)
        text = ngettext(
            "%(count)d conversation snoozed until %(time)s",
            "%(count)d conversations snoozed until %(time)s",
            count,
        )
    elif action in ("assign", "assign_me"):
        values["name"] = person(data["assign_to"] if action == "assign" else form.actor)
        text = ngettext(
            "%(count)d conversation assigned to %(name)s",
            "%(count)d conversations assigned to %(name)s",
            count,
        )
    elif action == "unassign":
        text = ngettext(
            "%(count)d conversation unassigned", "%(count)d conversations unassigned", count
        )
    elif action == "read":
        text = ngettext(
            "%(count)d conversation marked read", "%(count)d conversations marked read", count
        )
    elif action == "label_add":
        values["label"] = data["apply_label"].name
        text = ngettext(
            "Label %(label)s added to %(count)d conversation",
            "Label %(label)s added to %(count)d conversations",
            count,
        )
    else:
        values["label"] = data["apply_label"].name
        text = ngettext(
            "Label %(label)s removed from %(count)d conversation",
            "Label %(label)s removed from %(count)d conversations",
            count,
        )
    return text % values


@require_GET
@login_required
def bulk_choices(request: HttpRequest) -> HttpResponse:
    """The bar's assignee and label menus, fetched when the bar first opens, so that the list
    itself reads neither the members nor the labels."""
    context = {
        "members": bulk_actions.assignable_users(request.user),
        "labels": usable_labels(request.user).order_by("name", "pk"),
    }
    return render(request, "organize/_bulk_choices.html", context)


# --- saved views -------------------------------------------------------------------------------


@require_POST
@login_required
def save_view(request: HttpRequest) -> HttpResponse:
    """Save the list's current filter (posted as hidden fields) under a name."""
    accounts = browse.visible_accounts(request.user)
    list_filter = _posted_filter(request, accounts)
    form = SavedViewForm(request.POST)
    error = None
    if form.is_valid():
        try:
            saved_views.save(
                request.user,
                form.cleaned_data["name"],
                list_filter,
                shared=form.cleaned_data["shared"],
            )
        except ValidationError as exc:
            error = " ".join(exc.messages)
    else:
        error = " ".join(error for errors in form.errors.values() for error in errors)
    if not _fragment(request):
        if error:
            return HttpResponse(error, status=400, content_type="text/plain; charset=utf-8")
        return redirect(_list_url(list_filter))
    context = {
        **sidebar_context(request.user, accounts, list_filter),
        "save_error": error,
        "saved": error is None,
        "list_filter": list_filter,
        "list_params": list_filter.params(),
    }
    return render(request, "organize/view_saved.html", context, status=400 if error else 200)


def sidebar_context(user, accounts: list, list_filter: ListFilter) -> dict[str, Any]:
    """The sidebar's "Saved views" section (inbox.views' sidebar calls this): one query."""
    return {"saved_views": saved_views.sidebar(user, accounts, list_filter, reverse("inbox:index"))}


def _editable_view(request: HttpRequest, pk: int) -> SavedView:
    """A view the user can see (else 404) and change (else 403, said in words)."""
    accounts = browse.visible_accounts(request.user)
    view = get_object_or_404(
        saved_views.visible_views(request.user, [a.pk for a in accounts]).select_related("owner"),
        pk=pk,
    )
    if not saved_views.can_edit(request.user, view):
        raise PermissionDenied(_("Only its owner can change this view."))
    return view


@require_GET
@login_required
def manage(request: HttpRequest) -> HttpResponse:
    """The user's saved views (and, for a superuser, every shared one): rename, share, delete."""
    views = saved_views.editable_views(request.user).select_related("owner", "account")
    return render(request, "organize/manage.html", {"views": views})


@require_POST
@login_required
def update_view(request: HttpRequest, pk: int) -> HttpResponse:
    view = _editable_view(request, pk)
    form = SavedViewForm(request.POST)
    error = None
    if form.is_valid():
        try:
            saved_views.update(
                request.user,
                view,
                name=form.cleaned_data["name"],
                shared=form.cleaned_data["shared"],
            )
        except ValidationError as exc:
            error = " ".join(exc.messages)
    else:
        error = " ".join(error for errors in form.errors.values() for error in errors)
    if error:
        views = saved_views.editable_views(request.user).select_related("owner", "account")
        context = {"views": views, "error": error, "error_pk": view.pk}
        return render(request, "organize/manage.html", context, status=400)
    return redirect("inbox:organize:manage")


@require_POST
@login_required
def delete_view(request: HttpRequest, pk: int) -> HttpResponse:
    saved_views.delete(request.user, _editable_view(request, pk))
    return redirect("inbox:organize:manage")
