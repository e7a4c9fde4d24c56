"""The inbox pages. One view per page; an htmx request gets just the fragment it swaps (a
django-template-partials partial of inbox/inbox.html), any other request the whole page, so every
page also works without JavaScript. Live updates are polls that answer 204 when nothing changed."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.db.models import Case, Exists, OuterRef, Q, Value, When
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST
from django.views.decorators.vary import vary_on_headers

from accounts.models import Account
from inbox import browse, forms, images, services
from inbox import search as search_service
from inbox.browse import BadCursor, ListFilter
from inbox.labels import views as labels_views
from inbox.labels.chips import with_label_chips
from inbox.live import guard as live_guard
from inbox.models import CannedReply, Message, Session
from inbox.organize import views as organize_views
from inbox.pictures.services import has_full_picture, show_pictures

# The image card polls for the downloaded picture about once a second, for about half a minute.
IMAGE_POLLS = 30


def _get_session_for_user(request: HttpRequest, pk: int) -> Session:
    return get_object_or_404(
        with_label_chips(browse.visible_sessions(request.user)).select_related(
            "account", "assignee"
        ),
        pk=pk,
    )


def _get_message_for_user(request: HttpRequest, pk: int) -> Message:
    return get_object_or_404(
        browse.visible_messages(request.user).select_related("account", "session"), pk=pk
    )


def _fragment(request: HttpRequest) -> bool:
    """An htmx swap wants the fragment; a history restore (back button) wants the whole page."""
    return bool(request.htmx) and not request.htmx.history_restore_request


def _list_filter(request: HttpRequest, accounts: list) -> ListFilter:
    try:
        return browse.parse_filter(request.GET, accounts)
    except BadCursor as exc:
        raise Http404(str(exc)) from exc


def _nav_context(accounts: list, list_filter: ListFilter, counts: dict) -> dict[str, Any]:
    """The sidebar's links: each view (keeping the account) and each account (keeping the view)."""
    index = reverse("inbox:index")

    def url(params: dict[str, str]) -> str:
        return f"{index}?{urlencode(params, doseq=True)}" if params else index

    def view_link(view: browse.ListView) -> dict[str, Any]:
        return {
            "label": view.label,
            "count": counts.get(view.key, 0),
            "active": view is list_filter.view,
            "url": url(
                ListFilter(
                    view=view, account=list_filter.account, label_ids=list_filter.label_ids
                ).params()
            ),
        }

    view_links = [view_link(view) for view in browse.VIEWS if view.section == "views"]
    status_links = [view_link(view) for view in browse.VIEWS if view.section == "status"]
    account_links = [
        {
            "label": account.name if account else _("All accounts"),
            "count": account.unread if account else 0,
            "counts_unread": True,
            "active": account == list_filter.account,
            "url": url(replace(list_filter, account=account).params()),
        }
        for account in ([None, *accounts] if len(accounts) > 1 else accounts)
    ]
    return {"view_links": view_links, "status_links": status_links, "account_links": account_links}


def _list_context(
    request: HttpRequest, accounts: list, list_filter: ListFilter, before: str | None = None
) -> dict[str, Any]:
    """The sidebar and the session list: two queries, the accounts with their counts (loaded
    with counts=True by the caller) and one page of rows."""
    return {
        **_page_context(request, accounts, list_filter, before),
        **_sidebar_context(accounts, list_filter, request.user),
        **_outage_context(accounts),
    }


def _sidebar_context(accounts: list, list_filter: ListFilter, user) -> dict[str, Any]:
    """The sidebar's links and counts, and the tab title's unread number: no query, the
    accounts carry their counter sums; the saved views are one query."""
    counts = browse.view_counts(accounts, list_filter.account)
    return {
        **_nav_context(accounts, list_filter, counts),
        **labels_views.sidebar_context(accounts, list_filter),
        **organize_views.sidebar_context(user, accounts, list_filter),
        "unread_total": sum(account.unread for account in accounts),
    }


