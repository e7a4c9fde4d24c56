"""The viewer panel beside a thread, its notes and labels, and viewers' avatars.

Everything but the avatar is reached through a session (`/sessions/<pk>/viewer/…`), fetched by
the inbox's access helper: a session of an account the user is not in is 404, and with it its
viewer's profile, notes and labels. The avatar is checked against the viewers the user may see.
htmx requests get the fragment they swap; anything else is sent back to the thread.
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, HttpResponseForbidden
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from inbox.models import Session
from inbox.viewers import avatars, services
from inbox.viewers.forms import ViewerLabelForm, ViewerNoteForm
from inbox.viewers.models import Viewer, ViewerNote
from inbox.views import _fragment, _get_session_for_user

PANEL = "inbox/viewers/_panel.html"


def _viewer_for(session: Session) -> Viewer:
    viewer = services.viewer_of(session)
    if viewer is None:
        raise Http404("this conversation has no viewer user name")
    return viewer


def _panel_context(
    request: HttpRequest, session: Session, profile: services.Profile
) -> dict[str, object]:
    return {
        "session": session,
        "profile": profile,
        "viewer": profile.viewer,
        "note_form": ViewerNoteForm(),
        "usable_labels": services.usable_viewer_labels(session),
    }


def _back_to_thread(session: Session) -> HttpResponse:
    return redirect(session.get_absolute_url())


@require_GET
@login_required
def panel(request: HttpRequest, pk: int) -> HttpResponse:
    session = _get_session_for_user(request, pk)
    if not _fragment(request):
        return _back_to_thread(session)  # the thread page loads its panel itself
    profile = services.profile(request.user, session)
    if profile is None:
        return render(request, PANEL + "#no-viewer", {"session": session})
    return render(request, PANEL, _panel_context(request, session, profile))


def _notes_answer(
    request: HttpRequest,
    session: Session,
    viewer: Viewer,
    *,
    refused: ViewerNoteForm | None = None,
    editing: int | None = None,
) -> HttpResponse:
    """The notes after a write: the list and an empty form, or, when `refused`, the form that
    was posted (the new note's, or the edit form of note `editing`) with its errors, as 400."""
    status = 400 if refused is not None else 200
    if not _fragment(request):
        if refused is not None:
            return _refusal(refused)
        return _back_to_thread(session)
    context = {
        "session": session,
        "viewer": viewer,
        "notes": services.notes_of(viewer),
        "note_form": refused if refused is not None and editing is None else ViewerNoteForm(),
        "edit_form": refused if editing is not None else None,
        "editing": editing,
    }
    return render(request, PANEL + "#notes", context, status=status)


def _refusal(form) -> HttpResponse:
    """Without JavaScript, a refused form's reasons, as plain text."""
    return HttpResponse(
        " ".join(_form_errors(form)), status=400, content_type="text/plain; charset=utf-8"
    )


def _form_errors(form) -> list[str]:
    return [error for errors in form.errors.values() for error in errors]


@require_POST
@login_required
def add_note(request: HttpRequest, pk: int) -> HttpResponse:
    session = _get_session_for_user(request, pk)
    viewer = _viewer_for(session)
    form = ViewerNoteForm(request.POST)
    if not form.is_valid():
        return _notes_answer(request, session, viewer, refused=form)
    services.add_note(viewer, request.user, form.cleaned_data["text"])
    return _notes_answer(request, session, viewer)


def _note_about(session: Session, note_pk: int) -> tuple[Viewer, ViewerNote]:
    """The session's viewer and the note, which must be about that viewer (else 404)."""
    viewer = _viewer_for(session)
    return viewer, get_object_or_404(ViewerNote, pk=note_pk, viewer=viewer)


@require_POST
@login_required
def edit_note(request: HttpRequest, pk: int, note_pk: int) -> HttpResponse:
    session = _get_session_for_user(request, pk)
    viewer, note = _note_about(session, note_pk)
    if not services.can_change_note(request.user, note):
        return HttpResponseForbidden(_("Only its author or an administrator can change a note."))
    form = ViewerNoteForm(request.POST)
    if not form.is_valid():
        return _notes_answer(request, session, viewer, refused=form, editing=note.pk)
    services.edit_note(note, request.user, form.cleaned_data["text"])
    return _notes_answer(request, session, viewer)


@require_POST
@login_required
def delete_note(request: HttpRequest, pk: int, note_pk: int) -> HttpResponse:
    session = _get_session_for_user(request, pk)
    viewer, note = _note_about(session, note_pk)
    if not services.can_change_note(request.user, note):
        return HttpResponseForbidden(_("Only its author or an administrator can delete a note."))
    services.delete_note(note)
    return _notes_answer(request, session, viewer)


@require_POST
@login_required
def change_label(request: HttpRequest, pk: int) -> HttpResponse:
    session = _get_session_for_user(request, pk)
    viewer = _viewer_for(session)
    usable = services.usable_viewer_labels(session)
    form = ViewerLabelForm(request.POST, labels=usable)
    status = 200
    if form.is_valid():
        label = form.cleaned_data["label"]
        if form.cleaned_data["remove"]:
            services.unlabel_viewer(viewer, label)
        else:
            services.label_viewer(viewer, label, request.user)
    else:
        status = 400
    if not _fragment(request):
        return _refusal(form) if status == 400 else _back_to_thread(session)
    context = {
        "session": session,
        "viewer": viewer,
        "labels": services.labels_of(viewer),
        "usable_labels": usable,
        "label_errors": _form_errors(form) if status == 400 else [],
    }
    return render(request, PANEL + "#labels", context, status=status)


@require_GET
@login_required
def avatar(request: HttpRequest, viewer_pk: int) -> FileResponse:
    viewer = get_object_or_404(services.visible_viewers(request.user), pk=viewer_pk)
    if not viewer.avatar:
        raise Http404("no avatar yet")
    extension = viewer.avatar.name.rsplit(".", 1)[-1]
    try:
        file = viewer.avatar.open("rb")
    except FileNotFoundError:
        raise Http404("the avatar file is missing") from None
    response = FileResponse(file, content_type=avatars.CONTENT_TYPES.get(extension, "image/png"))
    # The URL carries the picture's hash (?v=), so a new picture is a new URL: cache for long,
    # but only in this user's browser (another user may not be allowed to see it).
    response["Cache-Control"] = "private, max-age=31536000, immutable"
    response["X-Content-Type-Options"] = "nosniff"
    return response
