"""Pictures of image letters, from the upstream to the page and out again.

- Showing: `show_pictures(messages)` reads, in one query, which stored pictures the image
  letters among `messages` have (and the app letters whose share card has a cover: the cover is
  their thumbnail), and hangs them on each letter as `message.pictures` for the card. Given
  the thread's account it also queues the thumbnails that are missing (one more query, only
  when some are): opening a thread is what fetches its pictures.
- Fetching (in the images worker): `fetch_thumbnail` asks the upstream for the thumbnail's URL
  (downloadImage type 3), or takes a share card's cover URL from the card, downloads and stores
  the bytes; `store_from_url` is the part the full-size download (inbox.images, "Load image")
  shares. A stored picture bumps its letter's updated_at, so the thread's poll redraws the card
  with it.
- Forgetting: `prune_pictures` deletes files nobody was shown for PICTURES_RETENTION_DAYS and
  files no letter uses any more; their letters say the picture has expired.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from functools import partial

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Exists, OuterRef, Q, Sum
from django.urls import reverse
from django.utils import timezone

from accounts.models import Account
from inbox import images
from inbox.models import Message
from inbox.payloads import clean_text
from inbox.pictures import ratelimit, storage
from inbox.pictures.models import MessagePicture, StoredPicture
from inbox.pictures.storage import PictureRefused
from inbox.share_cards import is_trusted_picture

log = logging.getLogger(__name__)

# The thumbnail first; the normal size when the upstream has no thumbnail to give.
THUMBNAIL_TYPES = (3, 2)
ERROR_LENGTH = MessagePicture._meta.get_field("error").max_length
Kind = MessagePicture.Kind


# --- showing ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Shown:
    """A stored picture as a page links to it: our URL, never the upstream's."""

    url: str
    width: int | None
    height: int | None


@dataclass(frozen=True)
class LetterPictures:
    """What an image card can show: the stored thumbnail and full-size picture, if any; whether
    a thumbnail is on its way, or why there is none; whether retention deleted what there was."""

    thumb: Shown | None = None
    full: Shown | None = None
    thumb_pending: bool = False
    thumb_error: str = ""
    expired: bool = False


NO_PICTURES = LetterPictures()


def picture_url(message_id: int, kind: str, sha256: str) -> str:
    """The serving view's URL; `v` changes with the bytes, so a browser may keep each version."""
    return f"{reverse('inbox:pictures:picture', args=[message_id, kind])}?v={sha256[:16]}"


def has_pictures(message: Message) -> bool:
    """An image letter from the upstream (not an image reply of ours, which has its own file),
    or an app letter whose share card names a cover."""
    if message.kind != Message.Kind.LETTER:
        return False
    if message.msg_type == Message.Type.IMAGE:
        return not message.attachment
    return message.msg_type == Message.Type.APP and bool(cover_url(message))


def cover_url(message: Message) -> str:
    """The cover URL of an app letter's share card (inbox.share_cards), or "". Read from the
    stored dict without building the card: show_pictures runs over every letter of a page."""
    meta = message.image_meta
    card = meta.get("card") if isinstance(meta, dict) else None
    url = card.get("cover_url") if isinstance(card, dict) else None
    return url if isinstance(url, str) else ""


def _fetchable(message: Message, account: Account, device_reachable: bool) -> bool:
    """Whether a thumbnail can be fetched for the letter: an image letter's comes from the
    device (downloadImage), so not while it is paused or offline; a cover comes from its URL,
    fetched only from a trusted host (share_cards.is_trusted_picture) — never from wherever a
    sender's XML points."""
    if message.msg_type == Message.Type.APP:
        return is_trusted_picture(cover_url(message), account.effective_base_url)
    return device_reachable and bool(message.content)