def _page_context(
    request: HttpRequest, accounts: list, list_filter: ListFilter, before: str | None = None
) -> dict[str, Any]:
    """One page of the session list: one query. Load-more renders only this, so it counts
    nothing."""
    try:
        rows, next_cursor = browse.session_page(request.user, list_filter, accounts, before)
    except BadCursor as exc:
        raise Http404(str(exc)) from exc
    return {
        "show_account": len(accounts) > 1 and list_filter.account is None,
        "list_filter": list_filter,
        "list_query": urlencode(list_filter.params(), doseq=True),
        "sessions": rows,
        "next_cursor": next_cursor,
        "paged": bool(before),
        "poll_since": browse.to_micros(browse.poll_since([])),
        "poll_top": browse.session_key(rows[0]) if rows and not before else "",
    }


def _outage_context(accounts: list) -> dict[str, Any]:
    """The banner over the session list: the user's accounts whose device is offline. From the
    accounts the sidebar loads anyway, so it costs no query; the poller carries their ids
    (`down`) so the sessions poll can tell when that changes."""
    down = [account for account in accounts if account.outage_since]
    return {"down_accounts": down, "down_ids": _ids(account.pk for account in down)}


def _ids(pks) -> str:
    return ",".join(str(pk) for pk in sorted(pks))


@require_GET
@login_required
@vary_on_headers("HX-Request")
def index(request: HttpRequest) -> HttpResponse:
    before = request.GET.get("before") or None
    load_more = _fragment(request) and before
    accounts = browse.visible_accounts(request.user, counts=not load_more)
    list_filter = _list_filter(request, accounts)
    if load_more:
        context = _page_context(request, accounts, list_filter, before)
        return render(request, "inbox/inbox.html#session-page", context)
    context = _list_context(request, accounts, list_filter, before)
    if _fragment(request):
        return render(request, "inbox/inbox.html#list-switch", {**context, "fragment": True})
    return render(request, "inbox/inbox.html", {**context, "pane": "list"})


def _anchor(request: HttpRequest, session: Session, name: str) -> Message | None:
    value = request.GET.get(name)
    if not value:
        return None
    if not browse.is_row_id(value):
        raise Http404("bad message id")
    return get_object_or_404(session.messages.all(), pk=int(value))


def _header_context(request: HttpRequest, session: Session) -> dict[str, Any]:
    """What the thread header's controls need. `members` stays a lazy queryset: one query, run
    only when a header is rendered."""
    return {
        "members": forms.assignable_users(session, request.user),
        "snooze_presets": forms.snooze_presets(),
        "snooze_min": timezone.now(),
        "time_zone": settings.TIME_ZONE,
    }


def _thread_context(
    request: HttpRequest, session: Session, page: browse.ThreadPage
) -> dict[str, Any]:
    return {
        **_header_context(request, session),
        "session": session,
        "page": page,
        "thread_since": browse.to_micros(browse.poll_since([])),
        "image_replies": services.image_replies_enabled(),
        "max_reply_length": services.MAX_REPLY_LENGTH,
        "max_note_length": 10 * services.MAX_REPLY_LENGTH,
    }


def _thread_page(
    request: HttpRequest, session: Session, page: browse.ThreadPage, **extra: Any
) -> dict[str, Any]:
    """The whole page around a thread: sidebar, session list, thread."""
    context = _thread_context(request, session, page)
    accounts = browse.visible_accounts(request.user, counts=True)
    context.update(_list_context(request, accounts, _list_filter(request, accounts)))
    return {**context, "pane": "thread", **extra}


