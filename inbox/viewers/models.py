"""Viewers, the conversations they have had, and what staff keep about them."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from inbox.labels.models import Label
from inbox.models import Session

# A note is a few sentences about a person; the composer's notes allow more, but a profile that
# scrolls for pages is no longer read.
NOTE_MAX_LENGTH = 2000


class Viewer(models.Model):
    """One person on WeChat Channels, known by the user name the upstream gives as the session's
    peer (Session.peer_username): the same name in every account they write to."""

    username = models.CharField(_("Channels user name"), max_length=200)
    # From contactList, the newest answer wins; the inbox falls back to a session's nickname.
    nickname = models.CharField(_("nickname"), max_length=200, blank=True)
    # The picture as we stored it, under MEDIA_ROOT, named by its SHA-256 (avatars/ab/abcd….png):
    # the browser never sees the CDN's address, and two viewers with one picture share a file.
    avatar = models.FileField(_("avatar"), max_length=100, blank=True)
    # The headUrl contactList last gave: a new one is downloaded, the same one is not.
    avatar_url_seen = models.CharField(max_length=2000, blank=True)
    # A download is claimed (one at a time per viewer), then finished with a time and, when it
    # failed, why.
    avatar_requested_at = models.DateTimeField(null=True, blank=True)
    avatar_fetched_at = models.DateTimeField(null=True, blank=True)
    avatar_error = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("viewer")
        verbose_name_plural = _("viewers")
        constraints = [
            # Linking a new session to its viewer (linking.link_sessions) and the panel's lookup
            # by the session's peer.
            models.UniqueConstraint(fields=["username"], name="viewers_viewer_unique_username"),
        ]

    def __str__(self) -> str:
        return self.nickname or self.username

    @property
    def avatar_version(self) -> str:
        """Changes with the picture: the avatar URL carries it, so browsers may cache for long."""
        return self.avatar.name.rsplit("/", 1)[-1][:16] if self.avatar else ""


class ViewerSession(models.Model):
    """Which viewer a session is with. A side table, written when sync creates sessions: an index
    on inbox_session.peer_username would be written on every update of every session, and
    ingest updates a session for each page that brings it a letter."""

    session = models.OneToOneField(
        Session, on_delete=models.CASCADE, primary_key=True, related_name="viewer_link"
    )
    # Indexed (Django's FK index, viewers_viewersession_viewer_id_…): a viewer's conversations.
    viewer = models.ForeignKey(Viewer, on_delete=models.CASCADE, related_name="links")

    class Meta:
        verbose_name = _("viewer's conversation")
        verbose_name_plural = _("viewers' conversations")

    def __str__(self) -> str:
        return f"{self.viewer_id}/{self.session_id}"


class ViewerNote(models.Model):
    """What staff want each other to know about a person (not about one conversation: those are
    the thread's notes)."""

    viewer = models.ForeignKey(Viewer, on_delete=models.CASCADE, related_name="notes")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        related_name="+",
        verbose_name=_("author"),
    )
    text = models.TextField(_("note"), max_length=NOTE_MAX_LENGTH)
    created_at = models.DateTimeField(_("written"), auto_now_add=True)
    # Both empty until someone changes the text.
    updated_at = models.DateTimeField(_("edited"), null=True, blank=True)
    edited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("edited by"),
    )

    class Meta:
        verbose_name = _("viewer note")
        verbose_name_plural = _("viewer notes")
        indexes = [
            # The panel: a viewer's notes, newest first.
            models.Index(fields=["viewer", "-created_at"], name="viewers_viewernote_by_viewer"),
        ]

    def __str__(self) -> str:
        return self.text[:50]


class ViewerLabel(models.Model):
    """A label on a person ("VIP", "wholesale"), whichever conversation it was put on from."""

    viewer = models.ForeignKey(
        Viewer, on_delete=models.CASCADE, related_name="label_links", db_index=False
    )
    label = models.ForeignKey(Label, on_delete=models.CASCADE, related_name="viewer_links")
    added_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    added_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("label on a viewer")
        verbose_name_plural = _("labels on viewers")
        constraints = [
            # The panel's chips (a viewer's labels) and at most one of each.
            models.UniqueConstraint(
                fields=["viewer", "label"], name="viewers_viewerlabel_unique_viewer_label"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.label_id} on viewer {self.viewer_id}"
