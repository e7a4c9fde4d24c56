"""The label picker of a thread's header, its changes, and the sidebar's label section.

The picker is loaded when it opens (GET, htmx) and lists the labels the user may put on the
session (the shared ones and its account's), applied ones ticked. Each pick posts `add` or
`remove` with a label id, or `name` to create one (when LABELS_AGENTS_CAN_CREATE allows): the
answer is the picker's list again, with the header's chips, the activity line and the list's row
out of band. Every view fetches the session through the account check: a non-member gets 404,
and so does a label the session may not carry.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Q, Sum
from django.db.models.functions import Coalesce
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django.views.decorators.http import require_GET, require_POST

from inbox import browse
from inbox.browse import ListFilter
from inbox.labels import services
from inbox.labels.chips import chips_of, with_label_chips
from inbox.labels.filtering import MAX_LABELS
from inbox.labels.models import Label
from inbox.models import Message, Session


def _session(request: HttpRequest, pk: int) -> Session:
    return get_object_or_404(
        with_label_chips(browse.visible_sessions(request.user)).select_related(
            "account", "assignee"
        ),
        pk=pk,
    )


def _fragment(request: HttpRequest) -> bool:
    return bool(request.htmx) and not request.htmx.history_restore_request


def _picker_context(request: HttpRequest, session: Session, **extra: Any) -> dict[str, Any]:
    """The picker's options: one query (the usable labels); what is applied comes with the
    session's chips."""
    applied = {chip.id for chip in chips_of(session)}
    labels = services.usable_labels(request.user, session.account_id)
    return {
        "session": session,
        "options": [{"label": label, "applied": label.pk in applied} for label in labels],
        "can_create": services.can_create_labels(request.user),
        **extra,
    }


@require_GET
@login_required
def picker(request: HttpRequest, pk: int) -> HttpResponse:
    session = _session(request, pk)
    context = _picker_context(request, session)
    if _fragment(request):
        return render(request, "labels/picker.html#picker", context)
    return render(request, "labels/picker.html", context)


@require_POST
@login_required
def change(request: HttpRequest, pk: int) -> HttpResponse:
    """Put a label on the session (`add`), take one off (`remove`), or create one and put it on
    (`name`)."""
    session = _session(request, pk)
    add, remove, name = (request.POST.get(key, "") for key in ("add", "remove", "name"))
    if sum(bool(value) for value in (add, remove, name)) != 1:
        return HttpResponseBadRequest("say add, remove or name")
    if (add or remove) and not browse.is_row_id(add or remove):
        return HttpResponseBadRequest("bad label id")
    if name:
        try:
            label = services.create_label(request.user, session.account_id, name)
        except PermissionDenied as exc:
            raise Http404("may not create labels") from exc
        except ValidationError as exc:
            return _refused(request, session, exc.messages)
    else:
        usable = services.usable_labels(request.user, session.account_id)
        label = get_object_or_404(usable, pk=int(add or remove))
    if remove:
        changed = services.remove_label(request.user, [session], label)
    else:
        changed = services.add_label(request.user, [session], label)
    if not _fragment(request):
        return redirect(session.get_absolute_url())
    session = _session(request, pk)
    lines = []
    if changed:
        lines = list(
            browse.thread_messages(session)
            .filter(kind=Message.Kind.ACTIVITY, activity_detail=label.name)
            .order_by("-pk")[:1]
        )
    context = _picker_context(request, session, messages=lines, row=bool(changed))
    return render(request, "labels/changed.html", context)


def _refused(request: HttpRequest, session: Session, errors: list[str]) -> HttpResponse:
    context = _picker_context(request, session, errors=errors)
    if _fragment(request):
        return render(request, "labels/picker.html#options", context, status=400)
    return render(request, "labels/picker.html", context, status=400)


def sidebar_context(accounts: list, list_filter: ListFilter) -> dict[str, Any]:
    """The sidebar's labels, each with its open conversations in the accounts shown (the one
    chosen, or all the user's), from the maintained counters in one query; and the labels the
    list is filtered by, for its header. A link adds its label to the filter, or takes it off."""
    if not accounts:
        return {"label_links": [], "label_filter": []}
    scope = [list_filter.account.pk] if list_filter.account else [a.pk for a in accounts]
    labels = Label.objects.for_accounts([a.pk for a in accounts]).annotate(
        open_count=Coalesce(Sum("counters__open", filter=Q(counters__account_id__in=scope)), 0)
    )
    active = set(list_filter.label_ids)
    index = reverse("inbox:index")

    def url(label_ids: set[int]) -> str:
        params = replace(list_filter, label_ids=tuple(sorted(label_ids))).params()
        return f"{index}?{urlencode(params, doseq=True)}" if params else index

    links = []
    for label in labels:
        if label.account_id not in (None, *scope) and label.pk not in active:
            continue
        chosen = label.pk in active
        if chosen:
            toggled = active - {label.pk}
        else:
            toggled = active | {label.pk} if len(active) < MAX_LABELS else {label.pk}
        links.append(
            {"label": label, "count": label.open_count, "active": chosen, "url": url(toggled)}
        )
    return {"label_links": links, "label_filter": [link for link in links if link["active"]]}