@require_GET
@login_required
@vary_on_headers("HX-Request")
def thread(request: HttpRequest, pk: int) -> HttpResponse:
    session = _get_session_for_user(request, pk)
    before = _anchor(request, session, "before")
    after = _anchor(request, session, "after")
    around = _anchor(request, session, "around")
    if _fragment(request) and before:
        page = browse.page_before(session, before)
        show_pictures(page.messages, queue_for=session.account)
        return render(request, "inbox/inbox.html#older", _thread_context(request, session, page))
    if _fragment(request) and after:
        page = browse.page_after(session, after)
        show_pictures(page.messages, queue_for=session.account)
        return render(request, "inbox/inbox.html#newer", _thread_context(request, session, page))

    if _fragment(request):
        # Only the inbox's own htmx request reads the thread: a plain GET (a link from another
        # site, a prefetch) must not change state. A full page load is read by its first poll.
        services.mark_read(session)
    if around:
        page = browse.page_around(session, around)
    elif before:
        page = browse.page_before(session, before)
    elif after:
        page = browse.page_after(session, after)
    else:
        page = browse.latest_page(session)
    # Opening a thread fetches the thumbnails of its image letters on view.
    show_pictures(page.messages, queue_for=session.account)
    query = search_service.clean_query(request.GET.get("q"))
    if _fragment(request):
        context = _thread_context(request, session, page)
        context["unread_total"] = browse.unread_total(request.user)
        return render(request, "inbox/inbox.html#thread", {**context, "fragment": True})

    context = _thread_page(request, session, page, q=query)
    if query:
        context["results"] = search_service.search(request.user, query)
    return render(request, "inbox/inbox.html", context)


def _since(request: HttpRequest):
    try:
        return browse.from_micros(request.GET.get("since", ""))
    except BadCursor:
        return None


@require_GET
@login_required
def thread_poll(request: HttpRequest, pk: int) -> HttpResponse:
    """What changed in an open thread since the cursor. Nothing → 204 after one query (the
    access check and the change check are the same query). New letters are appended, changed
    ones swapped by id; a visible tab (`seen=1`) reads the thread."""
    since = _since(request)
    if since is None:
        return HttpResponseBadRequest("bad since")
    changed = Message.objects.filter(session=OuterRef("pk"), updated_at__gt=since)
    session = get_object_or_404(
        with_label_chips(browse.visible_sessions(request.user))
        .select_related("account", "assignee")
        .annotate(changed=Exists(changed)),
        pk=pk,
    )
    # Only inbox.js's htmx poll from a visible tab reads the thread; a cross-site GET cannot
    # send the HX-Request header.
    seen = request.GET.get("seen") == "1" and bool(request.htmx)
    session_changed = session.updated_at > since
    if not session.changed and not session_changed and not (seen and session.unread_count):
        return HttpResponse(status=204)

    messages = browse.changed_messages(session, since) if session.changed else []
    # Redraws a card whose picture arrived; queues thumbnails only for letters new to the page.
    show_pictures(messages, queue_for=session.account, retry=False)
    stamps = [message.updated_at for message in messages]
    if session_changed:
        stamps.append(session.updated_at)
    next_since = browse.poll_since(stamps) if stamps else since
    if len(messages) >= browse.POLL_BATCH:
        # More are waiting: ask again from the last one seen (ties are fetched twice, harmlessly).
        next_since = max(stamps) - timedelta(microseconds=1)
    marked_read = seen and session.unread_count > 0
    if marked_read:
        services.mark_read(session)
    context = {
        **(_header_context(request, session) if session_changed else {}),
        "marked_read": marked_read,
        "session": session,
        "messages": messages,
        "tail": request.GET.get("tail") == "1",
        "thread_since": browse.to_micros(max(next_since, since)),
        "session_changed": session_changed,
        "unread_total": browse.unread_total(request.user),
    }
    return render(request, "inbox/thread_poll.html", context)


