"""Pictures of image letters, kept on our side: the upstream's file URLs die after 7 days, the
bytes stored here do not (until the retention sweep removes what nobody looked at for long).

A StoredPicture is one file, named by the SHA-256 of its bytes, so the same picture sent in two
letters (or fetched twice) is one file. A MessagePicture says which file shows a letter's
thumbnail or full-size picture, and for a thumbnail that is not there yet, when it may be asked
for again (the claim of a queued download, or the wait after a failed one)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from inbox.models import Message

EXTENSIONS = {"image/jpeg": "jpg", "image/png": "png", "image/gif": "gif", "image/webp": "webp"}


class StoredPicture(models.Model):
    sha256 = models.CharField(_("SHA-256"), max_length=64, unique=True)
    size = models.PositiveIntegerField(_("size in bytes"))
    content_type = models.CharField(_("content type"), max_length=20)
    width = models.PositiveIntegerField(_("width"), null=True, blank=True)
    height = models.PositiveIntegerField(_("height"), null=True, blank=True)
    created_at = models.DateTimeField(_("stored"), auto_now_add=True)
    # Moved forward (at most daily) whenever someone is shown the picture: the retention sweep
    # removes what has not been looked at for PICTURES_RETENTION_DAYS.
    last_used_at = models.DateTimeField(_("last shown"), default=timezone.now)

    class Meta:
        verbose_name = _("stored picture")
        verbose_name_plural = _("stored pictures")
        indexes = [
            # services.prune_pictures: the pictures unused since the retention cut-off.
            models.Index(fields=["last_used_at"], name="pictures_storedpicture_unused"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def name(self) -> str:
        """The file's path under MEDIA_ROOT: two levels of directories by the hash's first four
        characters, so no directory holds more than a few thousand files."""
        sha = self.sha256
        return f"pictures/{sha[:2]}/{sha[2:4]}/{sha}.{EXTENSIONS[self.content_type]}"

    @property
    def path(self):
        return settings.MEDIA_ROOT / self.name


class MessagePicture(models.Model):
    class Kind(models.TextChoices):
        THUMB = "thumb", _("Thumbnail")
        FULL = "full", _("Full size")

    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(_("kind"), max_length=5, choices=Kind.choices)
    # PROTECT: a file goes only through the retention sweep, which marks its letters expired.
    picture = models.ForeignKey(
        StoredPicture, on_delete=models.PROTECT, null=True, blank=True, related_name="links"
    )
    # While there is no picture: not asked for again before this time (a queued download's
    # claim, or the wait after a failed one). Full-size downloads keep their claim on the
    # message (inbox.images), as "Load image" always did.
    next_try_at = models.DateTimeField(_("not asked again before"), null=True, blank=True)
    error = models.CharField(_("why there is no picture"), max_length=500, blank=True)
    # The retention sweep deleted the file this letter showed.
    expired_at = models.DateTimeField(_("deleted by retention"), null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("letter picture")
        verbose_name_plural = _("letter pictures")
        constraints = [
            # One thumbnail and one full-size picture per letter; also what the thumbnail
            # claim's INSERT … ON CONFLICT (services.queue_thumbnails) relies on.
            models.UniqueConstraint(fields=["message", "kind"], name="pictures_messagepicture_once")
        ]

    def __str__(self) -> str:
        return f"{self.message_id} {self.kind}"