def show_pictures(
    messages: Iterable[Message], *, queue_for: Account | None = None, retry: bool = True
) -> None:
    """Hang `message.pictures` on the image letters among `messages` (one query, none without
    image letters). With `queue_for` (the thread's account), also queue the thumbnails that are
    missing: never asked for, or (with `retry`) asked for before and failed or lost. The poll
    passes retry=False, so it queues only letters that just arrived."""
    letters = [message for message in messages if has_pictures(message)]
    if not letters:
        return
    links = {
        (link.message_id, link.kind): link
        for link in MessagePicture.objects.filter(message_id__in=[m.pk for m in letters])
        .select_related("picture")
        .only(
            "message_id",
            "kind",
            "next_try_at",
            "error",
            "expired_at",
            "picture__sha256",
            "picture__width",
            "picture__height",
        )
    }
    now = timezone.now()
    for message in letters:
        message.pictures = _letter_pictures(
            message, links.get((message.pk, Kind.THUMB)), links.get((message.pk, Kind.FULL)), now
        )
    if queue_for is not None:
        reachable = _device_reachable(queue_for)
        wanted = [
            message
            for message in letters
            if _fetchable(message, queue_for, reachable)
            and _wants_thumbnail(links.get((message.pk, Kind.THUMB)), now, retry)
        ]
        queued = set(queue_thumbnails(queue_for, wanted, retry=retry))
        for message in wanted:
            if message.pk in queued:
                message.pictures = replace(message.pictures, thumb_pending=True, thumb_error="")


def pictures_of(message: Message) -> LetterPictures:
    return getattr(message, "pictures", NO_PICTURES)


def has_full_picture(message: Message) -> bool:
    """Whether the letter's full-size picture is stored (read from `message.pictures` when
    show_pictures has run on it)."""
    if hasattr(message, "pictures"):
        return message.pictures.full is not None
    return MessagePicture.objects.filter(
        message=message, kind=Kind.FULL, picture__isnull=False
    ).exists()


def _letter_pictures(
    message: Message, thumb: MessagePicture | None, full: MessagePicture | None, now: datetime
) -> LetterPictures:
    def shown(link: MessagePicture | None) -> Shown | None:
        if link is None or link.picture is None:
            return None
        picture = link.picture
        return Shown(
            picture_url(message.pk, link.kind, picture.sha256), picture.width, picture.height
        )

    pending = bool(
        thumb
        and thumb.picture is None
        and not thumb.error
        and thumb.next_try_at
        and thumb.next_try_at > now
    )
    return LetterPictures(
        thumb=shown(thumb),
        full=shown(full),
        thumb_pending=pending,
        thumb_error=thumb.error if thumb and thumb.picture is None else "",
        expired=any(link and link.expired_at and link.picture is None for link in (thumb, full)),
    )


def _device_reachable(account: Account) -> bool:
    """Thumbnails are not asked of a device that is paused or offline: they would only fail."""
    return account.enabled and not account.paused_reason and account.outage_since is None


def _wants_thumbnail(link: MessagePicture | None, now: datetime, retry: bool) -> bool:
    if link is None:
        return True
    if link.picture is not None or link.expired_at is not None or not retry:
        return False  # an expired one comes back only when someone asks ("Load image")
    return link.next_try_at is None or link.next_try_at <= now


def queue_thumbnails(account: Account, letters: list[Message], *, retry: bool = True) -> list[int]:
    """Claim and queue thumbnail downloads for `letters` (in thread order), newest first, as
    many as the account's rate allows now: one statement claims them all, and each download is
    queued after commit with its own countdown. The ids of the letters queued."""
    if not letters:
        return []
    countdowns = ratelimit.reserve(account.pk, len(letters))
    if not countdowns:
        return []
    newest_first = [message.pk for message in reversed(letters)][: len(countdowns)]
    slots = dict(zip(newest_first, countdowns, strict=True))
    claim = timedelta(seconds=max(countdowns) + settings.IMAGE_FETCH_CLAIM_SECONDS)
    claimed = _claim_thumbnails(newest_first, timezone.now(), claim, retry=retry)
    queued = [
        (message_id, slots[message_id]) for message_id in newest_first if message_id in claimed
    ]
    if queued:
        transaction.on_commit(partial(_publish_thumbnails, queued))
    return [message_id for message_id, _ in queued]


