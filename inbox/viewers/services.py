"""What the profile panel shows, and staff's notes about viewers.

Permissions (see the package's docstring): a viewer is visible to staff who are members of at
least one account the viewer has a conversation with; its notes (and labels) come with it. The
views reach a viewer only through a session the user may see (or, for the avatar, through
visible_viewers), so a note can neither be read nor written through an account one is not in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Exists, OuterRef, QuerySet, Subquery
from django.utils import timezone

from inbox.labels.models import Label
from inbox.models import Message, Session
from inbox.viewers import avatars
from inbox.viewers.linking import link_sessions
from inbox.viewers.models import Viewer, ViewerLabel, ViewerNote, ViewerSession

# A session is one peer and one account identity, so a person has a conversation or two per
# account at most; the cap keeps the panel one small query (two index probes per row for its
# letter times) even for a company with many accounts.
CONVERSATIONS_SHOWN = 20
NOTES_SHOWN = 100


@dataclass
class Profile:
    viewer: Viewer
    session: Session
    # The viewer's conversations in the user's accounts, latest activity first, each with its
    # first_letter_at and last_letter_at (the viewer's own letters, not replies).
    conversations: list[Session]
    notes: list[ViewerNote] = field(default_factory=list)
    labels: list[Label] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.viewer.nickname or self.session.peer_nickname or self.viewer.username

    @property
    def first_letter_at(self) -> datetime | None:
        return min(filter(None, (s.first_letter_at for s in self.conversations)), default=None)

    @property
    def last_letter_at(self) -> datetime | None:
        return max(filter(None, (s.last_letter_at for s in self.conversations)), default=None)

    @property
    def other_conversations(self) -> int:
        return sum(1 for s in self.conversations if s.pk != self.session.pk)


def visible_viewers(user: AbstractBaseUser) -> QuerySet[Viewer]:
    if user.is_superuser:
        return Viewer.objects.all()
    return Viewer.objects.filter(
        Exists(ViewerSession.objects.filter(viewer=OuterRef("pk"), session__account__members=user))
    )


def viewer_of(session: Session) -> Viewer | None:
    """The session's viewer, made (and the session linked) if sync has not: a session from
    before the viewers app, not yet reached by rebuild_viewers. None for a session without a
    peer user name."""
    if not session.peer_username:
        return None
    viewer = Viewer.objects.filter(username=session.peer_username).first()
    if viewer is None:
        link_sessions([session])
        viewer = Viewer.objects.get(username=session.peer_username)
    return viewer


def profile(user: AbstractBaseUser, session: Session) -> Profile | None:
    """The panel of `session`'s viewer as `user` may see it: three queries (the conversations
    with their viewer, notes, labels), and one more when the viewer still needs a picture (a
    download claimed at most once a day). None for a session without a peer user name."""
    if not session.peer_username:
        return None
    conversations = _conversations(user, session.peer_username)
    if all(s.pk != session.pk for s in conversations):
        # A session from before the viewers app, not yet reached by rebuild_viewers: linked
        # (its viewer made) now, once.
        link_sessions([session])
        conversations = _conversations(user, session.peer_username)
    viewer = next(s for s in conversations if s.pk == session.pk).viewer_link.viewer
    if avatars.wants_avatar(viewer):
        avatars.request_avatar(viewer)
    return Profile(
        viewer=viewer,
        session=session,
        conversations=conversations,
        notes=notes_of(viewer),
        labels=labels_of(viewer),
    )


def _conversations(user: AbstractBaseUser, username: str) -> list[Session]:
    """One query: the sessions of the viewer with this user name in accounts `user` may see,
    each with the viewer and the times of the viewer's first and last letter in it (from the
    thread-position index, one row each)."""
    letters = Message.objects.filter(
        session=OuterRef("pk"), kind=Message.Kind.LETTER, is_sender=False
    )
    return list(
        Session.objects.visible_to(user)
        .filter(viewer_link__viewer__username=username)
        .select_related("account", "viewer_link__viewer")
        .annotate(
            first_letter_at=Subquery(letters.order_by("created_at").values("created_at")[:1]),
            last_letter_at=Subquery(letters.order_by("-created_at").values("created_at")[:1]),
        )
        .order_by("-last_message_at", "-pk")[:CONVERSATIONS_SHOWN]
    )


def notes_of(viewer: Viewer) -> list[ViewerNote]:
    return list(
        viewer.notes.select_related("author", "edited_by").order_by("-created_at", "-pk")[
            :NOTES_SHOWN
        ]
    )


def can_change_note(user: AbstractBaseUser, note: ViewerNote) -> bool:
    """Staff change their own notes; superusers anyone's."""
    return user.is_superuser or note.author_id == user.pk


def add_note(viewer: Viewer, author: AbstractBaseUser, text: str) -> ViewerNote:
    return ViewerNote.objects.create(viewer=viewer, author=author, text=text)


def edit_note(note: ViewerNote, editor: AbstractBaseUser, text: str) -> bool:
    """Change the note's text, recording who and when; False (and nothing written) when the
    text is the same."""
    if text == note.text:
        return False
    note.text = text
    note.updated_at = timezone.now()
    note.edited_by = editor
    note.save(update_fields=["text", "updated_at", "edited_by"])
    return True


def delete_note(note: ViewerNote) -> None:
    note.delete()


def labels_of(viewer: Viewer) -> list[Label]:
    return list(Label.objects.filter(viewer_links__viewer=viewer))


def usable_viewer_labels(session: Session) -> QuerySet[Label]:
    """What may be put on the viewer from this conversation: the labels its account may use.
    The views fetch the session through the inbox's access helper, so the user works on it (the
    check inbox.labels.services.usable_labels would make again)."""
    return Label.objects.for_accounts([session.account_id])


def label_viewer(viewer: Viewer, label: Label, actor: AbstractBaseUser) -> bool:
    """Put `label` on the viewer; False when it was there already."""
    _, created = ViewerLabel.objects.get_or_create(
        viewer=viewer, label=label, defaults={"added_by": actor}
    )
    return created


def unlabel_viewer(viewer: Viewer, label: Label) -> bool:
    """Take `label` off the viewer; False when it was not there."""
    deleted, _ = ViewerLabel.objects.filter(viewer=viewer, label=label).delete()
    return bool(deleted)