@require_GET
@login_required
def sessions_poll(request: HttpRequest) -> HttpResponse:
    """What changed in the session list since the cursor, and the outage banner when the accounts
    down are no longer those the page shows (`down`). Nothing → 204 after two small queries.
    Sessions with news newer than the list's top row move to the top; others are swapped in
    place wherever they are shown (even when they no longer match the view, so a badge read
    elsewhere clears here too)."""
    since = _since(request)
    if since is None:
        return HttpResponseBadRequest("bad since")
    try:
        poll_filter, account_id = browse.parse_filter_for_poll(request.GET)
        top = browse.parse_session_key(request.GET["top"]) if request.GET.get("top") else None
    except BadCursor:
        return HttpResponseBadRequest("bad cursor")
    sessions = browse.visible_sessions(request.user).filter(updated_at__gt=since)
    if account_id is not None:
        sessions = sessions.filter(account_id=account_id)
    condition = poll_filter.condition(request.user)
    in_view = Case(When(condition, then=Value(True)), default=Value(False)) if condition else None
    if in_view is not None:
        sessions = sessions.annotate(in_view=in_view)
    changed = list(
        with_label_chips(sessions)
        .select_related("account", "assignee")
        .order_by("updated_at", "pk")[: browse.POLL_BATCH]
    )
    if not changed and request.GET.get("down", "") == _ids(
        Account.objects.visible_to(request.user)
        .filter(outage_since__isnull=False)
        .values_list("pk", flat=True)
    ):
        # Nothing new, and the same accounts down as the page shows (one small query).
        return HttpResponse(status=204)

    def on_top(session: Session) -> bool:
        if in_view is not None and not session.in_view:
            return False
        return top is None or (session.last_message_at, session.pk) > top

    moved = sorted(
        (s for s in changed if on_top(s)), key=lambda s: (s.last_message_at, s.pk), reverse=True
    )
    stamps = [session.updated_at for session in changed]
    next_since = browse.poll_since(stamps) if stamps else since
    if len(changed) >= browse.POLL_BATCH:
        next_since = max(stamps) - timedelta(microseconds=1)
    accounts = browse.visible_accounts(request.user, counts=True)
    list_filter = replace(
        poll_filter, account=next((a for a in accounts if a.pk == account_id), None)
    )
    context = {
        **_sidebar_context(accounts, list_filter, request.user),
        **_outage_context(accounts),
        "moved": moved,
        "in_place": [s for s in changed if s not in moved],
        "show_account": len(accounts) > 1 and account_id is None,
        "list_filter": list_filter,
        "list_query": urlencode(list_filter.params(), doseq=True),
        "poll_since": browse.to_micros(max(next_since, since)),
        "poll_top": browse.session_key(moved[0]) if moved else request.GET.get("top", ""),
    }
    return render(request, "inbox/sessions_poll.html", context)


@require_GET
@login_required
@vary_on_headers("HX-Request")
def search(request: HttpRequest) -> HttpResponse:
    query = search_service.clean_query(request.GET.get("q"))
    if _fragment(request) and not query:
        # The box was cleared: back to the list.
        accounts = browse.visible_accounts(request.user)
        context = {
            **_page_context(request, accounts, ListFilter()),
            **_outage_context(accounts),
        }
        return render(request, "inbox/inbox.html#list-body", context)
    results = search_service.search(request.user, query)
    if _fragment(request):
        return render(
            request,
            "inbox/inbox.html#list-body",
            {"results": results, "q": query, "fragment": True},
        )
    accounts = browse.visible_accounts(request.user, counts=True)
    context = _list_context(request, accounts, ListFilter())
    return render(
        request, "inbox/inbox.html", {**context, "results": results, "q": query, "pane": "list"}
    )


def _image_message(request: HttpRequest, pk: int) -> Message:
    message = _get_message_for_user(request, pk)
    if message.msg_type != Message.Type.IMAGE:
        raise Http404("not an image letter")
    return message


@require_POST
@login_required
def load_image(request: HttpRequest, pk: int) -> HttpResponse:
    """ "Load image": queue the full-size picture's download (the task asks the upstream for
    the file URL and stores the picture)."""
    message = _image_message(request, pk)
    images.request_image(message)
    if not _fragment(request):
        return redirect(f"{message.session.get_absolute_url()}?around={message.pk}")
    message.refresh_from_db()
    show_pictures([message])
    return render(request, "inbox/_image.html", {"message": message, "polls": 0, "waiting": True})


@require_GET
@login_required
def image(request: HttpRequest, pk: int) -> HttpResponse:
    """The image card again, while it waits for the full-size picture: the card polls this."""
    message = _image_message(request, pk)
    if not _fragment(request):
        return redirect(f"{message.session.get_absolute_url()}?around={message.pk}")
    show_pictures([message])
    polls = request.GET.get("polls", "0")
    polls = int(polls) + 1 if browse.is_number(polls) else IMAGE_POLLS
    context = {
        "message": message,
        "polls": polls,
        "waiting": not has_full_picture(message) and not message.image_error,
        "gave_up": polls >= IMAGE_POLLS,
    }
    return render(request, "inbox/_image.html", context)