def _claim_thumbnails(
    message_ids: list[int], now: datetime, claim: timedelta, *, retry: bool
) -> set[int]:
    """Insert (or, with `retry`, take over when due) the letters' thumbnail rows as claimed
    until now + `claim`, in one statement; the ids actually claimed, so two tabs opening the
    same thread at once queue each download once."""
    ops = connection.ops
    table = ops.quote_name(MessagePicture._meta.db_table)
    until = ops.adapt_datetimefield_value(now + claim)
    stamp = ops.adapt_datetimefield_value(now)
    rows = ", ".join(["(%s, %s, %s, '', %s)"] * len(message_ids))
    params: list = []
    for message_id in message_ids:
        params += [message_id, Kind.THUMB.value, until, stamp]
    if retry:
        # Only a row with no picture, not expired, whose claim or wait is over.
        conflict = (
            "DO UPDATE SET next_try_at = excluded.next_try_at, error = '', "
            "updated_at = excluded.updated_at "
            f"WHERE {table}.picture_id IS NULL AND {table}.expired_at IS NULL "
            f"AND ({table}.next_try_at IS NULL OR {table}.next_try_at <= %s)"
        )
        params.append(stamp)
    else:
        conflict = "DO NOTHING"
    sql = (
        f"INSERT INTO {table} (message_id, kind, next_try_at, error, updated_at) "
        f"VALUES {rows} ON CONFLICT (message_id, kind) {conflict} RETURNING message_id"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return {row[0] for row in cursor.fetchall()}


def _publish_thumbnails(queued: list[tuple[int, float]]) -> None:
    from inbox.pictures.tasks import fetch_thumbnail  # tasks import this module

    for message_id, countdown in queued:
        try:
            fetch_thumbnail.apply_async((message_id,), countdown=countdown)
        except Exception:
            # The broker is down: the claim expires and the next open of the thread queues
            # the thumbnail again. The page must not fail for it.
            log.exception("thumbnail of message %s could not be queued", message_id)
            return


# --- fetching (the images worker) ------------------------------------------------------------


def fetch_thumbnail(message_id: int) -> bool:
    """Download an image letter's thumbnail (or an app letter's share card cover) and store it;
    on failure record why, and wait PICTURES_RETRY_SECONDS before an open asks again. True when
    the thumbnail is stored (now or by an earlier run: a second run fetches nothing)."""
    message = (
        Message.objects.select_related("account")
        .filter(pk=message_id, msg_type__in=(Message.Type.IMAGE, Message.Type.APP))
        .first()
    )
    if message is None:
        return False
    if MessagePicture.objects.filter(
        message_id=message_id, kind=Kind.THUMB, picture__isnull=False
    ).exists():
        return True
    deadline = time.monotonic() + settings.IMAGE_FETCH_SECONDS
    try:
        if message.msg_type == Message.Type.APP:
            url = _trusted_cover_url(message)
        else:
            url, error = images.upstream_file_url(message, THUMBNAIL_TYPES, deadline)
            if url is None:
                raise PictureRefused(error or "the upstream gave no picture")
        store_from_url(message_id, Kind.THUMB, url, deadline)
    except PictureRefused as exc:
        thumbnail_failed(message_id, str(exc))
        return False
    return True


def _trusted_cover_url(message: Message) -> str:
    """The share card's cover URL, downloaded as it is (downloadImage is for image letters
    only); checked again here, as the claim did, since the host check is what keeps the
    server from requesting an address a sender wrote."""
    url = cover_url(message)
    if not is_trusted_picture(url, message.account.effective_base_url):
        raise PictureRefused("the cover is not on a picture host this inbox downloads from")
    return url


def thumbnail_failed(message_id: int, error: str) -> None:
    """Record why a letter has no thumbnail (shown on its card), and when to try again."""
    now = timezone.now()
    log.info("no thumbnail for message %s: %s", message_id, error)
    MessagePicture.objects.update_or_create(
        message_id=message_id,
        kind=Kind.THUMB,
        defaults={
            "picture": None,
            "error": clean_text(error)[:ERROR_LENGTH],
            "next_try_at": now + timedelta(seconds=settings.PICTURES_RETRY_SECONDS),
        },
    )
    Message.objects.filter(pk=message_id).update(updated_at=now)


def store_from_url(message_id: int, kind: str, url: str, deadline: float) -> StoredPicture:
    """Download the picture at `url` (an upstream file URL), store it and make it the letter's
    `kind` picture; PictureRefused says why not. The download runs outside any transaction; the
    store and the link are one."""
    data = storage.download(url, deadline=deadline)
    with transaction.atomic():
        picture = storage.store(data)
        now = timezone.now()
        MessagePicture.objects.update_or_create(
            message_id=message_id,
            kind=kind,
            defaults={"picture": picture, "error": "", "next_try_at": None, "expired_at": None},
        )
        # The thread's poll finds the letter changed and redraws its card with the picture.
        Message.objects.filter(pk=message_id).update(updated_at=now)
    return picture


# --- serving -------------------------------------------------------------------------------


def picture_for(user, message_id: int, kind: str) -> StoredPicture | None:
    """The stored picture of a letter `user` may see, or None: one query."""
    links = MessagePicture.objects.filter(message_id=message_id, kind=kind, picture__isnull=False)
    if not user.is_superuser:
        links = links.filter(message__account__members=user)
    link = links.select_related("picture").first()
    return link.picture if link else None


def note_shown(picture: StoredPicture, now: datetime | None = None) -> None:
    """Keep a picture someone is shown from the retention sweep. At most one write a day per
    picture: a thread's thumbnails are fetched on every open."""
    now = now or timezone.now()
    if picture.last_used_at < now - timedelta(days=1):
        StoredPicture.objects.filter(pk=picture.pk).update(last_used_at=now)


# --- forgetting ----------------------------------------------------------------------------

PRUNE_BATCH = 500
# A file with no row is left alone this long: its worker may not have committed yet.
STRAY_GRACE = timedelta(hours=1)


@dataclass
class PruneResult:
    pictures: int = 0
    bytes: int = 0
    letters: int = 0
    stray_files: int = 0


def prunable(now: datetime | None = None):
    """Stored pictures to delete: unused by every letter, or (with a retention period) not
    shown to anyone for PICTURES_RETENTION_DAYS."""
    unlinked = ~Exists(MessagePicture.objects.filter(picture=OuterRef("pk")))
    condition = Q(unlinked)
    if settings.PICTURES_RETENTION_DAYS > 0:
        cutoff = (now or timezone.now()) - timedelta(days=settings.PICTURES_RETENTION_DAYS)
        condition |= Q(last_used_at__lt=cutoff)
    return StoredPicture.objects.filter(condition)


def prune_pictures(
    *,
    now: datetime | None = None,
    dry_run: bool = False,
    progress: Callable[[int], None] | None = None,
) -> PruneResult:
    """Delete the prunable pictures in batches (rows and files, one transaction a batch); their
    letters are marked expired and redrawn by open threads' polls. Then delete files under
    MEDIA_ROOT/pictures that no row names. `dry_run` counts and deletes nothing."""
    now = now or timezone.now()
    advance = progress or (lambda n: None)
    result = PruneResult()
    if dry_run:
        doomed = prunable(now)
        totals = doomed.aggregate(bytes=Sum("size"))
        result.pictures = doomed.count()
        result.bytes = totals["bytes"] or 0
        result.letters = MessagePicture.objects.filter(picture__in=doomed).count()
        result.stray_files = len(_stray_files(now))
        return result
    while batch := _prune_batch(now):
        result.pictures += len(batch.pictures)
        result.bytes += sum(picture.size for picture in batch.pictures)
        result.letters += batch.letters
        advance(len(batch.pictures))
    for path in _stray_files(now):
        path.unlink(missing_ok=True)
        result.stray_files += 1
    return result


@dataclass
class _Batch:
    pictures: list[StoredPicture]
    letters: int


def _prune_batch(now: datetime) -> _Batch | None:
    with transaction.atomic():
        # Rows a worker is linking right now are locked by it (storage.store): skip them.
        pictures = list(
            prunable(now)
            .select_for_update(skip_locked=True)
            .only("sha256", "content_type", "size")
            .order_by("pk")[:PRUNE_BATCH]
        )
        if not pictures:
            return None
        ids = [picture.pk for picture in pictures]
        links = MessagePicture.objects.filter(picture_id__in=ids)
        message_ids = list(links.values_list("message_id", flat=True))
        links.update(picture=None, expired_at=now, updated_at=now)
        # Threads open on these letters redraw them as expired.
        Message.objects.filter(pk__in=message_ids).update(updated_at=now)
        StoredPicture.objects.filter(pk__in=ids).delete()
        # Inside the transaction, with the rows still locked: a worker storing the same bytes
        # again waits for the commit, then writes a fresh file under a fresh row.
        for picture in pictures:
            picture.path.unlink(missing_ok=True)
    return _Batch(pictures, len(message_ids))


def _stray_files(now: datetime) -> list:
    """Files under MEDIA_ROOT/pictures that no StoredPicture names (left by a worker that died
    between writing and committing, or by a restored backup), older than STRAY_GRACE."""
    root = settings.MEDIA_ROOT / "pictures"
    if not root.is_dir():
        return []
    old = (now - STRAY_GRACE).timestamp()
    stray = []
    for folder in sorted(path for path in root.glob("*/*") if path.is_dir()):
        files = {path.stem: path for path in folder.iterdir() if path.is_file()}
        known = set(
            StoredPicture.objects.filter(sha256__in=list(files)).values_list("sha256", flat=True)
        )
        stray += [
            path for stem, path in files.items() if stem not in known and path.stat().st_mtime < old
        ]
    return stray