# --- writes: replies, notes, status, assignment -------------------------------------------------
# Each fetches the session through the access helper (a non-member gets 404), answers htmx with
# the fragments it changed, and anything else with a redirect back to the thread, or the whole
# page with the form's errors (400).


def _form_errors(form) -> list[str]:
    return [error for errors in form.errors.values() for error in errors]


def _composer(form, *, focus: bool = False) -> dict[str, Any]:
    """The composer after a post: in the mode it was in, empty after a success, and with the
    text kept and the errors said after a refusal."""
    composer = {"kind": forms.ComposeForm.REPLY, "text": "", "errors": [], "focus": focus}
    if form.data.get("kind") == forms.ComposeForm.NOTE:
        composer["kind"] = forms.ComposeForm.NOTE
    if form.errors:
        composer["text"] = form.data.get("text", "")
        composer["errors"] = _form_errors(form)
    return composer


def _written(
    request: HttpRequest,
    session: Session,
    answer: str,
    *,
    messages: list[Message] = (),
    status: int = 200,
    **extra: Any,
) -> HttpResponse:
    """An htmx write's answer: the part that was posted from (`answer`: composer, attach or
    header) and, out of band, the messages it added and the session's row."""
    context = {
        **_thread_context(request, session, browse.ThreadPage([])),
        "answer": answer,
        "messages": list(messages),
        **extra,
    }
    return render(request, "inbox/written.html", context, status=status)


def _error_page(request: HttpRequest, session: Session, **extra: Any) -> HttpResponse:
    """Without JavaScript a refused write shows the thread again, with the form's errors."""
    context = _thread_page(request, session, browse.latest_page(session), **extra)
    return render(request, "inbox/inbox.html", context, status=400)


@require_POST
@login_required
def compose(request: HttpRequest, pk: int) -> HttpResponse:
    """The composer: a reply (stored as "sending", sent after commit; a re-post of the same form
    finds the first row by its client token) or an internal note (never sent)."""
    session = _get_session_for_user(request, pk)
    form = forms.ComposeForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        if data["kind"] == forms.ComposeForm.REPLY:
            try:
                unseen = live_guard.reply_to_confirm(session, request.user, request.POST)
            except live_guard.BadMarker:
                return HttpResponseBadRequest("bad seen_up_to")
            if unseen is not None:
                return _confirm_reply(request, session, form, unseen)
        try:
            if data["kind"] == forms.ComposeForm.NOTE:
                message = services.add_note(
                    session, request.user, data["text"], data["client_token"]
                )
            else:
                message = services.compose_reply(
                    session, request.user, data["text"], data["client_token"]
                )
        except services.ReplyError as exc:
            form.add_error("text", str(exc))
        else:
            if not _fragment(request):
                return redirect(session.get_absolute_url())
            return _written(
                request,
                session,
                "composer",
                messages=[message],
                composer=_composer(form, focus=True),
                row=True,
            )
    if _fragment(request):
        return _written(
            request, session, "composer", composer=_composer(form, focus=True), status=400
        )
    return _error_page(request, session, composer=_composer(form, focus=True))


def _confirm_reply(request: HttpRequest, session: Session, form, unseen: Message) -> HttpResponse:
    """Someone else replied after the newest message this agent had on screen: the composer
    comes back with the text kept, asking before it sends (inbox.live.guard)."""
    composer = {
        **_composer(form, focus=True),
        "text": form.cleaned_data["text"],
        "confirm": live_guard.describe(unseen),
        "seen_up_to": unseen.pk,
    }
    if _fragment(request):
        return _written(request, session, "composer", composer=composer)
    context = _thread_page(request, session, browse.latest_page(session), composer=composer)
    return render(request, "inbox/inbox.html", context, status=409)


@require_POST
@login_required
def send_image(request: HttpRequest, pk: int) -> HttpResponse:
    """The attach button: an image reply, stored under MEDIA and sent by its public URL."""
    session = _get_session_for_user(request, pk)
    form = forms.ImageReplyForm(request.POST, request.FILES)
    message = None
    if form.is_valid():
        try:
            message = services.compose_image_reply(
                session, request.user, form.cleaned_data["image"], form.cleaned_data["client_token"]
            )
        except services.ReplyError as exc:
            form.add_error("image", str(exc))
    if not _fragment(request):
        if message is None:
            return _error_page(request, session, composer=_composer(form))
        return redirect(session.get_absolute_url())
    return _written(
        request,
        session,
        "attach",
        messages=[message] if message else [],
        composer=_composer(form),
        row=message is not None,
        status=200 if message else 400,
    )


@require_POST
@login_required
def retry(request: HttpRequest, pk: int) -> HttpResponse:
    """Retry a failed reply. One that is no longer failed (already retried, or sent after all)
    is shown as it is now."""
    message = _get_message_for_user(request, pk)
    if message.kind != Message.Kind.LETTER or message.client_token is None:
        return HttpResponseBadRequest("only replies written here can be retried")
    services.retry_reply(message)
    if not _fragment(request):
        return redirect(f"{message.session.get_absolute_url()}#message-{message.pk}")
    message = browse.thread_messages(message.session).get(pk=message.pk)
    return render(request, "inbox/_message.html", {"message": message})


def _workflow_answer(request: HttpRequest, session: Session, form, changed: bool) -> HttpResponse:
    """The answer to a status or assignment change: the header again (with the form's errors),
    the activity line it wrote, and the session's row."""
    errors = _form_errors(form)
    if not _fragment(request):
        if errors:
            return _error_page(request, session, action_errors=errors)
        return redirect(session.get_absolute_url())
    activity = []
    if changed:
        activity = list(
            browse.thread_messages(session).filter(kind=Message.Kind.ACTIVITY).order_by("-pk")[:1]
        )
    return _written(
        request,
        session,
        "header",
        messages=activity,
        action_errors=errors,
        row=changed,
        status=400 if errors else 200,
    )


@require_POST
@login_required
def set_status(request: HttpRequest, pk: int) -> HttpResponse:
    """Open, pending, resolved, or snoozed until a time."""
    session = _get_session_for_user(request, pk)
    form = forms.StatusForm(request.POST)
    changed = False
    if form.is_valid():
        try:
            changed = services.set_status(
                session,
                form.cleaned_data["status"],
                request.user,
                snooze_until=form.cleaned_data["snooze_until"],
            )
        except ValueError:
            # The chosen time passed between the form's check and the service's.
            form.add_error(None, _("Choose a time in the future."))
    return _workflow_answer(request, session, form, changed)


@require_POST
@login_required
def assign(request: HttpRequest, pk: int) -> HttpResponse:
    """Give the session to a member of its account, or to nobody."""
    session = _get_session_for_user(request, pk)
    form = forms.AssignForm(request.POST, session=session, actor=request.user)
    changed = False
    if form.is_valid():
        try:
            changed = services.assign(session, form.cleaned_data["assignee"], request.user)
        except ValueError:
            # Removed from the account between the form's check and the service's.
            form.add_error("assignee", _("Choose a member of this account."))
    return _workflow_answer(request, session, form, changed)


# A desk with more saved answers than this needs a search box in admin, not a longer menu.
CANNED_LIMIT = 500


@require_GET
@login_required
def canned_replies(request: HttpRequest, pk: int) -> JsonResponse:
    """The composer's `/` menu: the session's account's saved answers and the global ones, in
    one query; the composer filters them as the user types."""
    session = _get_session_for_user(request, pk)
    replies = (
        CannedReply.objects.filter(Q(account=session.account_id) | Q(account__isnull=True))
        .order_by("title", "pk")
        .values("title", "text")[:CANNED_LIMIT]
    )
    return JsonResponse({"replies": list(replies)})
